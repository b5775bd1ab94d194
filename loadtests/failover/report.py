"""The drill report: reports/failover.json (every result in full) and reports/failover.md (one
table row per drill), written by `make failover` from the results of that run."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from loadtests.failover.load import DrillResult

COLUMNS = (
    "drill",
    "fault confirmed",
    "recovery s",
    "acknowledged",
    "lost",
    "failed attempts",
    "old leader -> new leader",
    "result",
)


def row(result: DrillResult) -> tuple[str, ...]:
    recovery = "-" if result.recovery_seconds is None else f"{result.recovery_seconds:.1f}"
    verdict = "passed" if result.passed else "FAILED: " + "; ".join(result.problems or ["writes lost"])
    return (
        result.name,
        "yes" if result.fault_confirmed else "no",
        recovery,
        str(result.acknowledged),
        str(result.lost),
        str(result.failed_attempts),
        f"{result.old_leader} -> {result.new_leader}",
        verdict,
    )


def markdown(results: list[DrillResult]) -> str:
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
        *("| " + " | ".join(cell.replace("|", "/") for cell in row(r)) + " |" for r in results),
    ]
    return "\n".join(lines) + "\n"


def write_report(results: list[DrillResult], directory: Path) -> tuple[Path, Path]:
    """Write failover.json and failover.md under `directory`; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    as_json, as_md = directory / "failover.json", directory / "failover.md"
    records = [{**asdict(r), "passed": r.passed} for r in results]
    as_json.write_text(json.dumps(records, indent=2, default=str) + "\n")
    as_md.write_text("# Failover drills\n\n" + markdown(results))
    return as_json, as_md
