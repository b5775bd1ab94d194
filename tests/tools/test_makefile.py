"""The Makefile parses, and every target it declares (the README's commands among them) is a
recipe make can plan: a broken edit shows here, not on the first `make test` of a fresh clone."""

from __future__ import annotations

import re
import subprocess

import pytest

from infra.facts.paths import REPO_ROOT

MAKEFILE = REPO_ROOT / "Makefile"
PHONY = re.search(r"^\.PHONY:(.*)$", MAKEFILE.read_text(), re.MULTILINE)
TARGETS = PHONY.group(1).split() if PHONY else []


def test_the_makefile_declares_the_readme_s_two_commands() -> None:
    assert {"up", "test"} <= set(TARGETS)


@pytest.mark.parametrize("target", TARGETS)
def test_each_declared_target_is_a_recipe_make_can_plan(target: str) -> None:
    # -n plans without running anything: a Makefile that does not parse fails every target.
    result = subprocess.run(
        ["make", "-n", "-C", str(REPO_ROOT), target], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
