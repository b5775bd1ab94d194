"""The installer's toolchain check: what it cannot install, it names in one line and stops."""

from __future__ import annotations

import os
import shutil
import subprocess

from infra.facts.paths import REPO_ROOT


def test_a_missing_toolchain_stops_the_install_naming_it() -> None:
    # A PATH without Go (Debian does not package a new enough one, so nothing installs it).
    bare = ":".join(d for d in os.environ["PATH"].split(":") if not (shutil.which("go", path=d)))
    result = subprocess.run(
        ["bash", str(REPO_ROOT / "tools" / "install.sh"), "toolchains"],
        env={**os.environ, "PATH": bare},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Go" in lines[0] and "'go' is not on PATH" in lines[0], result.stderr


def test_every_toolchain_present_passes_the_check() -> None:
    result = subprocess.run(
        ["bash", str(REPO_ROOT / "tools" / "install.sh"), "toolchains"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("ok: ") == 7, result.stdout
