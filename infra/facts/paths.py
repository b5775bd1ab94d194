"""Where the repository and its shared definitions are, found relative to this package."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
INFRASTRUCTURE = REPO_ROOT / "infrastructure"


def relative(path: Path) -> str:
    """A path as a reader of an error message finds it: relative to the checkout when inside it."""
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)
