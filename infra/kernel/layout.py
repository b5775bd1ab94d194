"""Where a supervised set of processes keeps its files, and where the builds are cached."""

from __future__ import annotations

import os
from pathlib import Path

# Every server of the local platform and the local cluster listens here and nowhere else.
HOST = "127.0.0.1"
# Builds cached by version outside the clone (tools/install.sh writes the same layout).
CACHE_DIR = Path(os.environ.get("ITS_CACHE_DIR", Path.home() / ".cache" / "its-camera-ai"))
# What runs as the postgres user when we are root must live where that user can read.
SYSTEM_CACHE_DIR = Path("/var/cache/its-camera-ai") if os.geteuid() == 0 else CACHE_DIR


class StateLayout:
    """Everything under one state directory: rendered config in conf/, logs in logs/."""

    state_dir: Path

    def path(self, *parts: str) -> Path:
        return self.state_dir.joinpath(*parts)

    @property
    def conf_dir(self) -> Path:
        return self.path("conf")

    @property
    def log_dir(self) -> Path:
        return self.path("logs")

    def make_dirs(self) -> None:
        for directory in (self.state_dir, self.conf_dir, self.log_dir):
            directory.mkdir(parents=True, exist_ok=True)
