"""The drill report: reports/failover.json (every result in full) and reports/failover.md (one
table row per drill, with the alert that notified of its fault and when, then the alert
receiver's log of each drill's alert), written by `make failover` from the results of that run."""

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
    "alert",
    "fired at s",
    "delivered at s",
    "resolved at s",
    "result",
)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def row(result: DrillResult) -> tuple[str, ...]:
    verdict = "passed" if result.passed else "FAILED: " + "; ".join(result.problems or ["writes lost"])
    return (
        result.name,
        "yes" if result.fault_confirmed else "no",
        _seconds(result.recovery_seconds),
        str(result.acknowledged),
        str(result.lost),
        str(result.failed_attempts),
        f"{result.old_leader} -> {result.new_leader}",
        result.alert,
        # Seconds from the fault: Prometheus fired it, the receiver got it, and got it resolved.
        _seconds(result.alert_fired_s),
        _seconds(result.alert_delivered_s),
        _seconds(result.alert_resolved_s),
        verdict,
    )


def markdown(results: list[DrillResult]) -> str:
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
        *("| " + " | ".join(cell.replace("|", "/") for cell in row(r)) + " |" for r in results),
    ]
    return "\n".join(lines) + "\n"


def receiver_log(results: list[DrillResult]) -> str:
    """Each drill's alert as the receiver recorded it: seconds from the fault, receiver, status."""
    lines = ["## The alert receiver's log", ""]
    for result in results:
        if result.alert_log:
            entries = ", ".join(f"{e.at_s:.1f} s {e.receiver} {e.status}" for e in result.alert_log)
        else:
            entries = "nothing received"
        lines.append(f"- {result.name} ({result.alert}): {entries}")
    return "\n".join(lines) + "\n"


def write_report(results: list[DrillResult], directory: Path) -> tuple[Path, Path]:
    """Write failover.json and failover.md under `directory`; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    as_json, as_md = directory / "failover.json", directory / "failover.md"
    records = [{**asdict(r), "passed": r.passed} for r in results]
    as_json.write_text(json.dumps(records, indent=2, default=str) + "\n")
    as_md.write_text("# Failover drills\n\n" + markdown(results) + "\n" + receiver_log(results))
    return as_json, as_md
