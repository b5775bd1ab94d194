"""podman and buildah as this machine runs them, with the project's own containers.conf.

Debian's podman defaults to crun, which refuses cgroups in hybrid mode, and asks for ulimits
the sandbox cannot raise; the project's containers.conf (under the cache directory, named by
CONTAINERS_CONF, never /etc) picks runc and keeps the process limits it is given.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from functools import cache
from typing import Any

from infra.kernel.layout import CACHE_DIR

IMAGES_CACHE = CACHE_DIR / "images"
CONTAINERS_CONF = IMAGES_CACHE / "containers.conf"
_CONF = """\
# Written by infra/images/podman.py; podman and buildah read it through CONTAINERS_CONF.
[containers]
# The sandbox cannot raise RLIMIT_NOFILE/NPROC: keep the limits the caller has.
default_ulimits = []

[engine]
# crun fails on hybrid cgroups ("cgroups in hybrid mode not supported"); runc works.
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""


class PodmanError(RuntimeError):
    """podman or buildah failed; the message carries its command and stderr."""


@cache
def environment() -> dict[str, str]:
    """The process environment podman and buildah run with (CONTAINERS_CONF set)."""
    for tool in ("podman", "buildah", "mmdebstrap"):
        if shutil.which(tool) is None:
            raise PodmanError(f"{tool} is not installed: run tools/install.sh apt (tools/apt-packages.txt)")
    IMAGES_CACHE.mkdir(parents=True, exist_ok=True)
    if not CONTAINERS_CONF.is_file() or CONTAINERS_CONF.read_text() != _CONF:
        CONTAINERS_CONF.write_text(_CONF)
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def run(args: Sequence[str], *, capture: bool = True) -> str:
    """podman/buildah ARGS; its stdout (when captured), or PodmanError with its stderr."""
    done = subprocess.run(list(args), env=environment(), capture_output=capture, text=True, check=False)
    if done.returncode != 0:
        detail = ((done.stdout or "") + (done.stderr or "")).strip()[-3000:] if capture else "(output above)"
        raise PodmanError(f"{' '.join(args[:3])} ... exited {done.returncode}: {detail}")
    return done.stdout if capture else ""


def image_exists(reference: str) -> bool:
    return (
        subprocess.run(["podman", "image", "exists", reference], env=environment(), check=False).returncode
        == 0
    )


def inspect(reference: str) -> dict[str, Any]:
    document = json.loads(run(["podman", "image", "inspect", reference]))
    return dict(document[0])


def size_mb(reference: str) -> float:
    return round(int(inspect(reference)["Size"]) / 1e6, 1)


def digest(reference: str) -> str:
    """The image's manifest digest (sha256:...), as podman stores it."""
    return str(inspect(reference)["Digest"])
