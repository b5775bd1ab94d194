"""tools/versions.env: the pinned version of every server and tool the project builds."""

from __future__ import annotations

from functools import cache

from infra.facts.paths import REPO_ROOT

VERSIONS_FILE = REPO_ROOT / "tools" / "versions.env"


@cache
def versions() -> dict[str, str]:
    """KEY=value pairs (the shell sources the same file in tools/install.sh)."""
    pairs = {}
    for line in VERSIONS_FILE.read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs
