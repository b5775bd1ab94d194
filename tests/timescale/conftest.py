"""Fixtures of the Timescale tests: a fresh TimescaleDB engine per module, migrated through the
platform's own entry point with ITS_TIMESCALE=on, and the figures the tests measured."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from infra.facts.paths import REPO_ROOT
from tests.timescale.engine import TimescaleEngine

# Figures (seconds) the tests measured, printed at the end of the run.
FIGURES: dict[str, float] = {}


def run_migrate(url: str, timescale: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m app.common.migrate`, exactly as the platform and the cluster Job run it."""
    env = {**os.environ, "ITS_TIMESCALE": timescale}
    return subprocess.run(
        [sys.executable, "-m", "app.common.migrate", "--url", url, *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def migrate_timed(url: str, timescale: str, figure: str) -> None:
    started = time.perf_counter()
    result = run_migrate(url, timescale)
    FIGURES[figure] = time.perf_counter() - started
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def engine() -> Iterator[TimescaleEngine]:
    """A fresh engine with its own data directory; it must stop cleanly on SIGTERM."""
    started = time.perf_counter()
    running = TimescaleEngine().start()
    FIGURES["timescale: engine start"] = time.perf_counter() - started
    try:
        yield running
    finally:
        code = running.stop()
        assert code == 0, f"engine exited {code} on SIGTERM: {running.log[-20:]}"


@pytest.fixture(scope="module")
def migrated(engine: TimescaleEngine) -> TimescaleEngine:
    migrate_timed(engine.dsn, "on", "timescale: apply migrations (python -m app.common.migrate)")
    return engine


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("timescale figures")
        for name, seconds in FIGURES.items():
            terminalreporter.write_line(f"{name}: {seconds:.2f} s")
