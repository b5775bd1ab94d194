"""Session fixtures shared by every test folder.

`local_platform` starts the project's own local platform (infra.local) once per test session,
on loopback ports from ITS_TEST_PORT_BASE (default 29000) under a temporary state directory,
so it never collides with a developer's `make up`; it is stopped and removed afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis.sentinel import Sentinel

from app.common.apikeys import ApiCredentials
from infra.kernel.supervisor import Supervisor
from infra.local.config import LocalPlatformConfig
from infra.local.platform import Platform
from infra.local.stacks import App, Kafka, Postgres, Redis

# Below Linux's ephemeral range (32768-60999): a fixed port there can be taken at any moment
# by some client's outgoing connection, and a server then fails to bind it.
TEST_PORT_BASE = int(os.environ.get("ITS_TEST_PORT_BASE", "29000"))


@dataclass
class RunningPlatform:
    """What tests need of a running local platform."""

    platform: Platform

    @property
    def cfg(self) -> LocalPlatformConfig:
        return self.platform.cfg

    @property
    def supervisor(self) -> Supervisor:
        return self.platform.supervisor

    @property
    def api_url(self) -> str:
        return self.platform.stack(App).api_url

    @property
    def credentials_file(self) -> Path:
        """api-credentials.json: the presented API keys, as any client of the platform reads them."""
        return self.platform.secrets.credentials_file

    @property
    def credentials(self) -> ApiCredentials:
        return ApiCredentials.load(self.credentials_file)

    @property
    def operator_key(self) -> str:
        return self.credentials.operator

    @property
    def viewer_key(self) -> str:
        return self.credentials.viewer

    @property
    def camera_keys(self) -> dict[str, str]:
        """Camera id -> the camera key bound to it (local-cam-1, local-cam-2)."""
        return self.credentials.cameras

    @property
    def camera_key(self) -> str:
        """The camera key of local-cam-1: it may post frames for that camera only."""
        return self.camera_keys["local-cam-1"]

    @property
    def database_dsn(self) -> str:
        """Superuser DSN of the `its` database, through HAProxy (always the primary)."""
        return self.platform.stack(Postgres).superuser_dsn("its")

    def app_env(self, identity: str = "its-worker") -> dict[str, str]:
        return self.platform.stack(App).environment(identity)

    def sentinel(self, user: str = "admin") -> Sentinel:
        """redis-py's Sentinel over the platform's Sentinels, logged in as one of redis.yaml's
        users (the platform's admin by default) on the Sentinels and the servers."""
        redis_stack = self.platform.stack(Redis)
        login = redis_stack.connection_kwargs(user)
        return Sentinel(redis_stack.sentinel_addresses(), socket_timeout=2, **login)  # type: ignore[no-untyped-call]

    def kafka_config(self, user: str = "admin") -> dict[str, Any]:
        """librdkafka settings of a client logged in as `user` (the platform's admin by default)."""
        return self.platform.stack(Kafka).client_config(user)


def _platform_processes(state_dir: Path) -> list[str]:
    result = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True)
    return [line for line in result.stdout.splitlines() if str(state_dir) in line and "ps -eo" not in line]


@pytest.fixture(scope="session")
def local_platform() -> Iterator[RunningPlatform]:
    state_dir = Path(tempfile.mkdtemp(prefix="its-platform-"))
    state_dir.chmod(0o755)  # PostgreSQL runs as the postgres user when the tests run as root
    cfg = LocalPlatformConfig.load(state_dir=state_dir, port_base=TEST_PORT_BASE)
    os.environ["ITS_STATE_DIR"] = str(state_dir)
    os.environ["ITS_PORT_BASE"] = str(TEST_PORT_BASE)
    platform = Platform(cfg)
    try:
        platform.up(smoke=False)
        yield RunningPlatform(platform)
    finally:
        platform.down()
        leftovers = _platform_processes(state_dir)
        shutil.rmtree(state_dir, ignore_errors=True)
    assert not leftovers, f"`down` left processes behind: {leftovers}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Failover drills break and repair stacks: run them after every other test."""
    items.sort(key=lambda item: "tests/failover/" in item.nodeid)
