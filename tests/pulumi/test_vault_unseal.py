"""OpenBao under mocks, per stack: the seal key and who may use it, the values the program injects
into the release, the TLS material, and the snapshot store and its identity."""

from __future__ import annotations

import json
import re
from typing import Any

import hcl2

from infra.facts.stack_config import load_stack_file
from infra.pulumi.catalogue import load_catalogue
from infra.pulumi.gitops_root import chart_namespace
from infra.pulumi.project_charts import project_chart_values
from infra.pulumi.secrets import openbao_dns_names, openbao_tls_secret
from infra.pulumi.vault_unseal import (
    KEY_ID_ENV,
    OPENBAO_SERVICE_ACCOUNT,
    REGION_ENV,
    SNAPSHOT_PREFIX,
)
from tests.pulumi.stacks import Resource, StackRun
from tests.pulumi.test_secrets import secret_data

ISSUER = "oidc.eks.eu-west-1.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF"


def _plain(value: Any) -> Any:
    """python-hcl2's tree without its quoting: strings unquoted, labels unquoted, no markers."""
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items() if k != "__is_block__"}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def openbao_config(values: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = _plain(hcl2.loads(values["server"]["ha"]["raft"]["config"]))
    return config


def _release_values(run: StackRun) -> dict[str, Any]:
    (release,) = [r for r in run.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["name"] == "openbao"]
    values: dict[str, Any] = release.inputs["values"]
    return values


def _named(run: StackRun, resource_type: str, name: str) -> Resource:
    (resource,) = [r for r in run.of_type(resource_type) if r.name == name]
    return resource


def _statements(policy: Resource) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = json.loads(policy.inputs["policy"])["Statement"]
    return statements


def _attached(run: StackRun, role: str) -> Resource:
    """The one policy attached to an IRSA role (its attachment names the policy's ARN)."""
    (attachment,) = [
        a for a in run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment") if a.name == f"{role}-0"
    ]
    policies = [
        p
        for p in run.of_type("aws:iam/policy:Policy")
        if attachment.inputs["policyArn"].endswith(f":{p.name}")
    ]
    (policy,) = policies
    return policy


def test_the_seal_key_rotates_and_is_kept_outside_dev(run: StackRun) -> None:
    key = _named(run, "aws:kms/key:Key", "vault-unseal-seal")
    assert key.inputs["enableKeyRotation"] is True
    assert key.inputs["deletionWindowInDays"] == 30
    assert key.options.protect is (run.stack != "dev")


def test_only_the_openbao_server_may_use_the_seal_key_and_only_for_the_seal(run: StackRun) -> None:
    role = _named(run, "aws:iam/role:Role", "vault-unseal-server")
    (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    namespace = load_catalogue().release("openbao").namespace
    assert trust["Condition"]["StringEquals"] == {
        f"{ISSUER}:sub": f"system:serviceaccount:{namespace}:{OPENBAO_SERVICE_ACCOUNT}",
        f"{ISSUER}:aud": "sts.amazonaws.com",
    }
    (statement,) = _statements(_attached(run, "vault-unseal-server"))
    assert statement["Effect"] == "Allow"
    assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt"]
    assert statement["Resource"].endswith(":vault-unseal-seal")  # that key's ARN, no wildcard


def test_the_release_gets_the_key_the_region_and_the_role(run: StackRun) -> None:
    server = _release_values(run)["server"]
    cfg = load_stack_file(run.stack)
    assert server["extraEnvironmentVars"][KEY_ID_ENV] == "vault-unseal-seal-id"
    assert server["extraEnvironmentVars"][REGION_ENV] == cfg.region
    annotations = server["serviceAccount"]["annotations"]
    assert set(annotations) == {"eks.amazonaws.com/role-arn"}
    assert annotations["eks.amazonaws.com/role-arn"].endswith("/vault-unseal-server")
    # Everything else is the files' values: the program adds, never replaces.
    files = load_catalogue().release("openbao").values(run.stack)
    assert {k: v for k, v in _release_values(run).items() if k != "server"} == {
        k: v for k, v in files.items() if k != "server"
    }
    assert server["extraEnvironmentVars"].items() >= files["server"]["extraEnvironmentVars"].items()


def test_the_config_seals_with_awskms_and_serves_tls_with_the_mounted_certificate(run: StackRun) -> None:
    values = _release_values(run)
    assert values["global"]["tlsDisable"] is False
    config = openbao_config(values)
    (seal,) = config["seal"]
    assert list(seal) == ["awskms"]
    # The key and the region come from the environment the program sets, never the file.
    assert not {"kms_key_id", "region", "access_key", "secret_key"} & set(seal["awskms"])
    (listener,) = config["listener"]
    tcp = listener["tcp"]
    assert "tls_disable" not in tcp
    secret = openbao_tls_secret(values)
    mount = f"/openbao/userconfig/{secret}"
    assert (tcp["tls_cert_file"], tcp["tls_key_file"]) == (f"{mount}/tls.crt", f"{mount}/tls.key")
    joins = config["storage"][0]["raft"]["retry_join"]
    assert len(joins) == values["server"]["ha"]["replicas"]
    for join in joins:
        assert join["leader_api_addr"].startswith("https://")
        assert join["leader_ca_cert_file"] == f"{mount}/ca.crt"


def test_the_server_certificate_is_signed_by_the_program_s_ca_for_every_name(run: StackRun) -> None:
    release = load_catalogue().release("openbao")
    values = _release_values(run)
    data = secret_data(run, release.namespace, openbao_tls_secret(values))
    assert set(data) == {"tls.crt", "tls.key", "ca.crt"}
    cert = _named(run, "tls:index/locallySignedCert:LocallySignedCert", "openbao-server-cert")
    assert (
        cert.inputs["caCertPem"] == data["ca.crt"]
        and data["tls.crt"] == "-----BEGIN CERTIFICATE-----\nopenbao-server-cert\n-----END CERTIFICATE-----\n"
    )
    assert "server_auth" in cert.inputs["allowedUses"]
    request = _named(run, "tls:index/certRequest:CertRequest", "openbao-server-csr")
    names = request.inputs["dnsNames"]
    assert names == openbao_dns_names("openbao", release.namespace)
    # What clients and the servers dial: the active Service, each server through the headless one.
    assert {"openbao-active.vault.svc", "*.openbao-internal"} <= set(names)
    for join in openbao_config(values)["storage"][0]["raft"]["retry_join"]:
        host = re.sub(r"^https://([^:/]+).*$", r"\1", join["leader_api_addr"])
        assert "*." + host.split(".", 1)[1] in names, host
    assert request.inputs["ipAddresses"] == ["127.0.0.1"]  # the pods' own BAO_ADDR
    # The CA where each client verifies the server, from each chart's own values.
    for chart, path in (("its-vault-config", ("vault",)), ("its-camera-ai", ("config", "vault"))):
        chart_values = project_chart_values(chart, run.stack)
        for key in path:
            chart_values = chart_values[key]
        assert secret_data(run, chart_namespace(chart), chart_values["caSecret"]) == {
            "ca.crt": data["ca.crt"]
        }


def test_the_snapshot_bucket_is_private_versioned_encrypted_and_expires(run: StackRun) -> None:
    bucket = _named(run, "aws:s3/bucket:Bucket", "vault-unseal-snapshots")
    name = bucket.inputs["bucket"]
    assert bucket.options.protect is (run.stack != "dev") and bucket.inputs["forceDestroy"] is False

    def on_bucket(resource_type: str) -> Resource:
        (resource,) = [r for r in run.of_type(resource_type) if r.inputs.get("bucket") == name]
        return resource

    block = on_bucket("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert all(
        block.inputs[k] is True
        for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    )
    assert on_bucket("aws:s3/bucketVersioning:BucketVersioning").inputs["versioningConfiguration"] == {
        "status": "Enabled"
    }
    (rule,) = on_bucket(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    ).inputs["rules"]
    default = rule["applyServerSideEncryptionByDefault"]
    assert default["sseAlgorithm"] == "aws:kms"
    assert default["kmsMasterKeyId"].endswith(":vault-unseal-snapshots")
    assert _named(run, "aws:kms/key:Key", "vault-unseal-snapshots").inputs["enableKeyRotation"] is True
    (lifecycle,) = on_bucket("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs[
        "rules"
    ]
    assert lifecycle["filter"] == {"prefix": SNAPSHOT_PREFIX} and lifecycle["status"] == "Enabled"
    assert lifecycle["noncurrentVersionExpiration"]["noncurrentDays"] > 0
    (deny,) = _statements(on_bucket("aws:s3/bucketPolicy:BucketPolicy"))
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_snapshot_identity_may_only_put_under_its_prefix(run: StackRun) -> None:
    snapshots = project_chart_values("its-vault-config", run.stack)["snapshots"]
    namespace = chart_namespace("its-vault-config")
    role = _named(run, "aws:iam/role:Role", "vault-unseal-snapshots")
    (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust["Condition"]["StringEquals"][f"{ISSUER}:sub"] == (
        f"system:serviceaccount:{namespace}:{snapshots['serviceAccount']}"
    )
    statements = {s["Sid"]: s for s in _statements(_attached(run, "vault-unseal-snapshots"))}
    bucket = _named(run, "aws:s3/bucket:Bucket", "vault-unseal-snapshots").inputs["bucket"]
    assert statements["PutSnapshots"]["Action"] == "s3:PutObject"
    assert statements["PutSnapshots"]["Resource"] == f"arn:aws:s3:::{bucket}/{SNAPSHOT_PREFIX}*"
    assert set(statements["EncryptSnapshots"]["Action"]) <= {
        "kms:GenerateDataKey",
        "kms:Encrypt",
        "kms:Decrypt",
    }
    assert statements["EncryptSnapshots"]["Resource"].endswith(":vault-unseal-snapshots")
    assert set(statements) == {"PutSnapshots", "EncryptSnapshots"}
    # The chart's CronJob finds its identity and its target where the chart's values say.
    account = _named(run, "kubernetes:core/v1:ServiceAccount", "vault-unseal-snapshots").inputs
    assert account["metadata"]["name"] == snapshots["serviceAccount"]
    assert account["metadata"]["namespace"] == namespace
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].endswith(
        "/vault-unseal-snapshots"
    )
    target = _named(run, "kubernetes:core/v1:ConfigMap", "vault-unseal-snapshot-target").inputs
    assert target["metadata"]["name"] == snapshots["targetConfigMap"]
    assert target["data"] == {
        "bucket": bucket,
        "prefix": SNAPSHOT_PREFIX,
        "region": load_stack_file(run.stack).region,
    }
    assert run.exports["openbaoSnapshotBucket"] == bucket


def test_the_active_server_s_telemetry_is_on_and_scraped_over_tls(run: StackRun) -> None:
    values = _release_values(run)
    config = openbao_config(values)
    (telemetry,) = config["telemetry"]
    assert telemetry["prometheus_retention_time"] and telemetry["disable_hostname"] is True
    (listener_telemetry,) = config["listener"][0]["tcp"]["telemetry"]
    assert listener_telemetry["unauthenticated_metrics_access"] is True
    monitor = values["serverTelemetry"]["serviceMonitor"]
    assert monitor["enabled"] is True
    assert monitor["selectors"] == {"release": "kube-prometheus-stack"}
    tls = monitor["tlsConfig"]
    assert "insecureSkipVerify" not in tls
    assert tls["serverName"] in openbao_dns_names("openbao", load_catalogue().release("openbao").namespace)
    # The CA only: a Secret of the program in the release's namespace, without the server's key.
    namespace = load_catalogue().release("openbao").namespace
    assert secret_data(run, namespace, tls["ca"]["secret"]["name"]) == {
        "ca.crt": secret_data(run, namespace, openbao_tls_secret(values))["ca.crt"]
    }
