"""Where the repository's shared definitions live, found relative to this package."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
INFRASTRUCTURE = REPO_ROOT / "infrastructure"
