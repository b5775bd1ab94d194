"""infrastructure/vault/vault.yaml: the KV mount, the AppRoles and the secret paths."""

from __future__ import annotations

from functools import cache

from pydantic import Field

from infra.facts._load import Strict, load
from infra.facts.paths import INFRASTRUCTURE

VAULT_FILE = INFRASTRUCTURE / "vault" / "vault.yaml"
POLICIES_DIR = INFRASTRUCTURE / "vault" / "policies"


class AppRole(Strict):
    name: str
    policies: list[str] = Field(min_length=1)
    token_ttl: str
    token_max_ttl: str


class StreamSecrets(Strict):
    """Where camera streams' credentials live: operators write one path per camera (or group)."""

    prefix: str = Field(pattern=r"^[a-z0-9/-]+/$")
    keys: list[str] = Field(min_length=1)


class VaultLayout(Strict):
    kv_mount: str
    kv_version: int = Field(ge=2, le=2)
    approles: list[AppRole]
    # path under the kv mount -> the keys it holds
    secrets: dict[str, list[str]]
    stream_secrets: StreamSecrets


@cache
def vault_layout() -> VaultLayout:
    return load(VaultLayout, VAULT_FILE)
