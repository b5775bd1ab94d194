"""Every Secret a release names is made by the program or listed as made elsewhere, and what the
program generates is what its consumers read (the redis ACL file, Vault's paths)."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from infra.facts.kafka_users import kafka_users
from infra.facts.redis import password_hash, redis_settings
from infra.facts.vault import vault_layout
from infra.pulumi.catalogue import load_catalogue
from infra.pulumi.gitops_root import chart_namespace
from infra.pulumi.project_charts import project_chart_values, project_charts
from infra.pulumi.secrets import MADE_ELSEWHERE, VAULT_PATHS_MADE_ELSEWHERE, seed_key
from tests.pulumi.stacks import STACKS, StackRun, stack_run

SECRET_TYPE = "kubernetes:core/v1:Secret"
# Keys whose value names a Secret: existingSecret, secretName, certSecret, caSecret,
# tlsSecretName, serverCASecret, kafkaSecret, ...; or whose value is {name: <Secret>}
# (credentialsSecret, adminTokenSecret, seedSecret, secretKeyRef, secretRef).
SECRET_KEY = re.compile(r"(?i)(secret|secretname|secretref|secretkeyref)$")
# A family of Secrets, one per MinIO service user (its-minio-buckets: <secretPrefix><user>).
PREFIX_KEY = "secretPrefix"

Ref = tuple[str, str, str]  # namespace, Secret, where (release:path)


def secret_refs(values: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(path, Secret name) of every reference in a values tree."""
    if isinstance(values, dict):
        for key, value in values.items():
            here = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and SECRET_KEY.search(key):
                if isinstance(value, str) and value:
                    yield here, value
                elif isinstance(value, dict) and isinstance(value.get("name"), str):
                    yield f"{here}.name", value["name"]
                    continue
            if isinstance(key, str) and key == PREFIX_KEY and isinstance(value, str):
                yield here, value + "*"
            yield from secret_refs(value, here)
    elif isinstance(values, list):
        for index, item in enumerate(values):
            yield from secret_refs(item, f"{path}[{index}]")


def release_values(run: StackRun) -> dict[str, tuple[str, dict[str, Any]]]:
    """Every release of the stack, upstream and this repository's charts: namespace, values
    (the upstream ones as the program passed them to Helm, with what it injects)."""
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    for release in run.of_type("kubernetes:helm.sh/v3:Release"):
        out[release.inputs["name"]] = (release.inputs["namespace"], release.inputs["values"])
    for chart in project_charts():
        out[chart] = (chart_namespace(chart), project_chart_values(chart, run.stack))
    return out


def created(run: StackRun) -> set[tuple[str, str]]:
    return {
        (r.inputs["metadata"]["namespace"], r.inputs["metadata"]["name"]) for r in run.of_type(SECRET_TYPE)
    }


def unaccounted(releases: dict[str, tuple[str, dict[str, Any]]], made: set[tuple[str, str]]) -> list[Ref]:
    """References to Secrets neither the program makes nor MADE_ELSEWHERE lists."""
    known = made | set(MADE_ELSEWHERE)
    missing: list[Ref] = []
    for release, (namespace, values) in sorted(releases.items()):
        for path, name in secret_refs(values):
            if name.endswith("*"):
                found = any(ns == namespace and n.startswith(name[:-1]) for ns, n in known)
            else:
                found = (namespace, name) in known
            if not found:
                missing.append((namespace, name, f"{release}:{path}"))
    return missing


def secret_data(run: StackRun, namespace: str, name: str) -> dict[str, str]:
    (secret,) = [
        r
        for r in run.of_type(SECRET_TYPE)
        if (r.inputs["metadata"]["namespace"], r.inputs["metadata"]["name"]) == (namespace, name)
    ]
    string_data = secret.inputs["stringData"]
    assert set(string_data) == {"secret"}, f"{namespace}/{name}: stringData is not sent as a secret"
    return dict(string_data["secret"])


@pytest.mark.parametrize("env", STACKS)
def test_every_secret_a_release_names_is_made(env: str) -> None:
    run = stack_run(env)
    assert run.error is None
    releases = release_values(run)
    # The walker sees the references that matter (a walker that finds nothing proves nothing).
    found = {(ns, name) for ns, values in releases.values() for _, name in secret_refs(values)}
    assert {("data", "redis-auth"), ("minio", "its-minio-root"), ("its", "its-postgres-ca")} <= found
    assert unaccounted(releases, created(run)) == []


def test_the_walker_reports_a_secret_nobody_makes() -> None:
    run = stack_run("dev")
    releases = copy.deepcopy(release_values(run))
    namespace, values = releases["minio"]
    values["extraSecret"] = {"secretKeyRef": {"name": "its-nobody-makes-this", "key": "k"}}
    values["existingSecret"] = "its-minio-root-typo"
    releases["minio"] = (namespace, values)
    assert unaccounted(releases, created(run)) == [
        ("minio", "its-minio-root-typo", "minio:existingSecret"),
        ("minio", "its-nobody-makes-this", "minio:extraSecret.secretKeyRef.name"),
    ]
    # In another namespace, a Secret the program makes is still missing.
    namespace, values = releases["its-camera-ai"]
    values["config"]["database"]["caSecret"] = "redis-auth"
    assert ("its", "redis-auth", "its-camera-ai:config.database.caSecret") in unaccounted(
        releases, created(run)
    )


@pytest.mark.parametrize("env", STACKS)
def test_secrets_are_generated_only_where_nobody_else_makes_them(env: str) -> None:
    assert not created(stack_run(env)) & set(MADE_ELSEWHERE)


@pytest.mark.parametrize("env", STACKS)
def test_redis_auth_holds_the_acl_file_of_its_own_passwords(env: str) -> None:
    run = stack_run(env)
    data = secret_data(run, "data", "redis-auth")
    assert set(data) == {"auth", "sentinel-password", "users.acl"}
    assert data["auth"] != data["sentinel-password"]
    lines = data["users.acl"].splitlines()
    assert lines[0] == f"user default reset on #{password_hash(data['auth'])} ~* &* +@all"
    assert [line.split()[1] for line in lines[1:]] == redis_settings().users_on("redis")
    seed = {k: json.loads(v) for k, v in secret_data(run, "vault", "its-vault-seed").items()}
    for identity, path in (("its-api", "its.api.redis"), ("its-worker", "its.worker.redis")):
        (line,) = [line for line in lines if line.split()[1] == identity]
        # The app's password from Vault is the one whose hash the servers hold.
        assert f"#{password_hash(seed[path]['password'])}" in line.split()
        assert seed[path]["username"] == identity
        assert seed[path]["sentinel_password"] == data["sentinel-password"]
        assert seed[path]["sentinel_username"] == "default"


@pytest.mark.parametrize("env", STACKS)
def test_passwords_are_long_and_alphanumeric_but_the_pepper(env: str) -> None:
    for password in stack_run(env).of_type("random:index/randomPassword:RandomPassword"):
        inputs = password.inputs
        assert inputs["length"] >= 40, password.name
        assert inputs["special"] is (password.name == "its-api-pepper"), password.name


@pytest.mark.parametrize("env", STACKS)
def test_vault_seed_covers_every_path_the_app_reads(env: str) -> None:
    """The seed holds each path of vault.yaml with exactly its declared keys, but those
    VAULT_PATHS_MADE_ELSEWHERE names; the database roles' passwords are those CloudNativePG
    sets (the basic-auth Secrets the Cluster names)."""
    run = stack_run(env)
    seed = {k: json.loads(v) for k, v in secret_data(run, "vault", "its-vault-seed").items()}
    layout = vault_layout().secrets
    expected = {
        seed_key(p): sorted(keys) for p, keys in layout.items() if p not in VAULT_PATHS_MADE_ELSEWHERE
    }
    assert {key: sorted(data) for key, data in seed.items()} == expected
    cluster = project_chart_values("its-databases", env)["cluster"]["name"]
    for key in ("its.api.postgres", "its.worker.postgres", "its.migrate.postgres"):
        role = seed[key]["username"]
        basic = secret_data(run, "data", f"{cluster}-{role.replace('_', '-')}")
        assert basic == {"username": role, "password": seed[key]["password"]}


@pytest.mark.parametrize("env", STACKS)
def test_postgres_ca_reaches_the_cluster_and_the_app(env: str) -> None:
    """One CA: CloudNativePG signs with it (ca.crt + ca.key in the data namespace) and the app
    verifies against its certificate alone in its own namespace (no key there)."""
    run = stack_run(env)
    databases = project_chart_values("its-databases", env)
    server_ca = secret_data(
        run, chart_namespace("its-databases"), databases["cluster"]["certificates"]["serverCASecret"]
    )
    app_ca = secret_data(
        run,
        chart_namespace("its-camera-ai"),
        project_chart_values("its-camera-ai", env)["config"]["database"]["caSecret"],
    )
    assert app_ca == {"ca.crt": server_ca["ca.crt"]}
    assert "PRIVATE KEY" in server_ca["ca.key"]
    (ca,) = [
        c
        for c in run.of_type("tls:index/selfSignedCert:SelfSignedCert")
        if c.name == "postgres-server-ca-cert"
    ]
    assert ca.inputs["isCaCertificate"] is True and "cert_signing" in ca.inputs["allowedUses"]
    (key,) = [k for k in run.of_type("tls:index/privateKey:PrivateKey") if k.name == "postgres-server-ca-key"]
    assert (key.inputs["algorithm"], key.inputs["ecdsaCurve"]) == ("ECDSA", "P256")


@pytest.mark.parametrize("env", STACKS)
def test_minio_tls_is_signed_by_the_program_s_ca_for_minio_s_names(env: str) -> None:
    run = stack_run(env)
    minio = load_catalogue().release("minio")
    values = minio.values(env)
    data = secret_data(run, minio.namespace, values["tls"]["certSecret"])
    assert {values["tls"]["publicCrt"], values["tls"]["privateKey"]} <= set(data)
    (cert,) = [
        c
        for c in run.of_type("tls:index/locallySignedCert:LocallySignedCert")
        if c.name == "minio-server-cert"
    ]
    assert cert.inputs["caCertPem"] == data["ca.crt"]
    assert "server_auth" in cert.inputs["allowedUses"]
    (request,) = [r for r in run.of_type("tls:index/certRequest:CertRequest") if r.name == "minio-server-csr"]
    # The app's endpoint (config.minio.endpoint minio.minio.svc:443) is a name of the certificate.
    assert "minio.minio.svc" in request.inputs["dnsNames"]


@pytest.mark.parametrize("env", STACKS)
def test_kafka_cluster_ca_is_the_program_s_and_reaches_its_clients(env: str) -> None:
    """Strimzi takes the program's CA (its two Secrets, labelled and at a generation that grows
    with the certificate's start), and the app and KEDA hold its certificate in their namespace
    from the first sync."""
    run = stack_run(env)
    kafka = run.named("kubernetes:kafka.strimzi.io/v1beta2:Kafka", "data-stacks-kafka")
    assert kafka.inputs["spec"]["clusterCa"] == {"generateCertificateAuthority": False}
    key = secret_data(run, "kafka", "its-kafka-cluster-ca")
    cert = secret_data(run, "kafka", "its-kafka-cluster-ca-cert")
    assert "PRIVATE KEY" in key["ca.key"] and set(key) == {"ca.key"}
    assert set(cert) == {"ca.crt"} and "kafka-cluster-ca-cert" in cert["ca.crt"]
    # MOCK_SIGNED_AT (2026-12-01T10:30Z) in whole hours since the epoch.
    generation = str(int(datetime(2026, 12, 1, 10, 30, tzinfo=UTC).timestamp()) // 3600)
    for name, annotation in (
        ("its-kafka-cluster-ca", "strimzi.io/ca-key-generation"),
        ("its-kafka-cluster-ca-cert", "strimzi.io/ca-cert-generation"),
    ):
        metadata = run.named(SECRET_TYPE, f"kafka-{name}").inputs["metadata"]
        assert metadata["labels"]["strimzi.io/kind"] == "Kafka"
        assert metadata["labels"]["strimzi.io/cluster"] == "its-kafka"
        assert metadata["annotations"] == {annotation: generation}
    app = project_chart_values("its-camera-ai", env)
    assert secret_data(run, "its", app["config"]["kafka"]["caSecret"]) == cert
    keda = secret_data(run, "its", app["worker"]["autoscaling"]["kafkaSecret"])
    assert keda["ca.crt"] == cert["ca.crt"] and keda["username"] == "its-keda"


@pytest.mark.parametrize("env", STACKS)
def test_each_kafka_user_s_password_is_generated_and_the_app_s_is_in_vault(env: str) -> None:
    """One Secret per KafkaUser, named as the its-kafka-topics chart's KafkaUsers name it; the
    app's identities read the same password from Vault, KEDA from its own Secret."""
    run = stack_run(env)
    chart = project_chart_values("its-kafka-topics", env)["users"]
    passwords = {
        user: secret_data(run, chart_namespace("its-kafka-topics"), f"{chart['secretPrefix']}{user}")[
            chart["secretKey"]
        ]
        for user in kafka_users().users
    }
    assert len(set(passwords.values())) == len(passwords), "every user has its own password"
    seed = {k: json.loads(v) for k, v in secret_data(run, "vault", "its-vault-seed").items()}
    for identity in ("its-api", "its-worker"):
        assert seed[seed_key(f"{identity.replace('-', '/', 1)}/kafka")] == {
            "username": identity,
            "password": passwords[identity],
        }
    keda = project_chart_values("its-camera-ai", env)["worker"]["autoscaling"]["kafkaSecret"]
    assert secret_data(run, "its", keda)["password"] == passwords["its-keda"]


@pytest.mark.parametrize("env", STACKS)
def test_minio_ca_reaches_its_clients_without_the_key(env: str) -> None:
    """MinIO serves a certificate of the program's CA; the buckets Job and the app each hold
    that CA's certificate alone, in their own namespace."""
    run = stack_run(env)
    minio = load_catalogue().release("minio")
    values = minio.values(env)
    served = secret_data(run, minio.namespace, values["tls"]["certSecret"])
    buckets = project_chart_values("its-minio-buckets", env)["minio"]["caSecret"]
    app = project_chart_values("its-camera-ai", env)["config"]["minio"]["caSecret"]
    for namespace, name in ((chart_namespace("its-minio-buckets"), buckets), ("its", app)):
        assert secret_data(run, namespace, name) == {"ca.crt": served["ca.crt"]}
