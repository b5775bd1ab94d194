"""A steady write load in a background thread, recording what the store acknowledged."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class DrillResult:
    name: str
    recovery_seconds: float
    acknowledged: int
    lost: int
    failed_attempts: int
    detail: dict[str, object] = field(default_factory=dict)
    # What recovery_seconds measures, for the summary line.
    recovered: str = "writes back"

    def summary(self) -> str:
        return (
            f"{self.name}: {self.recovered} after {self.recovery_seconds:.1f}s, "
            f"{self.acknowledged} acknowledged, {self.lost} lost, {self.failed_attempts} failed attempts"
        )


class WriteLoad:
    """Calls write(i) for i = 0, 1, 2 ... every `interval` seconds until stopped.

    A write that returns is acknowledged; one that raises is a failed attempt, retried with the
    next number (the store never acknowledged it, so it is not owed)."""

    def __init__(self, write: Callable[[int], None], interval: float = 0.02) -> None:
        self.write = write
        self.interval = interval
        self.acknowledged: list[int] = []
        self._ack_times: list[tuple[float, float]] = []  # (started, acknowledged) per ack
        self.failures: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        number = 0
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.write(number)
            except Exception as error:
                self.failures.append((time.monotonic(), type(error).__name__))
            else:
                self.acknowledged.append(number)
                self._ack_times.append((started, time.monotonic()))
            number += 1
            time.sleep(self.interval)

    def __enter__(self) -> WriteLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def wait_for_acks(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        target = len(self.acknowledged) + count
        while len(self.acknowledged) < target:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"write load made {len(self.acknowledged)} of {target} acks: {self.failures[-3:]}"
                )
            time.sleep(0.05)

    def recovery_after(self, fault_at: float, timeout: float) -> float:
        """Seconds from the fault until the first acknowledged write that was issued after it."""
        deadline = fault_at + timeout
        while time.monotonic() < deadline:
            after = [acked for started, acked in self._ack_times[-500:] if started >= fault_at]
            if after:
                return min(after) - fault_at
            time.sleep(0.05)
        raise TimeoutError(f"writes did not come back within {timeout:.0f}s: {self.failures[-3:]}")
