"""What the app's pods on the real node need of the local platform (`make up`), read from outside
it: infra.cluster never imports infra.local (tests/architecture).

- Its endpoints: the platform's one port scheme, infra/local/platform.yaml (offsets from its
  port base; ITS_PORT_BASE moves it), read as data like every fact file.
- Whether its stores answer: `python -m infra.local status`, its own report.
- Each app identity's Vault AppRole login: the role id its Vault stack records in the state
  directory's secrets/platform.json and the secret id beside it (secrets/<role>.secret-id), both
  0600 under ITS_STATE_DIR (or the file's state_dir). They reach the cluster only as a Secret.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from infra.facts.paths import REPO_ROOT, relative
from infra.kernel.layout import HOST
from infra.kernel.ports import Ports, port_base_from_env

PLATFORM_FILE = REPO_ROOT / "infra" / "local" / "platform.yaml"
# The stores the app's pods talk to: their /readyz (and the worker's start) needs every one.
STORES = ("postgres", "redis", "kafka", "minio", "vault")


class LocalPlatformError(RuntimeError):
    """The local platform cannot give the pods what they need; the message says what to do."""


@dataclass(frozen=True)
class AppRoleLogin:
    role_id: str
    secret_id: str


@dataclass(frozen=True)
class LocalPlatform:
    state_dir: Path
    ports: Ports

    @classmethod
    def locate(cls) -> LocalPlatform:
        """The platform `make up` (or the test session) runs: ITS_STATE_DIR and ITS_PORT_BASE,
        else the defaults of infra/local/platform.yaml, as infra.local itself chooses them."""
        document: dict[str, Any] = yaml.safe_load(PLATFORM_FILE.read_text())
        base = port_base_from_env("ITS_PORT_BASE", int(document["port_base"]))
        env_state = os.environ.get("ITS_STATE_DIR")
        state = Path(env_state) if env_state else REPO_ROOT / str(document["state_dir"])
        return cls(state.resolve(), Ports(base, document["ports"]))

    def unhealthy_stores(self, python: Path) -> dict[str, str]:
        """Each store the pods need that is not healthy now, with what the platform says of it
        (every store, when the platform does not answer at all)."""
        done = subprocess.run(
            [str(python), "-m", "infra.local", "status"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        try:
            report: dict[str, Any] = json.loads(done.stdout)
        except json.JSONDecodeError:
            reason = (done.stderr.strip().splitlines() or ["no status"])[-1]
            return dict.fromkeys(STORES, reason)
        return {
            store: json.dumps(report.get(store, {}).get("detail", "not reported"))[:200]
            for store in STORES
            if not report.get(store, {}).get("healthy")
        }

    def login(self, role: str) -> AppRoleLogin:
        secrets_dir = self.state_dir / "secrets"
        platform_json = secrets_dir / "platform.json"
        secret_file = secrets_dir / f"{role}.secret-id"
        try:
            role_id = json.loads(platform_json.read_text()).get(f"vault_role_id:{role}")
            secret_id = secret_file.read_text().strip()
        except (OSError, json.JSONDecodeError) as error:
            raise LocalPlatformError(f"the local platform's AppRole login of {role}: {error}") from error
        if not role_id or not secret_id:
            raise LocalPlatformError(
                f"{relative(platform_json)} has no vault_role_id:{role}, or {secret_file.name} is "
                "empty: the local platform is not provisioned (make up)"
            )
        return AppRoleLogin(str(role_id), secret_id)

    def address(self, port: int) -> str:
        return f"{HOST}:{port}"

    @property
    def pooler(self) -> str:
        return self.address(self.ports.pgbouncer)

    @property
    def primary(self) -> str:
        return self.address(self.ports.haproxy_primary)

    @property
    def kafka_brokers(self) -> list[str]:
        return [self.address(port) for port in self.ports.many("kafka_broker")]

    @property
    def sentinels(self) -> list[str]:
        return [self.address(port) for port in self.ports.many("sentinel")]

    @property
    def minio(self) -> str:
        return self.address(self.ports.minio_api)

    @property
    def vault_url(self) -> str:
        return f"http://{self.address(self.ports.vault)}"
