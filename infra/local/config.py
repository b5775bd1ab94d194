"""The local platform's configuration: infra/local/platform.yaml plus ITS_* overrides, typed."""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.common.paths import INFRASTRUCTURE, REPO_ROOT

CONFIG_FILE = Path(__file__).with_name("platform.yaml")
TOOLS_VERSIONS = REPO_ROOT / "tools" / "versions.env"
HOST = "127.0.0.1"


class PortOffsets(BaseModel):
    model_config = ConfigDict(extra="forbid")

    etcd_client: int
    etcd_peer: int
    postgres: list[int] = Field(min_length=2, max_length=2)
    patroni_rest: list[int] = Field(min_length=2, max_length=2)
    haproxy_primary: int
    haproxy_stats: int
    pgbouncer: int
    redis: list[int] = Field(min_length=3, max_length=3)
    sentinel: list[int] = Field(min_length=3, max_length=3)
    kafka_broker: list[int] = Field(min_length=3, max_length=3)
    kafka_controller: list[int] = Field(min_length=3, max_length=3)
    kafka_jmx: list[int] = Field(min_length=3, max_length=3)
    minio_api: int
    minio_console: int
    vault: int
    prometheus: int
    alertmanager: int
    blackbox_exporter: int
    postgres_exporter: list[int] = Field(min_length=2, max_length=2)
    redis_exporter: int
    node_exporter: int
    api: int
    worker_metrics: int

    @model_validator(mode="after")
    def _no_two_services_share_a_port(self) -> PortOffsets:
        seen: dict[int, str] = {}
        for name, value in self.model_dump().items():
            for offset in value if isinstance(value, list) else [value]:
                if offset in seen:
                    raise ValueError(f"ports.{name}: offset {offset} is also used by ports.{seen[offset]}")
                seen[offset] = name
        return self


class KafkaSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    heap: str


class PlatformFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    port_base: int = Field(ge=1024, le=65000)
    state_dir: str
    versions: dict[str, str]
    ports: PortOffsets
    kafka: KafkaSettings


def _read_versions_env() -> dict[str, str]:
    pairs = {}
    for line in TOOLS_VERSIONS.read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


@dataclass(frozen=True)
class Ports:
    """Absolute loopback ports: the offsets of platform.yaml added to the port base."""

    base: int
    offsets: PortOffsets

    def __getattr__(self, name: str) -> int:
        value = getattr(self.offsets, name)
        if isinstance(value, list):
            raise AttributeError(f"ports.{name} is a list: use Ports.many({name!r})")
        return self.base + int(value)

    def many(self, name: str) -> list[int]:
        return [self.base + offset for offset in getattr(self.offsets, name)]


class PlatformConfigError(ValueError):
    """platform.yaml or an ITS_* override is wrong; the message names the file and key."""


class StateLayout:
    """Where a supervised set of processes (the local platform, the local cluster) keeps its
    files: everything under one state directory, rendered config in conf/, logs in logs/."""

    state_dir: Path

    def path(self, *parts: str) -> Path:
        return self.state_dir.joinpath(*parts)

    @property
    def conf_dir(self) -> Path:
        return self.path("conf")

    @property
    def log_dir(self) -> Path:
        return self.path("logs")


@dataclass(frozen=True)
class LocalPlatformConfig(StateLayout):
    file: PlatformFile
    state_dir: Path
    port_base: int

    @classmethod
    def load(cls, state_dir: Path | None = None, port_base: int | None = None) -> LocalPlatformConfig:
        try:
            file = PlatformFile.model_validate(yaml.safe_load(CONFIG_FILE.read_text()))
        except ValueError as error:
            raise PlatformConfigError(f"{CONFIG_FILE}: {error}") from error
        env_base = os.environ.get("ITS_PORT_BASE")
        if port_base is None and env_base is not None:
            if not env_base.isdigit():
                raise PlatformConfigError(f"ITS_PORT_BASE: {env_base!r} is not a port number")
            port_base = int(env_base)
        env_state = os.environ.get("ITS_STATE_DIR")
        chosen_state = state_dir or (Path(env_state) if env_state else REPO_ROOT / file.state_dir)
        return cls(file=file, state_dir=chosen_state.resolve(), port_base=port_base or file.port_base)

    @cached_property
    def ports(self) -> Ports:
        return Ports(self.port_base, self.file.ports)

    @cached_property
    def tools(self) -> Tools:
        return Tools.locate(_read_versions_env())

    @property
    def secrets_file(self) -> Path:
        return self.path("secrets", "platform.json")


CACHE_DIR = Path(os.environ.get("ITS_CACHE_DIR", Path.home() / ".cache" / "its-camera-ai"))
# Patroni runs as the postgres user when we are root, so it lives where that user can read
# (tools/install.sh, install_patroni, makes the same choice).
PATRONI_CACHE = (Path("/var/cache/its-camera-ai") if os.geteuid() == 0 else CACHE_DIR) / "patroni"


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
    def locate(cls, versions: dict[str, str]) -> Tools:
        return cls(
            python=Path(os.environ.get("ITS_PYTHON", REPO_ROOT / ".venv" / "bin" / "python")),
            patroni=PATRONI_CACHE
            / f"{versions['PATRONI_VERSION']}-{_patroni_lock_key()}"
            / "venv"
            / "bin"
            / "patroni",
            postgres_bin=Path("/usr/lib/postgresql/15/bin"),
            kafka_home=CACHE_DIR / "kafka" / versions["KAFKA_VERSION"],
            minio=CACHE_DIR / "minio" / versions["MINIO_VERSION"] / "bin" / "minio",
            rvault=CACHE_DIR / "rusty_vault" / versions["RUSTY_VAULT_VERSION"] / "bin" / "rvault",
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


SHARED = {
    "topics": INFRASTRUCTURE / "kafka" / "topics.yaml",
    "jmx_exporter": INFRASTRUCTURE / "kafka" / "jmx-exporter.yaml",
    "buckets": INFRASTRUCTURE / "minio" / "buckets.yaml",
    "minio_policies": INFRASTRUCTURE / "minio" / "policies",
    "redis": INFRASTRUCTURE / "redis" / "redis.yaml",
    "vault": INFRASTRUCTURE / "vault" / "vault.yaml",
    "vault_policies": INFRASTRUCTURE / "vault" / "policies",
    "prometheus_rules": INFRASTRUCTURE / "prometheus" / "rules",
    "alertmanager": INFRASTRUCTURE / "prometheus" / "alertmanager.yaml",
}
