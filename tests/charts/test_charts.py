"""Every chart of infrastructure/helm/charts, rendered by the real Helm engine for every
environment (as its ArgoCD Application deploys it) and for every ci/*-values.yaml scenario,
passes the Kubernetes schemas of the target version and the platform's workload policy."""

from __future__ import annotations

import ast
import builtins
import dataclasses
import importlib
import itertools
import json
import re
import subprocess
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.facts.buckets import buckets
from infra.facts.kafka_users import kafka_users
from infra.facts.paths import INFRASTRUCTURE
from infra.facts.redis import redis_settings
from infra.facts.topics import topics
from infra.facts.vault import vault_layout
from infra.facts.versions import versions
from infra.images import gitops
from tests.charts import policy
from tests.charts.helm import (
    CHARTS_DIR,
    ENVIRONMENTS,
    OPTIONAL_APIS,
    HelmError,
    Manifest,
    Render,
    Rendered,
    charts,
    env_render,
    env_values_file,
    helm_binary,
    kube_version,
    schema_version,
    template,
    workloads,
)

CHARTS = charts()
GATED_KINDS = {"ServiceMonitor", "PrometheusRule", "ScaledObject", "TriggerAuthentication"}
PASSWORD_IN_URL = re.compile(r"://[^/@\s]+:[^/@\s]+@")
SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN", "CREDENTIAL", "ACCESS_KEY", "PRIVATE")


def ci_scenarios() -> list[Path]:
    return sorted(CHARTS_DIR.glob("*/ci/*-values.yaml"))


def ci_render(path: Path, api_versions: tuple[str, ...] = OPTIONAL_APIS) -> Rendered:
    chart = path.parents[1]
    return template(
        Render(
            chart=chart,
            release=chart.name,
            namespace="its-ci",
            kube=kube_version("dev"),
            value_files=(path,),
            api_versions=api_versions,
        )
    )


def all_renders() -> list[tuple[str, Rendered]]:
    renders = [
        (f"{chart}@{env}{'' if apis else '-bare'}", env_render(chart, env, apis))
        for chart, env, apis in itertools.product(CHARTS, ENVIRONMENTS, (OPTIONAL_APIS, ()))
    ]
    renders += [
        (f"{path.parents[1].name}/ci/{path.name}{'' if apis else '-bare'}", ci_render(path, apis))
        for path, apis in itertools.product(ci_scenarios(), (OPTIONAL_APIS, ()))
    ]
    return renders


def test_the_expected_charts_exist() -> None:
    assert set(CHARTS) >= {
        "its-camera-ai",
        "its-kafka-topics",
        "its-minio-buckets",
        "its-vault-config",
        "its-databases",
        "its-monitoring",
    }
    assert {p.name for p in ci_scenarios() if p.parents[1].name == "its-camera-ai"} == {
        "dev-cpu-values.yaml",
        "prod-gpu-values.yaml",
        "minimal-values.yaml",
    }


@pytest.mark.parametrize("chart", CHARTS)
def test_chart_metadata_is_pinned_and_has_a_strict_schema(chart: str) -> None:
    meta = yaml.safe_load((CHARTS_DIR / chart / "Chart.yaml").read_text())
    assert meta["apiVersion"] == "v2" and meta["name"] == chart
    assert meta["version"].count(".") == 2 and meta["appVersion"], chart
    for dependency in meta.get("dependencies", []):
        assert dependency["version"][0].isdigit(), f"{chart}: unpinned dependency {dependency}"
    schema = json.loads((CHARTS_DIR / chart / "values.schema.json").read_text())
    assert schema["additionalProperties"] is False and "environment" in schema["required"], chart


@pytest.mark.parametrize("chart", CHARTS)
def test_helm_lint_strict_passes(chart: str) -> None:
    result = subprocess.run(
        [
            str(helm_binary()),
            "lint",
            "--strict",
            str(CHARTS_DIR / chart),
            "--values",
            str(env_values_file(chart, "prod")),
            "--kube-version",
            schema_version(kube_version("prod")),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("chart", CHARTS)
def test_chart_renders_for_the_environment(chart: str, env: str) -> None:
    rendered = env_render(chart, env)
    assert rendered.objects, f"{chart}@{env} rendered nothing"
    for obj in rendered.objects:
        labels = obj["metadata"].get("labels", {})
        assert labels.get("its.ai/environment") == env, policy.ident(obj)


def test_every_render_passes_the_kubernetes_schemas_and_custom_resource_checks() -> None:
    problems = [
        f"{name}: {problem}"
        for name, rendered in all_renders()
        for obj in rendered.objects
        for problem in policy.schema_problems(obj, rendered.render.kube)
    ]
    assert not problems, "\n".join(problems)


def test_every_workload_meets_the_policy() -> None:
    """Requests and limits, probes, the restricted securityContext, PDBs, GPU consistency."""
    problems = [
        f"{name}: {problem}"
        for name, rendered in all_renders()
        for problem in policy.workload_problems(list(rendered.objects))
    ]
    assert not problems, "\n".join(problems)


def test_no_secret_is_rendered() -> None:
    """The app logs into Vault with its service account: no Secret object, no secret value in
    an environment variable, no password in a URL."""
    for name, rendered in all_renders():
        assert not rendered.of_kind("Secret"), name
        for obj in policy_workloads(rendered):
            spec = policy.pod_spec(obj) or {}
            for container in spec.get("containers", []) + spec.get("initContainers", []):
                for env in container.get("env", []):
                    if any(word in env["name"].upper() for word in SECRET_WORDS):
                        assert "value" not in env, f"{name}: {env['name']} carries a literal value"
                    if "value" in env:
                        assert not PASSWORD_IN_URL.search(env["value"]), f"{name}: password in {env}"


def policy_workloads(rendered: Rendered) -> list[Manifest]:
    return [o for o in rendered.objects if policy.pod_spec(o) is not None]


@pytest.mark.parametrize("source", [*ENVIRONMENTS, *(p.name for p in ci_scenarios())])
def test_gated_objects_follow_the_cluster_capabilities(source: str) -> None:
    """ServiceMonitors, PrometheusRules and the ScaledObject exist only where the cluster serves
    monitoring.coreos.com/v1 and keda.sh/v1alpha1; without KEDA the worker keeps its replicas."""
    if source in ENVIRONMENTS:
        with_apis, bare = env_render("its-camera-ai", source), env_render("its-camera-ai", source, ())
        monitoring = env_render("its-monitoring", source, ())
        assert not monitoring.of_kind("PrometheusRule") and monitoring.of_kind("ConfigMap")
        assert env_render("its-monitoring", source).of_kind("PrometheusRule")
    else:
        path = CHARTS_DIR / "its-camera-ai" / "ci" / source
        with_apis, bare = ci_render(path), ci_render(path, ())
    assert {o["kind"] for o in with_apis.objects} >= GATED_KINDS
    assert not {o["kind"] for o in bare.objects} & GATED_KINDS
    worker = "its-camera-ai-worker"
    assert "replicas" not in with_apis.named("Deployment", worker)["spec"]
    assert bare.named("Deployment", worker)["spec"]["replicas"] >= 1


def _worker(rendered: Rendered) -> dict[str, Any]:
    return rendered.named("Deployment", "its-camera-ai-worker")


def _env_of(deployment: Manifest) -> dict[str, str]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container["env"]}


@pytest.mark.parametrize(
    ("source", "gpu"),
    [
        ("ci/prod-gpu-values.yaml", True),
        ("ci/dev-cpu-values.yaml", False),
        ("ci/minimal-values.yaml", True),
        ("env:dev", False),
        ("env:staging", True),
        ("env:prod", True),
    ],
)
def test_worker_gpu_and_cpu_modes(source: str, gpu: bool) -> None:
    if source.startswith("env:"):
        rendered = env_render("its-camera-ai", source.removeprefix("env:"))
    else:
        rendered = ci_render(CHARTS_DIR / "its-camera-ai" / source)
    worker = _worker(rendered)
    spec = worker["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert ("nvidia.com/gpu" in container["resources"]["limits"]) is gpu
    assert (
        any(t["key"] == "nvidia.com/gpu" and t["effect"] == "NoSchedule" for t in spec.get("tolerations", []))
        is gpu
    )
    assert (spec.get("nodeSelector", {}).get("its.ai/pool") == "gpu") is gpu
    assert _env_of(worker)["ITS_DEVICE"] == ("cuda:0" if gpu else "cpu")
    assert not policy.gpu_problems(worker)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_app_settings_come_from_the_shared_definitions(env: str) -> None:
    rendered = env_render("its-camera-ai", env)
    for component in ("api", "worker", "ingest"):
        settings = _env_of(rendered.named("Deployment", f"its-camera-ai-{component}"))
        assert settings["ITS_ENVIRONMENT"] == env
        assert settings["ITS_REDIS_MASTER_NAME"] == redis_settings().master_name
        assert settings["ITS_VAULT_KV_MOUNT"] == vault_layout().kv_mount
        assert settings["ITS_VAULT_AUTH_METHOD"] == "kubernetes"
        assert settings["ITS_VAULT_ROLE"] == f"its-{component}"
        # No user in the URL: each identity logs in as the role Vault names for it.
        url = settings["ITS_DATABASE_URL"]
        assert url.startswith("postgresql://") and "@" not in url
        assert "," not in settings["ITS_REDIS_SENTINELS"] or all(
            ":" in s for s in settings["ITS_REDIS_SENTINELS"].split(",")
        )
    scaled = rendered.named("ScaledObject", "its-camera-ai-worker")["spec"]["triggers"][0]["metadata"]
    assert scaled["topic"] == topics().topics.camera_events.name and scaled["consumerGroup"] == "its-worker"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_app_logs_in_to_kafka_over_tls_as_its_own_user(env: str) -> None:
    """SCRAM over TLS, the user name and password from Vault (nothing in the chart), the brokers'
    CA mounted from a Secret; KEDA reads the lag as its own user; and the consumer group the
    worker joins is the one users.yaml grants it."""
    rendered = env_render("its-camera-ai", env)
    for component in ("api", "worker", "ingest"):
        deployment = rendered.named("Deployment", f"its-camera-ai-{component}")
        settings = _env_of(deployment)
        assert settings["ITS_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        assert settings["ITS_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
        assert settings["ITS_KAFKA_BOOTSTRAP_SERVERS"].endswith(":9093")
        assert not any(name.startswith("ITS_KAFKA_SASL_USER") or "PASSWORD" in name for name in settings)
        ca = settings["ITS_KAFKA_SSL_CA_LOCATION"]
        pod = deployment["spec"]["template"]["spec"]
        (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "kafka-ca"]
        assert ca == f"{mount['mountPath']}/ca.crt" and mount["readOnly"] is True
        (volume,) = [v for v in pod["volumes"] if v["name"] == "kafka-ca"]
        assert volume["secret"]["items"] == [{"key": "ca.crt", "path": "ca.crt"}]
    worker = _env_of(rendered.named("Deployment", "its-camera-ai-worker"))
    group = worker.get("ITS_KAFKA_CONSUMER_GROUP")
    granted = {g.name for g in kafka_users().users["its-worker"].groups}
    assert group in granted and group in {g.name for g in kafka_users().users["its-keda"].groups}
    trigger = rendered.named("ScaledObject", "its-camera-ai-worker")["spec"]["triggers"][0]
    assert (trigger["metadata"]["sasl"], trigger["metadata"]["tls"]) == ("scram_sha512", "enable")
    auth = rendered.named("TriggerAuthentication", trigger["authenticationRef"]["name"])["spec"]
    assert {ref["parameter"] for ref in auth["secretTargetRef"]} == {"username", "password", "ca"}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_network_policies_deny_by_default_and_allow_only_the_app_flows(env: str) -> None:
    rendered = env_render("its-camera-ai", env)
    policies = {p["metadata"]["name"]: p["spec"] for p in rendered.of_kind("NetworkPolicy")}
    deny = policies["its-camera-ai-default-deny"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    for component in ("api", "worker", "ingest"):
        spec = policies[f"its-camera-ai-{component}"]
        namespaces = {
            peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            for rule in spec["egress"]
            for peer in rule["to"]
        }
        ports = {port["port"] for rule in spec["egress"] for port in rule["ports"]}
        assert {53, 5432, 6379, 26379, 9093, 8200} <= ports, component
        assert 9092 not in ports, f"{component}: Kafka's plain port"
        assert len(namespaces) >= 2, component
        sources = [peer for rule in spec["ingress"] for peer in rule["from"]]
        assert all("ipBlock" not in peer for peer in sources), component
    api_sources = {
        peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
        for rule in policies["its-camera-ai-api"]["ingress"]
        for peer in rule["from"]
    }
    assert {"traefik", "monitoring"} <= api_sources


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_rule_group_is_loaded_exactly_once(env: str) -> None:
    """The app chart and its-monitoring split infrastructure/prometheus/rules/ between them, but
    for the local platform's own (local.yaml), and add the cluster's (rules-cloud/)."""
    prometheus = INFRASTRUCTURE / "prometheus"
    paths = [p for p in (prometheus / "rules").glob("*.yaml") if p.name != "local.yaml"]
    paths += list((prometheus / "rules-cloud").glob("*.yaml"))
    expected = sorted(group["name"] for path in paths for group in yaml.safe_load(path.read_text())["groups"])
    local = {g["name"] for g in yaml.safe_load((prometheus / "rules" / "local.yaml").read_text())["groups"]}
    assert local and not local & set(expected)
    loaded = sorted(
        group["name"]
        for chart in ("its-camera-ai", "its-monitoring")
        for rule in env_render(chart, env).of_kind("PrometheusRule")
        for group in rule["spec"]["groups"]
    )
    assert loaded == expected
    sources = {
        yaml.safe_dump(group, sort_keys=True)
        for path in paths
        for group in yaml.safe_load(path.read_text())["groups"]
    }
    for chart in ("its-camera-ai", "its-monitoring"):
        for rule in env_render(chart, env).of_kind("PrometheusRule"):
            for group in rule["spec"]["groups"]:
                assert yaml.safe_dump(group, sort_keys=True) in sources, (
                    f"{chart} changed group {group['name']}"
                )


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_dashboards_are_labelled_json_for_the_grafana_sidecar(env: str) -> None:
    maps = env_render("its-monitoring", env).of_kind("ConfigMap")
    titles = set()
    for config_map in maps:
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        for key, text in config_map["data"].items():
            assert key.endswith(".json")
            dashboard = json.loads(text)
            assert dashboard["uid"] and dashboard["panels"]
            assert all(t["expr"] for p in dashboard["panels"] for t in p["targets"])
            titles.add(dashboard["uid"])
    assert titles == {"its-app", "its-data-stacks", "its-gpus"}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_kafka_topics_are_the_shared_definitions(env: str) -> None:
    shared = topics()
    rendered = {
        t["spec"]["topicName"]: t["spec"] for t in env_render("its-kafka-topics", env).of_kind("KafkaTopic")
    }
    assert set(rendered) == {t.name for t in shared.all()}
    for topic in shared.all():
        spec = rendered[topic.name]
        assert spec["partitions"] == topic.partitions
        for key, value in shared.config(topic).items():
            if key != "min.insync.replicas":
                assert spec["config"][key] == str(value), (topic.name, key)
        assert int(spec["config"]["min.insync.replicas"]) < spec["replicas"] or spec["replicas"] == 1
    if env != "dev":
        assert {s["replicas"] for s in rendered.values()} == {shared.defaults.replication_factor}


def _strimzi_acls(user: str) -> list[dict[str, Any]]:
    """users.yaml's grants of `user` as a Strimzi KafkaUser spells them (topics by name)."""
    shared, spec = topics(), kafka_users().users[user]
    acls: list[dict[str, Any]] = [
        {
            "resource": {"type": "topic", "name": name, "patternType": "literal"},
            "operations": list(grant.operations),
            "host": "*",
        }
        for name, grant in kafka_users().topic_grants(user, shared)
    ]
    acls += [
        {
            "resource": {"type": "group", "name": group.name, "patternType": "literal"},
            "operations": list(group.operations),
            "host": "*",
        }
        for group in spec.groups
    ]
    if spec.cluster:
        acls.append({"resource": {"type": "cluster"}, "operations": list(spec.cluster), "host": "*"})
    return acls


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_kafka_users_are_the_shared_definitions(env: str) -> None:
    """A KafkaUser per identity of users.yaml: SCRAM-SHA-512, simple authorization and exactly
    the ACLs the local platform applies (the same reader's grants, Strimzi's spelling)."""
    rendered = env_render("its-kafka-topics", env)
    users = {u["metadata"]["name"]: u for u in rendered.of_kind("KafkaUser")}
    assert set(users) == set(kafka_users().names())
    (cluster,) = {t["metadata"]["labels"]["strimzi.io/cluster"] for t in rendered.of_kind("KafkaTopic")}
    for name, user in users.items():
        assert user["metadata"]["labels"]["strimzi.io/cluster"] == cluster
        # The password is the program's (infra/pulumi/secrets.py makes the Secret it names).
        assert user["spec"]["authentication"] == {
            "type": "scram-sha-512",
            "password": {
                "valueFrom": {"secretKeyRef": {"name": f"its-kafka-password-{name}", "key": "password"}}
            },
        }
        assert user["spec"]["authorization"]["type"] == "simple"
        assert user["spec"]["authorization"]["acls"] == _strimzi_acls(name), name
    # Every topic an ACL names is one the chart creates.
    created = {t["spec"]["topicName"] for t in rendered.of_kind("KafkaTopic")}
    named = {
        acl["resource"]["name"]
        for user in users.values()
        for acl in user["spec"]["authorization"]["acls"]
        if acl["resource"]["type"] == "topic"
    }
    assert named <= created


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_buckets_and_lifecycle_rules_are_the_shared_definitions(env: str) -> None:
    config_map = env_render("its-minio-buckets", env).of_kind("ConfigMap")[0]["data"]
    script = config_map["apply.sh"]
    for bucket in buckets().all():
        if bucket.object_lock:
            assert f"mc mb --ignore-existing --with-lock its/{bucket.name}" in script
            lock = bucket.object_lock
            assert f"mc retention set --default {lock.mode} {lock.days}d its/{bucket.name}" in script
        else:
            assert f"mc mb --ignore-existing its/{bucket.name}" in script
        assert (f"mc version enable its/{bucket.name}" in script) is bucket.versioning
        rules = json.loads(config_map[f"lifecycle-{bucket.name}.json"])["Rules"]
        assert [r["ID"] for r in rules] == [r.id for r in bucket.lifecycle]
        for rule, want in zip(rules, bucket.lifecycle, strict=True):
            assert rule["Filter"]["Prefix"] == want.prefix
            assert rule.get("Expiration", {}).get("Days") == want.expiration_days
            assert (
                rule.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays")
                == want.noncurrent_expiration_days
            )
    for path in (INFRASTRUCTURE / "minio" / "policies").glob("*.json"):
        assert json.loads(config_map[f"policy-{path.name}"]) == json.loads(path.read_text())


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_vault_roles_bind_the_app_service_accounts(env: str) -> None:
    """vault.yaml's identities become Kubernetes-auth roles bound to the app's service accounts,
    in the app's namespace, for the audience the app's projected token carries."""
    shared = yaml.safe_load((INFRASTRUCTURE / "vault" / "vault.yaml").read_text())
    app = env_render("its-camera-ai", env)
    vault = env_render("its-vault-config", env)
    script = vault.of_kind("ConfigMap")[0]["data"]["apply.sh"]
    accounts = {sa["metadata"]["name"] for sa in app.of_kind("ServiceAccount")}
    audiences = {
        source["serviceAccountToken"]["audience"]
        for deployment in app.of_kind("Deployment")
        for volume in deployment["spec"]["template"]["spec"]["volumes"]
        if "projected" in volume
        for source in volume["projected"]["sources"]
    }
    assert len(audiences) == 1
    (audience,) = audiences
    for role in shared["approles"]:
        assert role["name"] in accounts
        block = script.split(f"auth/kubernetes/role/{role['name']} ")[1].split("\n  vault ")[0]
        assert f"bound_service_account_names={role['name']} " in block
        assert f"bound_service_account_namespaces={app.render.namespace} " in block
        assert f"audience={audience} " in block
        assert f"policies={','.join(role['policies'])} " in block
    for path in (INFRASTRUCTURE / "vault" / "policies").glob("*.hcl"):
        assert (
            vault.of_kind("ConfigMap")[0]["data"][f"policy-{path.stem}.hcl"].strip()
            == path.read_text().strip()
        )


def test_chart_files_are_symlinks_into_the_shared_definitions() -> None:
    """Nothing under a chart's files/ is a copy: every entry links into infrastructure/."""
    infrastructure = INFRASTRUCTURE.resolve()
    for files in CHARTS_DIR.glob("*/files"):
        for entry in files.iterdir():
            assert entry.is_symlink(), f"{entry} is a copy, not a symlink"
            target = entry.resolve(strict=True)
            assert target.is_relative_to(infrastructure), f"{entry} -> {target}"
            assert not target.is_relative_to(CHARTS_DIR.resolve()), f"{entry} -> {target}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_app_connects_to_what_the_platform_charts_create(env: str) -> None:
    """Names repeated across charts agree: the Pooler and the Kafka cluster the app connects to
    (settings and NetworkPolicy) are the ones its-databases and its-kafka-topics target."""
    app = env_render("its-camera-ai", env)
    settings = _env_of(app.named("Deployment", "its-camera-ai-api"))
    egress = [
        (
            peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
            peer.get("podSelector", {}).get("matchLabels", {}),
        )
        for rule in app.named("NetworkPolicy", "its-camera-ai-api")["spec"]["egress"]
        for peer in rule["to"]
    ]
    databases = env_render("its-databases", env)
    (pooler,) = databases.of_kind("Pooler")
    host = settings["ITS_DATABASE_URL"].removeprefix("postgresql://").split(":")[0]
    assert host == f"{pooler['metadata']['name']}.{databases.render.namespace}.svc"
    assert (databases.render.namespace, {"cnpg.io/poolerName": pooler["metadata"]["name"]}) in egress
    topics = env_render("its-kafka-topics", env)
    (cluster,) = {t["metadata"]["labels"]["strimzi.io/cluster"] for t in topics.of_kind("KafkaTopic")}
    namespace = topics.render.namespace
    assert settings["ITS_KAFKA_BOOTSTRAP_SERVERS"].startswith(f"{cluster}-kafka-bootstrap.{namespace}.svc:")
    assert (namespace, {"strimzi.io/cluster": cluster}) in egress


OPERATOR_KINDS = {
    "ServiceMonitor",
    "PrometheusRule",
    "ScaledObject",
    "Cluster",
    "Pooler",
    "ScheduledBackup",
    "ObjectStore",
    "KafkaTopic",
    "KafkaUser",
    "TriggerAuthentication",
}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_operator_kinds_render_only_where_the_cluster_serves_their_api(env: str) -> None:
    """A cluster before its operators (the local one) syncs these charts without the kinds it
    cannot hold; a cluster with them gets every object."""
    for chart in CHARTS:
        bare = {o["kind"] for o in env_render(chart, env, ()).objects}
        assert not bare & OPERATOR_KINDS, f"{chart}@{env}: {bare & OPERATOR_KINDS} without the operator's API"
    assert env_render("its-databases", env).of_kind("Cluster")
    assert env_render("its-kafka-topics", env).of_kind("KafkaTopic")
    assert env_render("its-kafka-topics", env).of_kind("KafkaUser")
    assert env_render("its-camera-ai", env).of_kind("ServiceMonitor")


@pytest.mark.parametrize("source", ["env:prod", "ci/prod-gpu-values.yaml"])
def test_the_api_ingress_limits_bodies_and_clients_at_the_edge(source: str) -> None:
    """Where Traefik's CRDs are served, the API's router runs a per-client rate limit and a body
    limit equal to the API's own request limit; without them, neither object nor reference."""
    if source.startswith("env:"):
        env = source.removeprefix("env:")
        with_apis, bare = env_render("its-camera-ai", env), env_render("its-camera-ai", env, ())
    else:
        path = CHARTS_DIR / "its-camera-ai" / source
        with_apis, bare = ci_render(path), ci_render(path, ())
    namespace = with_apis.render.namespace
    settings = _env_of(with_apis.named("Deployment", "its-camera-ai-api"))
    request_limit = int(settings["ITS_MAX_FRAME_BYTES"]) + int(settings["ITS_REQUEST_OVERHEAD_BYTES"])
    body = with_apis.named("Middleware", "its-camera-ai-api-body-limit")["spec"]["buffering"]
    assert body == {"maxRequestBodyBytes": request_limit}
    rate = with_apis.named("Middleware", "its-camera-ai-api-rate-limit")["spec"]["rateLimit"]
    assert rate["average"] >= 1 and rate["burst"] >= rate["average"]
    ingress = with_apis.named("Ingress", "its-camera-ai-api")
    assert ingress["metadata"]["annotations"]["traefik.ingress.kubernetes.io/router.middlewares"] == (
        f"{namespace}-its-camera-ai-api-rate-limit@kubernetescrd,"
        f"{namespace}-its-camera-ai-api-body-limit@kubernetescrd"
    )
    assert not bare.of_kind("Middleware")
    annotations = bare.named("Ingress", "its-camera-ai-api")["metadata"]["annotations"]
    assert "traefik.ingress.kubernetes.io/router.middlewares" not in annotations


@pytest.mark.parametrize(("env", "docs"), [("dev", "true"), ("staging", "true"), ("prod", "false")])
def test_api_docs_are_off_in_prod_and_the_limits_reach_the_api(env: str, docs: str) -> None:
    settings = _env_of(env_render("its-camera-ai", env).named("Deployment", "its-camera-ai-api"))
    assert settings["ITS_API_DOCS_ENABLED"] == docs
    for name in (
        "ITS_MAX_FRAME_BYTES",
        "ITS_REQUEST_OVERHEAD_BYTES",
        "ITS_MAX_FRAME_PIXELS",
        "ITS_MAX_FRAME_SIDE",
        "ITS_AUTH_FAILURES_PER_MINUTE",
    ):
        assert int(settings[name]) > 0, name
    assert settings["FORWARDED_ALLOW_IPS"]
    # The per-key rate limit is the app's own default (app/common/settings.py) unless an
    # environment sets one: the chart does not repeat it.
    assert "ITS_RATE_LIMIT_PER_MINUTE" not in settings
    base = env_render("its-camera-ai", env).render
    overridden = template(dataclasses.replace(base, values_yaml="api:\n  rateLimitPerMinute: 120\n"))
    assert _env_of(overridden.named("Deployment", "its-camera-ai-api"))["ITS_RATE_LIMIT_PER_MINUTE"] == "120"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_migration_job_s_program_names_only_what_the_app_has(env: str) -> None:
    """The Job runs an inline program (no image has a console script for it): every import it
    makes resolves in this tree, so a rename in app/ cannot leave the Job failing at sync."""
    (job,) = env_render("its-camera-ai", env).of_kind("Job")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    program = container["command"][-1]
    imports = [node for node in ast.walk(ast.parse(program)) if isinstance(node, ast.ImportFrom)]
    assert imports
    for node in imports:
        module = importlib.import_module(node.module or "")
        missing = [alias.name for alias in node.names if not hasattr(module, alias.name)]
        assert not missing, f"{node.module} has no {missing}"
    # ... and every name it uses is one it imported or assigned (or a builtin).
    tree = ast.parse(program)
    bound = {alias.asname or alias.name for node in imports for alias in node.names}
    bound |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    assert used - bound - set(dir(builtins)) == set()


def test_the_engine_is_the_pinned_helm_and_another_version_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pinned = versions()["HELM_VERSION"]
    reported = subprocess.run(
        [str(helm_binary()), "version", "--template", "{{.Version}}"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert reported.stdout.strip() == pinned
    other = tmp_path / "helm"
    other.write_text("#!/bin/sh\necho v3.0.0\n")
    other.chmod(0o755)
    monkeypatch.setenv("ITS_HELM", str(other))
    with pytest.raises(HelmError, match=f"Helm v3.0.0, the pin is {pinned}"):
        helm_binary.__wrapped__()


def _pod_mount(pod: Manifest, volume_name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume_name]
    (volume,) = [v for v in pod["volumes"] if v["name"] == volume_name]
    return mount, volume


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_app_verifies_postgres_against_the_server_ca(env: str) -> None:
    """The API, the worker and the migration Job connect with sslmode=verify-full, sslrootcert
    the ca.crt of the CA Secret mounted read-only; the host they name is one the CloudNativePG
    server certificate covers (the Pooler's Service, added by its-databases), signed by the CA
    Secret the Cluster names, the same Secret name the program fills in both namespaces."""
    rendered = env_render("its-camera-ai", env)
    pods = {
        "api": rendered.named("Deployment", "its-camera-ai-api")["spec"]["template"]["spec"],
        "worker": _worker(rendered)["spec"]["template"]["spec"],
    }
    (job,) = rendered.of_kind("Job")
    pods["migrate"] = job["spec"]["template"]["spec"]
    hosts = set()
    for component, pod in pods.items():
        env_vars = {e["name"]: e.get("value", "") for e in pod["containers"][0]["env"]}
        url = urllib.parse.urlsplit(env_vars["ITS_DATABASE_URL"])
        query = dict(urllib.parse.parse_qsl(url.query))
        assert query["sslmode"] == "verify-full", component
        mount, volume = _pod_mount(pod, "postgres-ca")
        assert mount["readOnly"] is True, component
        assert query["sslrootcert"] == f"{mount['mountPath']}/ca.crt", component
        assert volume["secret"]["items"] == [{"key": "ca.crt", "path": "ca.crt"}], component
        assert volume["secret"]["secretName"] == "its-postgres-ca", component
        hosts.add(url.hostname)
    (cluster,) = env_render("its-databases", env).of_kind("Cluster")
    certificates = cluster["spec"]["certificates"]
    assert certificates["serverCASecret"] == "its-postgres-server-ca"
    # CloudNativePG's own names (<cluster>-rw/-r/-ro in their namespace forms) plus ours.
    namespace = cluster["metadata"]["namespace"]
    own = {f"{cluster['metadata']['name']}-{kind}.{namespace}.svc" for kind in ("rw", "r", "ro")}
    assert hosts and hosts <= own | set(certificates["serverAltDNSNames"])


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_vault_job_writes_the_generated_seed(env: str) -> None:
    """The its-vault-config Job mounts the program's seed Secret read-only and kv-puts each of
    its keys at the path it names (its.api.redis -> its/api/redis)."""
    rendered = env_render("its-vault-config", env)
    (job,) = rendered.of_kind("Job")
    pod = job["spec"]["template"]["spec"]
    mount, volume = _pod_mount(pod, "seed")
    assert mount["readOnly"] is True and volume["secret"]["secretName"] == "its-vault-seed"
    (config_map,) = rendered.of_kind("ConfigMap")
    script = config_map["data"]["apply.sh"]
    assert f"for file in {mount['mountPath']}/*; do" in script
    assert f'kv put -mount={vault_layout().kv_mount} "$(basename "$file" | tr . /)" @"$file"' in script


def _images(rendered: Rendered) -> dict[str, str]:
    """Each workload's (and the helm test pod's) container image, by object name."""
    found = {}
    for obj in workloads(rendered.objects):
        pod = obj["spec"]["template"]["spec"] if "template" in obj["spec"] else obj["spec"]
        (container,) = pod["containers"]
        found[obj["metadata"]["name"]] = container["image"]
    return found


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_an_image_digest_is_deployed_by_digest(env: str, tmp_path: Path) -> None:
    """The digests `make images` records (infra/images/gitops.py) render as repository@digest for
    the API, the migration Job, the helm test pod, the worker and the ingest; without one, the tag."""
    values = tmp_path / "values.yaml"
    values.write_text(env_values_file("its-camera-ai", env).read_text())
    api, worker, ingest = ("sha256:" + c * 64 for c in "abc")
    gitops.record(
        values, {"api": ("0123456789ab", api), "worker": ("ba9876543210", worker), "ingest": ("1", ingest)}
    )
    base = env_render("its-camera-ai", env).render
    images = _images(template(dataclasses.replace(base, value_files=(values,))))
    registry = yaml.safe_load((CHARTS_DIR / "its-camera-ai" / "values.yaml").read_text())["image"]["registry"]
    assert images.pop("its-camera-ai-worker") == f"{registry}/its-camera-ai/worker@{worker}"
    assert images.pop("its-camera-ai-ingest") == f"{registry}/its-camera-ai/ingest@{ingest}"
    assert images and set(images.values()) == {f"{registry}/its-camera-ai/api@{api}"}, images
    # The environment's own file: a recorded digest, or the tag until one is recorded.
    for image in _images(env_render("its-camera-ai", env)).values():
        assert re.fullmatch(
            rf"{registry}/its-camera-ai/(api|worker|ingest)(@sha256:[0-9a-f]{{64}}|:[\w.-]+)", image
        )
