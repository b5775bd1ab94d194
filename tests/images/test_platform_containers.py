"""`make up APP=containers`: a local platform of its own whose API, worker and ingest are the
built images run as the dev chart runs them (each service in its own image), and the migration
Job's command in the API image; the smoke check (a frame in through the API, and a test
camera's streamed frame in through the ingest, detections out through the API) passes through
the containers, and `down` removes them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.images import build, podman

# Its own ports (below the ephemeral range), apart from the test session's platform (29000),
# its local cluster (31000, alive for the whole session) and a developer's platform (25000).
PORT_BASE = os.environ.get("ITS_IMAGES_PORT_BASE", "27000")


@pytest.fixture(scope="module")
def platform() -> Iterator[tuple[dict[str, str], str]]:
    state = Path(tempfile.mkdtemp(prefix="its-containers-platform-"))
    state.chmod(0o755)  # PostgreSQL runs as the postgres user when the tests run as root
    env = {
        **os.environ,
        "ITS_APP_RUNTIME": "containers",
        "ITS_STATE_DIR": str(state),
        "ITS_PORT_BASE": PORT_BASE,
    }
    try:
        up = subprocess.run(
            [sys.executable, "-m", "infra.local", "up"], env=env, capture_output=True, text=True, timeout=900
        )
        yield env, up.stdout + up.stderr
    finally:
        subprocess.run(
            [sys.executable, "-m", "infra.local", "down"], env=env, capture_output=True, timeout=300
        )
        shutil.rmtree(state, ignore_errors=True)


def _containers() -> dict[str, dict[str, Any]]:
    """The running containers of the app, by name, as `podman container inspect` reports them."""
    listed = json.loads(podman.run(["podman", "ps", "--format", "json"]) or "[]")
    names = [
        str(item["Names"][0])
        for item in listed
        if str(item["Names"][0]).endswith(("-api", "-worker", "-ingest"))
    ]
    if not names:
        return {}
    return {str(c["Name"]): c for c in json.loads(podman.run(["podman", "container", "inspect", *names]))}


def test_the_smoke_check_passes_through_the_containers(platform: tuple[dict[str, str], str]) -> None:
    _, output = platform
    assert "smoke OK" in output, output[-3000:]
    assert "stream smoke OK" in output, output[-3000:]
    # The chart's migration Job command ran in the API image as the Job would (its own identity).
    assert "migration Job (container): schema at head" in output
    running = _containers()
    images = {name.rsplit("-", 1)[1]: str(info["ImageName"]) for name, info in running.items()}
    assert images == {
        "api": build.reference("api"),
        "worker": build.reference("worker"),
        "ingest": build.reference("ingest"),
    }
    for info in running.values():
        config, host = info["Config"], info["HostConfig"]
        assert config["User"] == "10001:10001"
        assert host["ReadonlyRootfs"] is True and host["NetworkMode"] == "host"


def test_down_removes_the_containers(platform: tuple[dict[str, str], str]) -> None:
    env, _ = platform
    subprocess.run([sys.executable, "-m", "infra.local", "down"], env=env, capture_output=True, timeout=300)
    assert _containers() == {}
