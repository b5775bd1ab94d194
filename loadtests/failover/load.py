"""A concurrent write load in background threads, recording what the store acknowledged and
when each attempt failed, and the measurements every drill takes from the outside: whether
its fault happened, and the seconds from the fault to the first write that succeeded after it.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

# A write takes a batch of write numbers (one key, row, message or object each) and returns the
# numbers the store acknowledged; raising means none of them was.
Write = Callable[[list[int]], Collection[int]]


@dataclass(frozen=True)
class Attempt:
    started: float
    finished: float
    numbers: tuple[int, ...]
    error: str = ""


@dataclass
class AlertLogEntry:
    at_s: float
    receiver: str
    status: str


@dataclass
class DrillResult:
    name: str
    # Whether the drill saw its own fault from the outside: writes failed during the outage and
    # (where the store has one) another process or node leads afterwards.
    fault_confirmed: bool
    # From the fault to the first acknowledged write issued after the outage began; None when
    # no outage was seen (nothing recovered, so nothing to time).
    recovery_seconds: float | None
    acknowledged: int
    lost: int
    failed_attempts: int
    old_leader: str
    new_leader: str
    # Why the drill did not pass, one line each; empty when it passed.
    problems: list[str] = field(default_factory=list)
    detail: dict[str, object] = field(default_factory=dict)
    # What recovery_seconds measures, for the summary line.
    recovered: str = "writes back"
    # The alert that notifies of the fault (or why none applies), and when, in seconds from the
    # fault: Prometheus evaluated it firing, the receiver got it, the receiver got it resolved.
    alert: str = "-"
    alert_fired_s: float | None = None
    alert_delivered_s: float | None = None
    alert_resolved_s: float | None = None
    # The receiver's log of that alert during the drill: each notification that carried it,
    # as the receiver recorded it (seconds from the fault, receiver, firing or resolved).
    alert_log: list[AlertLogEntry] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.fault_confirmed and self.lost == 0 and not self.problems

    def summary(self) -> str:
        recovery = "-" if self.recovery_seconds is None else f"{self.recovery_seconds:.1f}s"
        verdict = "passed" if self.passed else "FAILED: " + "; ".join(self.problems)
        return (
            f"{self.name}: {'fault confirmed' if self.fault_confirmed else 'fault not confirmed'}, "
            f"{self.recovered} after {recovery}, {self.acknowledged} acknowledged, {self.lost} lost, "
            f"{self.failed_attempts} failed attempts, {self.old_leader} -> {self.new_leader}; {verdict}"
        )


class WriteLoad:
    """`workers` threads each call write(batch) with the next `batch` write numbers, back to back,
    until stopped (`pause` seconds after a failed attempt, so a refused connection does not spin).

    A number the write returns is acknowledged; any other number of its batch is a failed
    attempt, never retried (the store did not acknowledge it, so it is not owed)."""

    def __init__(self, write: Write, workers: int = 4, batch: int = 1, pause: float = 0.05) -> None:
        self.write, self.batch, self.pause = write, batch, pause
        self.attempts: list[Attempt] = []
        self._numbers = itertools.count()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(workers)]

    def _next_batch(self) -> list[int]:
        with self._lock:
            return [next(self._numbers) for _ in range(self.batch)]

    def _run(self) -> None:
        while not self._stop.is_set():
            numbers = self._next_batch()
            started = time.monotonic()
            try:
                acked = set(self.write(numbers))
            except Exception as error:
                acked, why = set(), type(error).__name__
            else:
                why = "not acknowledged"
            finished = time.monotonic()
            failed = tuple(n for n in numbers if n not in acked)
            with self._lock:
                if acked:
                    self.attempts.append(Attempt(started, finished, tuple(sorted(acked))))
                if failed:
                    self.attempts.append(Attempt(started, finished, failed, why))
            if failed:
                time.sleep(self.pause)

    def __enter__(self) -> WriteLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _snapshot(self) -> list[Attempt]:
        with self._lock:
            return list(self.attempts)

    @property
    def acknowledged(self) -> list[int]:
        return [n for a in self._snapshot() if not a.error for n in a.numbers]

    @property
    def failures(self) -> list[Attempt]:
        return [a for a in self._snapshot() if a.error]

    def failed_between(self, start: float, end: float) -> int:
        """Writes that failed in [start, end]."""
        return sum(len(a.numbers) for a in self.failures if start <= a.finished <= end)

    def wait_for_acks(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        target = len(self.acknowledged) + count
        while len(self.acknowledged) < target:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"write load made {len(self.acknowledged)} of {target} acks: {self.failures[-3:]}"
                )
            time.sleep(0.05)

    def first_failure_after(self, moment: float) -> Attempt | None:
        after = [a for a in self.failures if a.finished >= moment]
        return min(after, key=lambda a: a.finished) if after else None

    def outage(self, fault_at: float, confirm_within: float, timeout: float) -> Outage:
        """Watch the load after a fault at `fault_at`: the outage begins with the first write
        that fails after it (none within `confirm_within` seconds: the fault did not reach the
        writes) and ends with the first acknowledged write issued after that failure. Timing
        from the first write acknowledged after the fault alone would count a write that slipped
        through before the fault took hold as the recovery (0.0 s)."""
        first = None
        while first is None and time.monotonic() < fault_at + confirm_within:
            first = self.first_failure_after(fault_at)
            time.sleep(0.05)
        if first is None:
            return Outage(fault_at, None, None)
        while time.monotonic() < fault_at + timeout:
            recovered = [a.finished for a in self._snapshot() if not a.error and a.started >= first.finished]
            if recovered:
                return Outage(fault_at, first.finished, min(recovered))
            time.sleep(0.05)
        raise TimeoutError(f"writes did not come back within {timeout:.0f}s: {self.failures[-3:]}")


@dataclass(frozen=True)
class Outage:
    fault_at: float
    first_failure: float | None
    recovered_at: float | None

    @property
    def recovery_seconds(self) -> float | None:
        return None if self.recovered_at is None else self.recovered_at - self.fault_at


def fault_problems(failed_during_outage: int, old_leader: str | None, new_leader: str | None) -> list[str]:
    """What says a fault was not caused: no write failed after it, or (for a store with a
    leader) the same process leads afterwards. A kill that hit the wrong process shows here."""
    problems = []
    if failed_during_outage == 0:
        problems.append("fault not confirmed: no write failed after the fault")
    if old_leader is not None and old_leader == new_leader:
        problems.append(f"fault not confirmed: {old_leader} still leads")
    return problems
