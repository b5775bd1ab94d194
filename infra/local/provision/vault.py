"""Vault: initialise and unseal, the KV mount, AppRoles and the app's secrets from
infrastructure/vault/.

The local server is RustyVault (no Vault or OpenBao server builds from this machine's
registries). It speaks the HTTP API hvac uses for init, unseal, KV and AppRole, with two
differences this module works around, each said where it happens:
- it has no policy API and enforces no ACLs: the policies in infrastructure/vault/policies are
  checked for syntax and recorded, not loaded (`status` says so);
- its KV "version 2" mount keeps version-1 semantics, so the provisioner writes the KV v2
  envelope ({"data": ..., "metadata": ...}) at the v2 data path. The app reads with the real
  KV v2 call (hvac secrets.kv.v2), unchanged for a cluster's Vault or OpenBao.
"""

from __future__ import annotations

import re
from typing import Any

import hvac
import yaml

from app.common.apikeys import dump_records
from infra.local.config import HOST, SHARED, LocalPlatformConfig
from infra.local.secrets import PlatformSecrets

POLICY_BLOCK = re.compile(r'path\s+"[^"]+"\s*\{\s*capabilities\s*=\s*\[[^\]]*\]\s*\}', re.S)


def client(cfg: LocalPlatformConfig, token: str | None = None) -> hvac.Client:
    return hvac.Client(url=f"http://{HOST}:{cfg.ports.vault}", token=token, timeout=10)


def unseal(cfg: LocalPlatformConfig, secrets: PlatformSecrets) -> bool:
    """Initialise once (keys kept in the state dir), then unseal if sealed. True when unsealed."""
    vault = client(cfg)
    init = secrets.get("vault_init")
    if init is None:
        if vault.sys.is_initialized():
            raise RuntimeError(
                "Vault is initialised but its keys are not in the state directory; "
                "run `make down` and remove the state directory to start over"
            )
        result = vault.sys.initialize(secret_shares=5, secret_threshold=3)
        init = {"keys": result["keys"], "root_token": result["root_token"]}
        secrets["vault_init"] = init
    if vault.sys.is_sealed():
        for key in init["keys"][:3]:
            vault.sys.submit_unseal_key(key)
    return not vault.sys.is_sealed()


def check_policies() -> list[str]:
    """Every policy file parses as HCL path blocks; returns the policy names."""
    names = []
    for path in sorted(SHARED["vault_policies"].glob("*.hcl")):
        body = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))
        if not body.strip() or POLICY_BLOCK.sub("", body).strip():
            raise ValueError(f'{path}: not a list of path "..." {{ capabilities = [...] }} blocks')
        names.append(path.stem)
    return names


def _write_kv2(vault: hvac.Client, mount: str, path: str, data: dict[str, Any]) -> None:
    vault.write_data(f"{mount}/data/{path}", data={"data": data, "metadata": {"version": 1}})


def provision(cfg: LocalPlatformConfig, secrets: PlatformSecrets) -> str:
    spec = yaml.safe_load(SHARED["vault"].read_text())
    policies = check_policies()
    vault = client(cfg, secrets["vault_init"]["root_token"])
    mount = spec["kv_mount"]
    if f"{mount}/" not in vault.sys.list_mounted_secrets_engines():
        vault.sys.enable_secrets_engine(
            "kv", path=mount, description="ITS app secrets", options={"version": "2"}
        )
    if "approle/" not in vault.sys.list_auth_methods():
        vault.sys.enable_auth_method("approle", path="approle", description="ITS app identities")

    values = {
        "its/shared/postgres": {"username": "its_app", "password": secrets["postgres_app"]},
        "its/shared/minio": {"access_key": "its-app", "secret_key": secrets["minio_its_app"]},
        # Hashed records only; the pepper of their hashes at a path of its own.
        "its/api/auth": {"api_keys": dump_records(secrets.api_key_records())},
        "its/api/pepper": {"pepper": secrets["api_pepper"]},
    }
    declared = spec["secrets"]
    if set(values) != set(declared):
        raise ValueError(
            f"{SHARED['vault']}: secrets declares {sorted(declared)}, provisioner writes {sorted(values)}"
        )
    for path, data in values.items():
        if sorted(data) != sorted(declared[path]):
            raise ValueError(
                f"{SHARED['vault']}: secrets.{path} declares keys {declared[path]}, not {sorted(data)}"
            )
        _write_kv2(vault, mount, path, data)

    for role in spec["approles"]:
        name = role["name"]
        vault.write(
            f"auth/approle/role/{name}",
            token_policies=",".join(role["policies"]),
            token_ttl=role["token_ttl"],
            token_max_ttl=role["token_max_ttl"],
        )
        role_id = vault.read(f"auth/approle/role/{name}/role-id")["data"]["role_id"]
        secret_file = cfg.path("secrets", f"{name}.secret-id")
        if not secret_file.exists() or secrets.get(f"vault_role_id:{name}") != role_id:
            secret_id = vault.write(f"auth/approle/role/{name}/secret-id")["data"]["secret_id"]
            secret_file.write_text(secret_id)
            secret_file.chmod(0o600)
        secrets[f"vault_role_id:{name}"] = role_id
    secrets["vault_policies_checked"] = policies
    roles = ", ".join(r["name"] for r in spec["approles"])
    return f"kv mount {mount}, approles {roles}; policies checked, not enforced"
