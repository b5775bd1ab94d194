"""OpenBao initialises itself, per stack: the self-initialisation the program hands the release
(audit first, Kubernetes auth, the provisioner's and break-glass roles with their policy files),
the release reading it, and the provisioner's policy allowing exactly what its Job does."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.facts.vault import vault_layout
from infra.facts.vault_policies import vault_policies
from infra.pulumi.catalogue import load_catalogue
from infra.pulumi.gitops_root import chart_namespace
from infra.pulumi.project_charts import project_chart_values
from infra.pulumi.secrets import MADE_ELSEWHERE, VAULT_PATHS_MADE_ELSEWHERE
from infra.pulumi.vault_bootstrap import (
    AUDIT_FILE,
    OPERATOR_POLICY,
    PROVISIONER_POLICY,
    SELF_INIT_KEY,
    policy_text,
    self_init_config_map,
)
from tests.pulumi.stacks import STACKS, StackRun

CONFIG_MAP = "kubernetes:core/v1:ConfigMap"


def self_init(run: StackRun) -> list[dict[str, Any]]:
    """The initialize stanzas, as (stanza name, [(request name, request)]) in the order OpenBao
    runs them."""
    values = load_catalogue().release("openbao").values(run.stack)
    (config_map,) = [
        c for c in run.of_type(CONFIG_MAP) if c.inputs["metadata"]["name"] == self_init_config_map(values)
    ]
    assert config_map.inputs["metadata"]["namespace"] == "vault"
    stanzas: list[dict[str, Any]] = json.loads(config_map.inputs["data"][SELF_INIT_KEY])["initialize"]
    return stanzas


def requests(run: StackRun) -> list[tuple[str, dict[str, Any]]]:
    return [
        (name, request)
        for stanza in self_init(run)
        for (body,) in [list(stanza.values())]
        for item in body["request"]
        for name, request in item.items()
    ]


def test_audit_is_enabled_before_any_other_request(run: StackRun) -> None:
    (_, request), *_ = requests(run)
    assert request == {
        "operation": "update",
        "path": "sys/audit/file",
        "data": {"type": "file", "options": {"file_path": AUDIT_FILE}},
    }
    # The audit volume of the release is where the file goes.
    assert AUDIT_FILE.startswith("/openbao/audit/")
    assert load_catalogue().release("openbao").values(run.stack)["server"]["auditStorage"]["enabled"]


def test_kubernetes_auth_is_enabled_and_configured(run: StackRun) -> None:
    by_path = {request["path"]: request["data"] for _, request in requests(run)}
    assert by_path["sys/auth/kubernetes"] == {"type": "kubernetes"}
    assert by_path["auth/kubernetes/config"]["kubernetes_host"].startswith("https://kubernetes.default.svc")


def test_the_provisioner_role_is_the_its_vault_config_job_s_service_account(run: StackRun) -> None:
    """The role binds exactly the service account the its-vault-config Job runs as, in its
    namespace, with tokens of the audience its volume asks for; the policy is the file's text."""
    chart = project_chart_values("its-vault-config", run.stack)
    by_path = {request["path"]: request["data"] for _, request in requests(run)}
    role = by_path[f"auth/kubernetes/role/{chart['provisioner']['vaultRole']}"]
    assert role["bound_service_account_names"] == [chart["provisioner"]["serviceAccount"]]
    assert role["bound_service_account_namespaces"] == [chart_namespace("its-vault-config")]
    assert role["audience"] == chart["app"]["tokenAudience"]
    assert role["token_policies"] == [PROVISIONER_POLICY]
    for policy in (PROVISIONER_POLICY, OPERATOR_POLICY):
        assert by_path[f"sys/policies/acl/{policy}"] == {"policy": policy_text(policy)}


def test_break_glass_is_a_service_account_nothing_runs_as(run: StackRun) -> None:
    by_path = {request["path"]: request["data"] for _, request in requests(run)}
    role = by_path[f"auth/kubernetes/role/{OPERATOR_POLICY}"]
    (account,) = [
        a
        for a in run.of_type("kubernetes:core/v1:ServiceAccount")
        if a.inputs["metadata"]["name"] == role["bound_service_account_names"][0]
    ]
    assert account.inputs["metadata"]["namespace"] == role["bound_service_account_namespaces"][0] == "vault"
    assert account.inputs["automountServiceAccountToken"] is False
    assert role["token_policies"] == [OPERATOR_POLICY] and role["token_ttl"] == "1h"


def test_the_release_reads_the_self_initialisation_and_waits_for_it(run: StackRun) -> None:
    values = load_catalogue().release("openbao").values(run.stack)
    name = self_init_config_map(values)
    (release,) = [r for r in run.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["name"] == "openbao"]
    assert (
        release.inputs["values"]["server"]["extraArgs"]
        == f"-config=/openbao/userconfig/{name}/{SELF_INIT_KEY}"
    )
    (config_map,) = [r for r in run.of_type(CONFIG_MAP) if r.inputs["metadata"]["name"] == name]
    assert config_map.name in release.options.depends_on


@pytest.mark.parametrize("env", STACKS)
def test_no_admin_token_is_left_to_an_operator(env: str) -> None:
    assert not [name for _, name in MADE_ELSEWHERE if "vault" in name]
    chart = project_chart_values("its-vault-config", env)
    assert "adminTokenSecret" not in chart["vault"]


def test_the_provisioner_may_do_what_its_job_does_and_no_more() -> None:
    """Read with OpenBao's own rule priority (infra/facts/vault_policies.py): the KV mount, every
    policy file, every role the chart writes and every seeded path; never the API's key records,
    a secret's value, the seal, raw storage or another auth method."""
    policy = vault_policies()[PROVISIONER_POLICY]
    layout = vault_layout()
    assert policy.allows("sys/mounts", "read")
    assert policy.allows(f"sys/mounts/{layout.kv_mount}", "create")
    for name in vault_policies():
        assert policy.allows(f"sys/policies/acl/{name}", "update"), name
    for role in [*(r.name for r in layout.approles), "openbao-snapshot"]:
        assert policy.allows(f"auth/kubernetes/role/{role}", "create"), role
    seeded = [p for p in layout.secrets if p not in VAULT_PATHS_MADE_ELSEWHERE]
    for path in seeded:
        assert policy.allows(f"{layout.kv_mount}/data/{path}", "create"), path
        assert not policy.allows(f"{layout.kv_mount}/data/{path}", "read"), path
    for path in VAULT_PATHS_MADE_ELSEWHERE:
        assert not policy.allows(f"{layout.kv_mount}/data/{path}", "update"), path
    for path, capability in (
        ("sys/seal", "update"),
        ("sys/raw/core", "read"),
        ("sys/auth/userpass", "update"),
        ("sys/audit/file", "delete"),
        ("auth/token/create", "update"),
    ):
        assert not policy.allows(path, capability), path


def test_break_glass_reaches_raft_and_recovery_keys_but_no_secret() -> None:
    policy = vault_policies()[OPERATOR_POLICY]
    assert policy.allows("sys/storage/raft/snapshot", "read")
    assert policy.allows("sys/storage/raft/snapshot-force", "update")
    assert policy.allows("sys/rotate/recovery/init", "update")
    assert not policy.allows("secret/data/its/api/pepper", "read")
    assert not policy.allows("sys/policies/acl/its-api", "update")
