"""OpenBao's clients in the charts, rendered by the real Helm: the app and the its-vault-config
Jobs call the ACTIVE server over TLS and verify it with the program's CA; the Job enables the
audit device; the snapshot CronJob logs in as its own role and uploads with its own identity."""

from __future__ import annotations

from typing import Any

import pytest

from infra.facts.paths import INFRASTRUCTURE
from infra.facts.vault_policies import parse_policy
from infra.pulumi.catalogue import load_catalogue
from infra.pulumi.project_charts import project_chart_values
from infra.pulumi.secrets import openbao_dns_names
from tests.charts.helm import ENVIRONMENTS, Manifest, env_render

ACTIVE = "https://openbao-active.vault.svc:8200"


def _pods(env: str) -> dict[str, dict[str, Any]]:
    rendered = env_render("its-camera-ai", env)
    pods = {
        "api": rendered.named("Deployment", "its-camera-ai-api")["spec"]["template"]["spec"],
        "migrate": rendered.of_kind("Job")[0]["spec"]["template"]["spec"],
    }
    workers = [d for d in rendered.of_kind("Deployment") if "worker" in d["metadata"]["name"]]
    assert workers
    for worker in workers:
        pods[worker["metadata"]["name"]] = worker["spec"]["template"]["spec"]
    return pods


def _env(container: Manifest) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def _mounted(pod: Manifest, container: Manifest, path: str) -> dict[str, Any]:
    """The Secret volume whose mount holds `path` in the container."""
    (mount,) = [m for m in container["volumeMounts"] if path.startswith(m["mountPath"].rstrip("/") + "/")]
    assert mount.get("readOnly") is True, mount
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    secret: dict[str, Any] = volume["secret"]
    return secret


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_app_calls_the_active_openbao_over_tls_with_the_program_s_ca(env: str) -> None:
    release = load_catalogue().release("openbao")
    host = ACTIVE.removeprefix("https://").split(":")[0]
    assert host in openbao_dns_names(release.name, release.namespace)  # the certificate covers it
    assert host.split(".")[1] == release.namespace
    for component, pod in _pods(env).items():
        container = pod["containers"][0]
        settings = _env(container)
        assert settings["ITS_VAULT_ADDR"] == ACTIVE, component
        secret = _mounted(pod, container, settings["ITS_VAULT_CA_FILE"])
        assert secret["secretName"] == "its-vault-ca", component
        assert secret["items"] == [{"key": "ca.crt", "path": "ca.crt"}], component


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_config_job_calls_the_active_openbao_over_tls_as_its_own_identity(env: str) -> None:
    """No admin token: the Job logs in with its service account's audience-bound token as the
    role OpenBao's self-initialisation made for it (infra/pulumi/vault_bootstrap.py), and
    leaves the audit device and Kubernetes auth to that initialisation."""
    values = project_chart_values("its-vault-config", env)
    rendered = env_render("its-vault-config", env)
    (job,) = rendered.of_kind("Job")
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    settings = _env(container)
    assert settings["BAO_ADDR"] == ACTIVE
    assert _mounted(pod, container, settings["BAO_CACERT"])["secretName"] == "its-vault-ca"
    assert pod["serviceAccountName"] == values["provisioner"]["serviceAccount"]
    assert pod["automountServiceAccountToken"] is False
    (token,) = [v for v in pod["volumes"] if v["name"] == "vault-token"]
    (source,) = token["projected"]["sources"]
    assert source["serviceAccountToken"]["audience"] == values["app"]["tokenAudience"]
    assert not [v for v in pod["volumes"] if "secret" in v and "token" in v["secret"]["secretName"]]
    script = rendered.of_kind("ConfigMap")[0]["data"]["apply.sh"]
    role = values["provisioner"]["vaultRole"]
    assert f"auth/kubernetes/login role={role} jwt=@/var/run/secrets/vault/token" in script
    assert "/secrets/token" not in script
    assert "audit enable" not in script and "auth enable" not in script


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_snapshot_cronjob_takes_a_raft_snapshot_and_uploads_it_with_its_own_identity(env: str) -> None:
    rendered = env_render("its-vault-config", env)
    (cron,) = rendered.of_kind("CronJob")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "openbao-snapshot"
    assert pod["automountServiceAccountToken"] is False
    (snapshot,) = pod["initContainers"]
    (upload,) = pod["containers"]
    script = snapshot["args"][0]
    assert "auth/kubernetes/login role=openbao-snapshot jwt=@/var/run/secrets/vault/token" in script
    assert "operator raft snapshot save /snapshot/openbao.snap" in script
    settings = _env(snapshot)
    assert settings["BAO_ADDR"] == ACTIVE
    assert _mounted(pod, snapshot, settings["BAO_CACERT"])["secretName"] == "its-vault-ca"
    # The uploader's bucket, prefix and region come from the program's ConfigMap.
    refs = {e["name"]: e["valueFrom"]["configMapKeyRef"] for e in upload["env"] if "valueFrom" in e}
    assert refs == {
        "BUCKET": {"name": "openbao-snapshot-target", "key": "bucket"},
        "PREFIX": {"name": "openbao-snapshot-target", "key": "prefix"},
        "AWS_REGION": {"name": "openbao-snapshot-target", "key": "region"},
    }
    assert "s3://${BUCKET}/${key}" in upload["args"][0]
    # The Vault role: bound to that service account in this namespace, with one policy that may
    # read the snapshot endpoint and nothing else.
    apply = rendered.of_kind("ConfigMap")[0]["data"]["apply.sh"]
    block = apply.split("auth/kubernetes/role/openbao-snapshot ")[1].split("\n  # ")[0]
    assert "bound_service_account_names=openbao-snapshot " in block
    assert f"bound_service_account_namespaces={rendered.render.namespace} " in block
    assert "policies=openbao-snapshot " in block
    policy = parse_policy(INFRASTRUCTURE / "vault" / "policies" / "openbao-snapshot.hcl")
    assert policy.allows("sys/storage/raft/snapshot", "read")
    for path, capability in (
        ("sys/storage/raft/snapshot", "update"),  # a restore
        ("secret/data/its/api/postgres", "read"),
        ("sys/storage/raft/snapshot-force", "update"),
    ):
        assert not policy.allows(path, capability), (path, capability)
