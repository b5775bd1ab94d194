"""The Pulumi program of the ITS Camera AI platform: composes the components, nothing else.

Pulumi runs this directory as the program (Pulumi.yaml `main: infra/pulumi/`), so the repository
root goes on sys.path and every module is imported as `infra.pulumi.*`, the very modules the
tests import.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from infra.pulumi.program import run  # noqa: E402 - needs the repository root on sys.path

run()
