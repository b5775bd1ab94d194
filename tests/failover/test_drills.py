"""Failover drills against the test session's platform. Each must confirm its own fault (writes
failed during the outage; another process or node leads afterwards), recover within its bound,
lose no acknowledged write, and see its alert fire on Prometheus, reach the receiver and resolve
within the bounds the rule and the rendered configs give; and a drill whose kill misses the
process that serves the writes must say its fault was not confirmed and fail. They run last
(tests/conftest.py orders them), since each breaks and repairs a stack."""

from __future__ import annotations

import pytest

from infra.local.stacks import Redis
from loadtests.failover.drills import DRILLS, MASTER, redis_master_kill
from tests.conftest import RunningPlatform

pytestmark = pytest.mark.platform

# Seconds until writes succeed again. The platform's RTO is 15 minutes; these bounds are what
# the local settings (Sentinel down-after 5 s, Patroni TTL 20 s, KRaft session timeout) allow.
RECOVERY_BOUNDS = {"redis": 30.0, "postgres": 60.0, "kafka": 60.0, "vault": 30.0}
# MinIO: from an empty replacement drive to MinIO reporting no drive offline (its heal scan).
RECOVERY_BOUNDS["minio"] = 120.0
# A restore from the MinIO backup after losing both members: the RTO itself.
RECOVERY_BOUNDS["postgres-restore"] = 15 * 60.0
# Writes per second the load must reach, so that a loss shows: what each store allows on two
# shared cores (Redis pipelined, PostgreSQL batched over four connections, Kafka batched; Vault
# one secret per request, 47/s measured while the worker warms up on a fresh platform).
MIN_WRITE_RATE = {"redis": 500.0, "postgres": 50.0, "kafka": 50.0, "vault": 20.0, "minio": 20.0}


def _healthy_again(running: RunningPlatform, after: str) -> None:
    report = running.platform.status()
    unhealthy = {name: s["detail"] for name, s in report.items() if not s["healthy"]}
    assert not unhealthy, f"the platform was not healthy again after the {after} drill: {unhealthy}"


@pytest.mark.parametrize("drill", list(DRILLS))
def test_failover_drill_confirms_its_fault_and_loses_no_acknowledged_write(
    local_platform: RunningPlatform, drill: str
) -> None:
    result = DRILLS[drill](local_platform.platform)
    print(result.summary())
    assert result.fault_confirmed, result
    assert result.passed, result
    assert result.lost == 0, result
    assert result.acknowledged >= 200, result
    assert result.recovery_seconds is not None and result.recovery_seconds < RECOVERY_BOUNDS[drill], result
    if drill in MIN_WRITE_RATE:
        rate = result.detail["writes_per_second"]
        assert isinstance(rate, float) and rate >= MIN_WRITE_RATE[drill], result
    if drill not in ("minio", "postgres-restore"):
        # A drill that kills a process saw writes fail, and another process leads after it.
        assert result.failed_attempts > 0, result
        assert result.old_leader != result.new_leader, result
    if drill == "postgres-restore":
        # The live cluster has no outage: no alert applies, and the report says so.
        assert result.alert.startswith("none"), result
        assert result.alert_delivered_s is None, result
    else:
        # The drill itself failed on a missing or late delivery or resolution (problems, above);
        # here the times it measured run in order: Prometheus fired it, then the receiver got it
        # (from Alertmanager's pages or tickets route), then got it resolved.
        fired, delivered, resolved = result.alert_fired_s, result.alert_delivered_s, result.alert_resolved_s
        assert fired is not None and delivered is not None and resolved is not None, result
        assert 0 <= fired <= delivered < resolved, result
        assert result.detail["alert_receiver"] in ("pages", "tickets"), result
        # The receiver's own log of the alert, as the report prints it: the first firing and
        # the resolution the drill timed are in it, in that order.
        log = [(entry.at_s, entry.status) for entry in result.alert_log]
        assert (round(delivered, 1), "firing") in log and (round(resolved, 1), "resolved") in log, result
        assert log.index((round(delivered, 1), "firing")) < log.index((round(resolved, 1), "resolved"))
    _healthy_again(local_platform, drill)


def test_a_drill_whose_kill_misses_the_master_reports_its_fault_not_confirmed(
    local_platform: RunningPlatform,
) -> None:
    """Kill a Redis replica instead of the master: writes go on (WAIT 1 still has a replica)
    and Sentinel keeps the same master, so the drill must not pass."""
    sentinel = local_platform.sentinel()
    _, replica_port = sentinel.discover_slaves(MASTER)[0]  # type: ignore[no-untyped-call]
    ports = local_platform.cfg.ports.many("redis")
    replica = f"redis{ports.index(int(replica_port))}"
    result = redis_master_kill(local_platform.platform, victim=replica)
    print(result.summary())
    assert not result.fault_confirmed, result
    assert not result.passed, result
    assert result.failed_attempts == 0 or result.old_leader == result.new_leader, result
    assert any(problem.startswith("fault not confirmed") for problem in result.problems), result
    assert result.recovery_seconds is None, result
    assert result.alert == "-", result  # no failover, so no failover alert was waited for
    assert local_platform.platform.stack(Redis).health().healthy
    _healthy_again(local_platform, "redis replica")
