"""Vault: the Vault-API server, initialised and unsealed by the platform (and re-unsealed by a
supervised unsealer after a restart, as a cluster's auto-unseal would), then the KV mount,
AppRoles and the app's secrets from infrastructure/vault/.

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

import time
from pathlib import Path
from typing import Any

import httpx
import hvac

from app.common.apikeys import dump_records
from infra.facts import kafka_users, redis
from infra.facts.buckets import ServiceUser, buckets
from infra.facts.database import database_roles
from infra.facts.vault import vault_layout
from infra.facts.vault_policies import vault_policies
from infra.kernel.health import Health, wait_until
from infra.kernel.layout import HOST
from infra.kernel.programs import Program
from infra.local.secrets import PlatformSecrets
from infra.local.stacks.app import API_IDENTITY, INGEST_IDENTITY, WORKER_IDENTITY
from infra.local.stacks.base import Stack, endpoints, url
from infra.local.stacks.cameras import STREAM_PASSWORD_SECRET, STREAM_SECRET, STREAM_USER
from infra.local.stacks.postgres import password_secret

SERVER = "RustyVault (Vault HTTP API); policies not enforced"


class Vault(Stack):
    name = "vault"
    start_timeout = 30

    @property
    def address(self) -> str:
        return url(self.ports.vault)

    def client(self, token: str | None = None) -> hvac.Client:
        return hvac.Client(url=self.address, token=token, timeout=10)

    def render(self) -> None:
        data_dir = self.cfg.path("vault", "data")
        data_dir.mkdir(parents=True, exist_ok=True)
        config = self.cfg.conf_dir / "vault.hcl"
        config.write_text(
            "# The local Vault-API server (RustyVault): written by infra/local/stacks/vault.py.\n"
            f'storage "file" {{\n  path = "{data_dir}"\n}}\n\n'
            f'listener "tcp" {{\n  address     = "{HOST}:{self.ports.vault}"\n  tls_disable = true\n}}\n\n'
            f'api_addr = "{self.address}"\n'
        )
        config.chmod(0o600)

    def programs(self) -> list[Program]:
        platform_env = {"ITS_STATE_DIR": str(self.cfg.state_dir), "ITS_PORT_BASE": str(self.cfg.port_base)}
        return [
            Program(
                "vault",
                self.name,
                [str(self.cfg.tools.rvault), "server", f"--config={self.cfg.conf_dir / 'vault.hcl'}"],
                directory=str(self.cfg.path("vault")),
            ),
            Program(
                "vault-unsealer",
                self.name,
                [str(self.cfg.tools.python), "-m", "infra.local", "unsealer"],
                environment=platform_env,
                autorestart="true",
            ),
        ]

    def answers(self) -> Health:
        try:
            self.client().sys.is_initialized()
        except Exception as error:
            return Health(False, {"error": type(error).__name__})
        return Health(True)

    def start(self) -> None:
        super().start()
        wait_until("vault to answer", self.answers, 30, log=self.ctx.log)
        self.unseal(self.secrets)

    def unseal(self, secrets: PlatformSecrets) -> bool:
        """Initialise once (keys kept in the state dir), then unseal if sealed. True when unsealed."""
        vault = self.client()
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

    def unseal_forever(self) -> None:
        """The supervised unsealer: unseal Vault whenever it is found sealed (after a restart)."""
        while True:
            try:
                # Re-read each time: this process starts before `up` initialises Vault.
                secrets = PlatformSecrets(self.cfg.secrets_file)
                if self.answers() and secrets.get("vault_init") and self.client().sys.is_sealed():
                    self.unseal(secrets)
                    self.ctx.log("vault was sealed: unsealed")
            except Exception as error:
                self.ctx.log(f"unsealer: {error}")
            time.sleep(1)

    def health(self) -> Health:
        try:
            data = httpx.get(f"{self.address}/v1/sys/seal-status", timeout=2).json()
        except (httpx.HTTPError, ValueError):
            return Health(False, {"reachable": False}, endpoints(self.ports.vault))
        initialized = self.secrets.get("vault_init") is not None
        return Health(
            initialized and data.get("sealed") is False,
            {"sealed": data.get("sealed"), "initialized": initialized, "server": SERVER},
            endpoints(self.ports.vault),
        )

    def app_secrets(self) -> dict[str, dict[str, Any]]:
        """What the provisioner writes under the KV mount: exactly the paths vault.yaml declares,
        each identity's credentials at its own path."""
        roles, users = database_roles(), buckets().users

        def postgres(role: str) -> dict[str, Any]:
            return {"username": role, "password": self.secrets[password_secret(role)]}

        def minio(user: ServiceUser) -> dict[str, Any]:
            return {"access_key": user.name, "secret_key": self.secrets[user.secret_name]}

        return {
            "its/api/postgres": postgres(roles.api),
            "its/api/minio": minio(users.api),
            # Hashed key records only; the pepper of their hashes at a path of its own.
            "its/api/auth": {"api_keys": dump_records(self.secrets.api_key_records())},
            "its/api/pepper": {"pepper": self.secrets["api_pepper"]},
            "its/worker/postgres": postgres(roles.worker),
            "its/worker/minio": minio(users.worker),
            "its/ingest/postgres": postgres(roles.ingest),
            "its/ingest/minio": minio(users.ingest),
            "its/migrate/postgres": postgres(roles.owner),
            **self.data_plane_secrets("its/api", API_IDENTITY),
            **self.data_plane_secrets("its/worker", WORKER_IDENTITY),
            **self.data_plane_secrets("its/ingest", INGEST_IDENTITY),
        }

    def data_plane_secrets(self, prefix: str, identity: str) -> dict[str, dict[str, Any]]:
        """An app identity's own Kafka and Redis credentials (generated by those stacks). On the
        local Sentinels the identity is an ACL user of its own, with the same password."""
        redis_password = self.secrets[redis.secret_name(identity)]
        return {
            f"{prefix}/kafka": {
                "username": identity,
                "password": self.secrets[kafka_users.secret_name(identity)],
            },
            f"{prefix}/redis": {
                "username": identity,
                "password": redis_password,
                "sentinel_username": identity,
                "sentinel_password": redis_password,
            },
        }

    def provision(self) -> str:
        layout = vault_layout()
        # Parsed as HCL first: a broken policy stops provisioning with its file named.
        policies = list(vault_policies())
        vault = self.client(self.secrets["vault_init"]["root_token"])
        mount = layout.kv_mount
        if f"{mount}/" not in vault.sys.list_mounted_secrets_engines():
            vault.sys.enable_secrets_engine(
                "kv", path=mount, description="ITS app secrets", options={"version": str(layout.kv_version)}
            )
        if "approle/" not in vault.sys.list_auth_methods():
            vault.sys.enable_auth_method("approle", path="approle", description="ITS app identities")
        values = self.app_secrets()
        if set(values) != set(layout.secrets):
            raise ValueError(
                f"vault.yaml: secrets declares {sorted(layout.secrets)}, "
                f"the provisioner writes {sorted(values)}"
            )
        for path, data in values.items():
            if sorted(data) != sorted(layout.secrets[path]):
                raise ValueError(
                    f"vault.yaml: secrets.{path} declares keys {layout.secrets[path]}, not {sorted(data)}"
                )
            # RustyVault's "v2" mount keeps v1 semantics: write the v2 envelope at the data path.
            vault.write_data(f"{mount}/data/{path}", data={"data": data, "metadata": {"version": 1}})
        for role in layout.approles:
            vault.write(
                f"auth/approle/role/{role.name}",
                token_policies=",".join(role.policies),
                token_ttl=role.token_ttl,
                token_max_ttl=role.token_max_ttl,
            )
            role_id = vault.read(f"auth/approle/role/{role.name}/role-id")["data"]["role_id"]
            secret_file = self.secret_id_file(role.name)
            if not secret_file.exists() or self.secrets.get(f"vault_role_id:{role.name}") != role_id:
                secret_id = vault.write(f"auth/approle/role/{role.name}/secret-id")["data"]["secret_id"]
                secret_file.write_text(secret_id)
                secret_file.chmod(0o600)
            self.secrets[f"vault_role_id:{role.name}"] = role_id
        # The local test cameras' login, at the path they reference (operators write a real
        # camera's: README, "Cameras that stream").
        stream_login = {"username": STREAM_USER, "password": self.secrets[STREAM_PASSWORD_SECRET]}
        vault.write_data(
            f"{mount}/data/{STREAM_SECRET}", data={"data": stream_login, "metadata": {"version": 1}}
        )
        self.secrets["vault_policies_checked"] = policies
        roles = ", ".join(r.name for r in layout.approles)
        return f"kv mount {mount}, approles {roles}; policies checked, not enforced"

    def secret_id_file(self, role: str) -> Path:
        return self.cfg.path("secrets", f"{role}.secret-id")
