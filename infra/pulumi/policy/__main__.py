"""Policy pack of the ITS Camera AI stacks: `pulumi preview --policy-pack infra/pulumi/policy`.
Every rule is mandatory; the logic lives in rules.py (plain functions the tests call)."""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from infra.pulumi.policy.pack import build_policy_pack  # noqa: E402 - needs the repository root

build_policy_pack()
