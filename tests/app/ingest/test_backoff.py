"""Reconnect delays grow exponentially up to the cap, are jittered, and start over after a
connection that delivered frames."""

from __future__ import annotations

import random

from app.ingest.backoff import Backoff


def test_the_ceiling_doubles_up_to_the_cap() -> None:
    backoff = Backoff(initial=0.5, cap=8, rng=random.Random(1))
    ceilings = []
    for _ in range(8):
        ceilings.append(backoff.ceiling())
        backoff.next_delay()
    assert ceilings == [0.5, 1, 2, 4, 8, 8, 8, 8]


def test_every_delay_is_jittered_within_its_bounds() -> None:
    backoff = Backoff(initial=0.5, cap=8, rng=random.Random(2))
    delays = []
    for _ in range(200):
        ceiling = backoff.ceiling()
        delay = backoff.next_delay()
        assert 0.25 <= delay <= ceiling
        delays.append(delay)
    capped = delays[10:]
    assert len({round(d, 6) for d in capped}) > 150  # jittered: not one value repeated
    assert max(capped) > 6 and min(capped) < 2


def test_reset_starts_over_and_many_failures_never_overflow() -> None:
    backoff = Backoff(initial=1, cap=30, rng=random.Random(3))
    for _ in range(10_000):
        backoff.next_delay()
    assert backoff.ceiling() == 30
    backoff.reset()
    assert backoff.ceiling() == 1
