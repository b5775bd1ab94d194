"""Secrets from Vault through hvac: AppRole (local platform) or Kubernetes auth (clusters).

Secrets are read once at start-up and cached; a background refresh re-reads them. When Vault
is down or sealed, the app keeps serving with the cached values and says so in the logs.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hvac

from app.common.settings import Settings

log = logging.getLogger(__name__)
SERVICE_ACCOUNT_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


@dataclass(frozen=True)
class ApiKey:
    name: str
    role: str


# Each identity's own data-plane credentials (infrastructure/vault/vault.yaml; each identity's
# Vault policy reads only its own prefix).
API_KAFKA, API_REDIS = "its/api/kafka", "its/api/redis"
WORKER_KAFKA, WORKER_REDIS = "its/worker/kafka", "its/worker/redis"


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class RedisCredentials:
    """Credentials for the Redis servers and, apart, for the Sentinels (locally the identity's
    own Sentinel ACL user; a redis-ha release's Sentinels know only their requirepass)."""

    server: Credentials
    sentinel: Credentials


class VaultSecrets:
    PATHS = ("its/shared/postgres", "its/shared/minio")

    def __init__(self, settings: Settings, paths: tuple[str, ...] = PATHS) -> None:
        self.settings = settings
        self.paths = paths
        self._values: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.refresh()

    def _client(self) -> hvac.Client:
        s = self.settings
        client = hvac.Client(url=s.vault_addr, timeout=5)
        if s.vault_auth_method == "kubernetes":
            client.auth.kubernetes.login(role=s.vault_role, jwt=SERVICE_ACCOUNT_TOKEN.read_text())
        else:
            if not s.vault_role_id or not s.vault_secret_id_file:
                raise RuntimeError("ITS_VAULT_ROLE_ID and ITS_VAULT_SECRET_ID_FILE are required for AppRole")
            client.auth.approle.login(
                role_id=s.vault_role_id, secret_id=s.vault_secret_id_file.read_text().strip()
            )
        return client

    def refresh(self) -> None:
        """Log in and re-read every path; a fresh login each time sidesteps token renewal,
        which not every Vault-API server supports."""
        client = self._client()
        values = {}
        for path in self.paths:
            response = client.secrets.kv.v2.read_secret_version(
                path=path, mount_point=self.settings.vault_kv_mount, raise_on_deleted_version=True
            )
            values[path] = dict(response["data"]["data"])
        with self._lock:
            self._values = values

    def start_background_refresh(self, interval: float = 300) -> threading.Event:
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(interval):
                try:
                    self.refresh()
                except Exception as error:
                    log.warning("vault refresh failed, serving cached secrets", extra={"error": str(error)})

        threading.Thread(target=loop, daemon=True, name="vault-refresh").start()
        return stop

    def get(self, path: str) -> dict[str, Any]:
        with self._lock:
            return dict(self._values[path])

    def credentials(self, path: str) -> Credentials:
        """A user name and password kept at `path` (its/<identity>/kafka)."""
        values = self.get(path)
        return Credentials(values["username"], values["password"])

    def redis_credentials(self, path: str) -> RedisCredentials:
        values = self.get(path)
        return RedisCredentials(
            Credentials(values["username"], values["password"]),
            Credentials(values["sentinel_username"], values["sentinel_password"]),
        )

    def api_keys(self) -> dict[str, ApiKey]:
        raw = json.loads(self.get("its/api/auth")["api_keys"])
        return {key: ApiKey(name=v["name"], role=v["role"]) for key, v in raw.items()}

    def database_dsn(self) -> str:
        """The settings' URL with the password from Vault."""
        creds = self.get("its/shared/postgres")
        scheme, _, rest = self.settings.database_url.partition("://")
        _, _, hostpart = rest.rpartition("@")
        return f"{scheme}://{creds['username']}:{creds['password']}@{hostpart}"
