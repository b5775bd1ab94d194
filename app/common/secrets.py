"""Secrets from Vault through hvac: AppRole (local platform) or Kubernetes auth (clusters).

Secrets are read once at start-up and cached; a background refresh re-reads them. When Vault
is down or sealed, the app keeps serving with the cached values and says so in the logs.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hvac

from app.common.apikeys import ApiKeyRecord, KeySet
from app.common.settings import Settings

log = logging.getLogger(__name__)
SERVICE_ACCOUNT_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
# The API key records and the pepper of their hashes live apart, so a reader of one path
# alone (a mis-scoped policy, a copied KV entry) cannot check or forge a key.
API_KEYS_PATH = "its/api/auth"
API_PEPPER_PATH = "its/api/pepper"


def identity_path(settings: Settings, name: str) -> str:
    """A secret of this process's own identity: its-api reads its/api/<name>, its-worker
    its/worker/<name>; each identity's policy lets it read its own and nothing else."""
    return f"{settings.vault_role.replace('-', '/', 1)}/{name}"


def identity_paths(settings: Settings) -> tuple[str, ...]:
    """What every app identity reads: its own login to each data stack."""
    return tuple(identity_path(settings, stack) for stack in ("postgres", "minio", "kafka", "redis"))


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


def migration_paths(settings: Settings) -> tuple[str, ...]:
    """The migration Job's (its-migrate): the schema owner's database login, nothing else."""
    return (identity_path(settings, "postgres"),)


def api_paths(settings: Settings) -> tuple[str, ...]:
    """The API's: its own, then the key records and their pepper."""
    return (*identity_paths(settings), API_KEYS_PATH, API_PEPPER_PATH)


class VaultSecrets:
    def __init__(self, settings: Settings, paths: tuple[str, ...] | None = None) -> None:
        self.settings = settings
        self.paths = paths or identity_paths(settings)
        self._values: dict[str, dict[str, Any]] = {}
        self._keys: KeySet | None = None
        self._lock = threading.Lock()
        self.refresh()

    def _client(self) -> hvac.Client:
        s = self.settings
        # An https address is verified against the configured CA, or the system trust store.
        verify: bool | str = str(s.vault_ca_file) if s.vault_ca_file else True
        client = hvac.Client(url=s.vault_addr, timeout=5, verify=verify)
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
        keys = None
        if API_KEYS_PATH in values:
            # Parsed here, once per refresh: a malformed write to Vault fails the refresh (the
            # API keeps the keys it had) instead of failing every request.
            keys = KeySet.from_vault(values[API_KEYS_PATH]["api_keys"], values[API_PEPPER_PATH]["pepper"])
        with self._lock:
            self._values = values
            self._keys = keys

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

    def read(self, path: str) -> dict[str, Any]:
        """One path outside the identity's fixed set, read now and not cached (the ingest's
        camera stream credentials, its/streams/<name>: rotated ones apply at the next read)."""
        response = self._client().secrets.kv.v2.read_secret_version(
            path=path, mount_point=self.settings.vault_kv_mount, raise_on_deleted_version=True
        )
        return dict(response["data"]["data"])

    def get(self, path: str) -> dict[str, Any]:
        with self._lock:
            return dict(self._values[path])

    def key_set(self) -> KeySet:
        """The API key records and their pepper, as of the last successful refresh."""
        with self._lock:
            keys = self._keys
        if keys is None:
            raise KeyError(f"{API_KEYS_PATH} is not among the paths read: {self.paths}")
        return keys

    def api_keys(self) -> dict[str, ApiKeyRecord]:
        """The API key records by id."""
        return dict(self.key_set().records)

    def kafka_credentials(self) -> Credentials:
        """This identity's Kafka user (SCRAM), from its/<identity>/kafka."""
        values = self.get(identity_path(self.settings, "kafka"))
        return Credentials(values["username"], values["password"])

    def redis_credentials(self) -> RedisCredentials:
        """This identity's Redis ACL users, from its/<identity>/redis."""
        values = self.get(identity_path(self.settings, "redis"))
        return RedisCredentials(
            Credentials(values["username"], values["password"]),
            Credentials(values["sentinel_username"], values["sentinel_password"]),
        )

    def database_dsn(self) -> str:
        """The settings' URL with the password from Vault."""
        creds = self.get(identity_path(self.settings, "postgres"))
        scheme, _, rest = self.settings.database_url.partition("://")
        _, _, hostpart = rest.rpartition("@")
        return f"{scheme}://{creds['username']}:{creds['password']}@{hostpart}"
