"""Reconnect delays: capped exponential backoff with jitter (a random delay between half the
initial delay and the capped exponential), so cameras that dropped together (a site's uplink)
do not reconnect in lockstep, and none retries in a tight loop."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    initial: float
    cap: float
    attempts: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def ceiling(self) -> float:
        """The largest delay of the next attempt."""
        return min(self.cap, self.initial * 2.0**self.attempts)

    def next_delay(self) -> float:
        delay: float = self.rng.uniform(self.initial / 2, self.ceiling())
        self.attempts = min(self.attempts + 1, 32)
        return delay

    def reset(self) -> None:
        """After a connection that delivered frames: the next drop starts from `initial` again."""
        self.attempts = 0
