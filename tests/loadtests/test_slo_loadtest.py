"""The Locust SLO run (make loadtest's short profile) against the test session's platform:
it passes at this machine's load, and the same run fails when a threshold is broken."""

from __future__ import annotations

import csv
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from loadtests.slo import PROFILES, locust_command
from tests.conftest import RunningPlatform

pytestmark = pytest.mark.platform


def _run(
    local_platform: RunningPlatform, reports: Path, extra: list[str], seconds: int
) -> subprocess.CompletedProcess[str]:
    profile = replace(PROFILES["short"], seconds=seconds)
    credentials = local_platform.credentials_file
    command = locust_command(local_platform.api_url, credentials, profile, reports) + extra
    return subprocess.run(command, capture_output=True, text=True, timeout=seconds + 90)


def test_short_profile_meets_the_slos(local_platform: RunningPlatform, tmp_path: Path) -> None:
    result = _run(local_platform, tmp_path, [], PROFILES["short"].seconds)
    print(result.stdout[-3000:], result.stderr[-3000:])
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "SLO PASS: p95" in result.stdout + result.stderr
    with (tmp_path / "load_stats.csv").open() as stats:
        total = next(row for row in csv.DictReader(stats) if row["Name"] == "Aggregated")
    assert int(total["Request Count"]) > 50
    assert (tmp_path / "load.html").stat().st_size > 0


def test_a_broken_slo_sets_a_failing_exit_code(local_platform: RunningPlatform, tmp_path: Path) -> None:
    # No request is served in under 0.01 ms: the p95 threshold must fail the run.
    result = _run(local_platform, tmp_path, ["--slo-p95-ms", "0.01"], 10)
    assert result.returncode != 0
    assert "SLO FAIL: p95" in result.stdout + result.stderr
