"""The local platform's configuration: infra/local/platform.yaml plus ITS_* overrides, typed."""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from infra.facts.paths import REPO_ROOT, relative
from infra.facts.postgres import postgres
from infra.facts.versions import versions
from infra.kernel.layout import CACHE_DIR, SYSTEM_CACHE_DIR, StateLayout
from infra.kernel.ports import Offset, PortError, Ports, check_offsets, port_base_from_env

CONFIG_FILE = Path(__file__).with_name("platform.yaml")


class KafkaSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    heap: str = Field(pattern=r"^\d+[mg]$")


# Alertmanager's duration syntax (a number and a unit), as its config takes it.
DURATION = r"^\d+(ms|s|m|h)$"


class AlertingSettings(BaseModel):
    """The local Alertmanager's root-route timing (the shared route tree is left as it is)."""

    model_config = ConfigDict(extra="forbid")
    group_wait: str = Field(pattern=DURATION)
    group_interval: str = Field(pattern=DURATION)


class PlatformFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    port_base: int = Field(ge=1024, le=32000)
    state_dir: str
    ports: dict[str, Offset]
    kafka: KafkaSettings
    alerting: AlertingSettings


class PlatformConfigError(ValueError):
    """platform.yaml or an ITS_* override is wrong; the message names the file and key."""


@dataclass(frozen=True)
class LocalPlatformConfig(StateLayout):
    file: PlatformFile
    state_dir: Path
    port_base: int

    @classmethod
    def load(cls, state_dir: Path | None = None, port_base: int | None = None) -> LocalPlatformConfig:
        where = relative(CONFIG_FILE)
        try:
            file = PlatformFile.model_validate(yaml.safe_load(CONFIG_FILE.read_text()))
            check_offsets(file.ports)
            chosen_base = port_base or port_base_from_env("ITS_PORT_BASE", file.port_base)
        except (ValidationError, PortError) as error:
            raise PlatformConfigError(f"{where}: {error}") from error
        env_state = os.environ.get("ITS_STATE_DIR")
        chosen_state = state_dir or (Path(env_state) if env_state else REPO_ROOT / file.state_dir)
        config = cls(file=file, state_dir=chosen_state.resolve(), port_base=chosen_base)
        try:
            _ = config.ports  # a base that pushes a port into the ephemeral range fails here
        except PortError as error:
            raise PlatformConfigError(f"{where}: {error}") from error
        return config

    @cached_property
    def ports(self) -> Ports:
        return Ports(self.port_base, self.file.ports)

    @cached_property
    def tools(self) -> Tools:
        return Tools.locate(versions())

    @property
    def secrets_file(self) -> Path:
        return self.path("secrets", "platform.json")

    @property
    def alert_receiver_token_file(self) -> Path:
        """The alert receiver's bearer token, beside the other secrets (0600): the receiver,
        Alertmanager and the typed reader all read it here."""
        return self.path("secrets", "alert-receiver.token")


def _patroni_lock_key() -> str:
    lock = REPO_ROOT / "tools" / "patroni" / "requirements.lock"
    return hashlib.sha256(lock.read_bytes()).hexdigest()[:12]


@dataclass(frozen=True)
class Tools:
    """Where each server binary is: Debian's packages on PATH, builds in the versioned cache."""

    python: Path
    patroni: Path
    postgres_bin: Path
    kafka_home: Path
    minio: Path
    rvault: Path

    @classmethod
    def locate(cls, pinned: dict[str, str]) -> Tools:
        return cls(
            python=Path(os.environ.get("ITS_PYTHON", REPO_ROOT / ".venv" / "bin" / "python")),
            # tools/install.sh (install_patroni) makes the same choice of cache.
            patroni=SYSTEM_CACHE_DIR
            / "patroni"
            / f"{pinned['PATRONI_VERSION']}-{_patroni_lock_key()}"
            / "venv"
            / "bin"
            / "patroni",
            # Debian's server of the local major (infrastructure/database/postgres.yaml).
            postgres_bin=Path(f"/usr/lib/postgresql/{postgres().local.major}/bin"),
            kafka_home=CACHE_DIR / "kafka" / pinned["KAFKA_VERSION"],
            minio=CACHE_DIR / "minio" / pinned["MINIO_VERSION"] / "bin" / "minio",
            rvault=CACHE_DIR / "rusty_vault" / pinned["RUSTY_VAULT_VERSION"] / "bin" / "rvault",
        )

    def missing(self) -> list[str]:
        """Names of binaries that are not installed (tools/install.sh installs them)."""
        wanted = {
            "postgres": self.postgres_bin / "postgres",
            "kafka": self.kafka_home / ".complete",
            "minio": self.minio,
            "rvault": self.rvault,
            "python": self.python,
            "patroni": self.patroni,
        }
        missing = [name for name, path in wanted.items() if not path.exists()]
        for command in ("etcd", "pgbouncer", "haproxy", "redis-server", "prometheus", "java"):
            if shutil.which(command) is None:
                missing.append(command)
        return missing
