"""The drill report `make failover` writes: one row per drill, from the results of the run, with
the alert that notified of the fault and the seconds to its firing, delivery and resolution."""

from __future__ import annotations

import json
from pathlib import Path

from loadtests.failover.load import AlertLogEntry, DrillResult, fault_problems
from loadtests.failover.report import COLUMNS, markdown, write_report


def _result(name: str, failed: int, old: str, new: str, lost: int) -> DrillResult:
    problems = fault_problems(failed, old, new)
    recovery = None if problems else 2.5
    return DrillResult(name, not problems, recovery, 900, lost, failed, old, new, problems)


def test_the_report_has_one_row_per_drill_with_its_verdict(tmp_path: Path) -> None:
    confirmed = _result("redis-master-kill", 40, "redis0", "redis2", 0)
    confirmed.alert = "RedisMasterChanged"
    confirmed.alert_fired_s, confirmed.alert_delivered_s, confirmed.alert_resolved_s = 9.04, 14.25, 88.0
    confirmed.alert_log = [AlertLogEntry(14.2, "pages", "firing"), AlertLogEntry(88.0, "pages", "resolved")]
    missed = _result("redis-replica-kill", 0, "redis0", "redis0", 0)
    lossy = _result("postgres-primary-kill", 12, "pg0", "pg1", 3)
    as_json, as_md = write_report([confirmed, missed, lossy], tmp_path)
    table = as_md.read_text().splitlines()
    header = next(line for line in table if line.startswith("| drill"))
    assert [cell.strip() for cell in header.strip("|").split("|")] == list(COLUMNS)
    rows = {line.split("|")[1].strip(): line for line in table if line.startswith("| ") and line != header}
    assert (
        "| yes | 2.5 | 900 | 0 | 40 | redis0 -> redis2 | RedisMasterChanged | 9.0 | 14.2 | 88.0 | passed |"
        in rows["redis-master-kill"]
    )
    assert "| no | - |" in rows["redis-replica-kill"]
    # No alert followed: its name and times are dashes, never a zero.
    assert "| redis0 -> redis0 | - | - | - | - | FAILED" in rows["redis-replica-kill"]
    assert "FAILED: fault not confirmed: no write failed" in rows["redis-replica-kill"]
    assert "redis0 still leads" in rows["redis-replica-kill"]
    assert "FAILED: writes lost" in rows["postgres-primary-kill"]
    records = json.loads(as_json.read_text())
    assert [r["passed"] for r in records] == [True, False, False]
    assert records[0]["alert"] == "RedisMasterChanged"
    assert (records[0]["alert_fired_s"], records[0]["alert_delivered_s"]) == (9.04, 14.25)
    assert records[0]["alert_resolved_s"] == 88.0 and records[1]["alert_resolved_s"] is None
    assert markdown([confirmed]) in as_md.read_text()
    # The receiver's log of each drill's alert follows the table, from what it recorded.
    log = as_md.read_text().split("## The alert receiver's log", 1)[1]
    assert "- redis-master-kill (RedisMasterChanged): 14.2 s pages firing, 88.0 s pages resolved" in log
    assert "- redis-replica-kill (-): nothing received" in log
    assert records[0]["alert_log"][1] == {"at_s": 88.0, "receiver": "pages", "status": "resolved"}
