"""Sampling a stream at its camera's rate: wall-clock slots of 1/fps seconds, the first decoded
frame of each slot kept. Slots are named by wall-clock time, not by the stream's timestamps
(which restart with every connection), so two readers of one camera, or one reader before and
after a reconnect, agree on every slot's name and so on its frame id."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field


def slot_of(at: float, sample_fps: float) -> int:
    """The slot a frame decoded at `at` (epoch seconds) falls in."""
    return math.floor(at * sample_fps)


def slot_start_ms(slot: int, sample_fps: float) -> int:
    return round(slot * 1000 / sample_fps)


@dataclass
class Sampler:
    """Keeps the first frame of each slot."""

    sample_fps: float
    last_slot: int | None = None

    def take(self, at: float) -> int | None:
        """The slot to record for a frame decoded at `at`, or None to drop it."""
        slot = slot_of(at, self.sample_fps)
        if self.last_slot is not None and slot <= self.last_slot:
            return None
        self.last_slot = slot
        return slot


@dataclass
class RateWindow:
    """Frames recorded per second over a sliding window."""

    window_seconds: float = 10.0
    _times: deque[float] = field(default_factory=deque)

    def add(self, at: float) -> None:
        self._times.append(at)

    def rate(self, now: float, since: float) -> float:
        """Over the window, or since `since` (the reader's start) when that is shorter, so a
        fresh reader is not called slow for the seconds it did not run."""
        while self._times and self._times[0] < now - self.window_seconds:
            self._times.popleft()
        span = max(min(self.window_seconds, now - since), 1.0)
        return len(self._times) / span
