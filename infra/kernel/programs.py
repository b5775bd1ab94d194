"""A supervised program: what supervisord runs, and how it is told to stop."""

from __future__ import annotations

import os
import shlex
import stat
from dataclasses import dataclass, field
from pathlib import Path

from infra.facts.paths import REPO_ROOT


@dataclass(frozen=True)
class Program:
    name: str
    group: str
    command: list[str]
    directory: str = str(REPO_ROOT)
    environment: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    stopsignal: str = "TERM"
    stopwaitsecs: int = 20
    startsecs: int = 2
    autorestart: str = "unexpected"

    def render_command(self) -> str:
        return " ".join(shlex.quote(part) for part in self.command)

    def render_environment(self) -> str:
        # supervisord's format: KEY="value",KEY2="value2" (quotes and % escaped).
        def quote(value: str) -> str:
            return '"' + value.replace("%", "%%").replace('"', '\\"') + '"'

        return ",".join(f"{key}={quote(value)}" for key, value in sorted(self.environment.items()))


def postgres_user() -> str | None:
    """PostgreSQL refuses to run as root: when we are root, its processes run as the Debian
    package's `postgres` user."""
    return "postgres" if os.geteuid() == 0 else None


def closed_to_others(path: Path) -> Path | None:
    """The first directory on the way to `path` (from /) that a user who owns none of it cannot
    enter (no search bit for others), or None. The postgres user must reach the state directory;
    a clone in a private home (0700) or a `mktemp -d` directory does not let it."""
    for directory in (*reversed(path.parents), path):
        if not directory.stat().st_mode & stat.S_IXOTH:
            return directory
    return None
