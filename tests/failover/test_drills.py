"""Failover drills against the test session's platform: each must recover within its bound
and lose no acknowledged write. They run last (tests/conftest.py orders them), since each
breaks and repairs a stack."""

from __future__ import annotations

import pytest

from loadtests.failover.drills import DRILLS
from tests.conftest import RunningPlatform

pytestmark = pytest.mark.platform

# Seconds until writes succeed again. The platform's RTO is 15 minutes; these bounds are what
# the local settings (Sentinel down-after 5 s, Patroni TTL 20 s, KRaft session timeout) allow.
RECOVERY_BOUNDS = {"redis": 30.0, "postgres": 60.0, "kafka": 60.0, "minio": 10.0, "vault": 30.0}
# A restore from the MinIO backup after losing both members: the RTO itself.
RECOVERY_BOUNDS["postgres-restore"] = 15 * 60.0


@pytest.mark.parametrize("drill", list(DRILLS))
def test_failover_drill_recovers_without_losing_acknowledged_writes(
    local_platform: RunningPlatform, drill: str
) -> None:
    result = DRILLS[drill](local_platform.platform)
    print(result.summary())
    assert result.acknowledged >= 20, result
    assert result.lost == 0, result
    assert result.recovery_seconds < RECOVERY_BOUNDS[drill], result
    report = local_platform.platform.status()
    unhealthy = {name: s["detail"] for name, s in report.items() if not s["healthy"]}
    assert not unhealthy, f"the platform was not healthy again after the {drill} drill: {unhealthy}"
