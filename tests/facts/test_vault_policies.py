"""The Vault policies, parsed as HCL and matched by Vault's rules: each app identity can read
exactly the secret paths the app reads as that identity, and nothing of another's.

The local Vault-API server enforces no policy (README, "Security model"): these checks on the
files are what stands for enforcement until a cluster's OpenBao loads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.common.secrets import api_paths, identity_paths, migration_paths
from app.common.settings import Settings
from infra.facts._load import FactFileError
from infra.facts.vault import vault_layout
from infra.facts.vault_policies import VaultPolicy, parse_policy, vault_policies


def _reads(role: str) -> set[str]:
    """The KV paths the app reads when it logs in as `role` (what app/common/secrets.py asks)."""
    settings = Settings(vault_role=role)
    reads = {
        "its-api": api_paths,
        "its-worker": identity_paths,
        "its-ingest": identity_paths,
        "its-migrate": migration_paths,
    }
    return set(reads[role](settings))


def _policies_of(role: str) -> list[VaultPolicy]:
    (approle,) = [r for r in vault_layout().approles if r.name == role]
    return [vault_policies()[name] for name in approle.policies]


def _can_read(role: str, path: str) -> bool:
    kv_path = f"{vault_layout().kv_mount}/data/{path}"
    return any(policy.allows(kv_path, "read") for policy in _policies_of(role))


@pytest.mark.parametrize("role", [approle.name for approle in vault_layout().approles])
def test_each_identity_reads_what_the_app_reads_as_it_and_nothing_else(role: str) -> None:
    own = _reads(role)
    assert own and all(_can_read(role, path) for path in own), own
    for other in {a.name for a in vault_layout().approles} - {role}:
        for path in _reads(other) - own:
            assert not _can_read(role, path), (role, path)
    # Read-only: no identity may write or delete even its own secrets.
    kv = f"{vault_layout().kv_mount}/data/"
    for policy in _policies_of(role):
        for path in own:
            assert not policy.allows(kv + path, "update") and not policy.allows(kv + path, "delete")


def test_only_the_ingest_reads_the_camera_streams_logins() -> None:
    """A camera's stream_secret (its/streams/<name>, app/common/cameras.py) is read by the
    ingest at each connect; no other identity may read one."""
    path = vault_layout().stream_secrets.prefix + "junction-12"
    readers = {a.name for a in vault_layout().approles if _can_read(a.name, path)}
    assert readers == {"its-ingest"}


def test_every_secret_path_the_layout_declares_is_read_by_some_identity() -> None:
    declared = set(vault_layout().secrets)
    read = set().union(*(_reads(a.name) for a in vault_layout().approles))
    assert declared == read


def _policy(tmp_path: Path, text: str) -> VaultPolicy:
    path = tmp_path / "probe.hcl"
    path.write_text(text)
    return parse_policy(path)


def test_the_most_specific_rule_governs_and_deny_wins_there(tmp_path: Path) -> None:
    policy = _policy(
        tmp_path,
        """
        path "secret/data/its/*" { capabilities = ["read"] }
        path "secret/data/its/api/pepper" { capabilities = ["deny"] }
        path "secret/data/+/worker/*" { capabilities = ["read", "list"] }
        """,
    )
    assert policy.allows("secret/data/its/api/kafka", "read")
    assert not policy.allows("secret/data/its/api/pepper", "read")
    # `+` is one segment: the `its/*` glob (first wildcard later) governs its/worker/..., not `+`.
    assert not policy.allows("secret/data/its/worker/kafka", "list")
    assert policy.allows("secret/data/x/worker/kafka", "list")
    assert not policy.allows("secret/data/x/y/worker/kafka", "read")
    assert not policy.allows("secret/metadata/its/api/kafka", "read")


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('path "secret/*" { capabilities = ["read"] ', "not HCL"),
        ('path "secret/*" { capabilities = ["reed"] }', "capabilities must be some of"),
        ('path "secret/*/x" { capabilities = ["read"] }', "may only end a pattern"),
        ('token "x" { capabilities = ["read"] }', "only path blocks"),
        ("# nothing", "no path blocks"),
    ],
)
def test_a_broken_policy_is_refused_with_its_file_named(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(FactFileError, match=named) as refused:
        _policy(tmp_path, text)
    assert "probe.hcl" in str(refused.value)
