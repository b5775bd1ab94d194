"""Rate limits that fail closed.

- `FixedWindow`: per-name counts in one-minute windows, in this process. It limits failed
  authentications per client address (it needs no backend, so it cannot fail open), and it is
  the per-key limiter's fallback.
- `KeyRateLimiter`: requests per key per minute, shared by every API replica through Redis; when
  Redis does not answer, the same limit is kept per process (never no limit at all).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.common.contracts import rate_limit_key

log = logging.getLogger(__name__)
WINDOW_SECONDS = 60
# Distinct names counted per window before the rest share one bucket: memory stays bounded
# when a flood comes from many addresses, and the overflow is limited together, not let through.
MAX_NAMES = 100_000
OVERFLOW = "*overflow*"
# After Redis fails, use the in-process window for this long before trying Redis again, so an
# outage does not add a Redis timeout to every request.
REDIS_RETRY_SECONDS = 5.0


def seconds_left(now: float, period: int = WINDOW_SECONDS) -> int:
    """Seconds until the current window ends: the Retry-After of a refusal (1..period)."""
    return max(1, period - int(now) % period)


class RequestLimiter(Protocol):
    limit: int

    async def hit(self, name: str) -> int | None:
        """Count one request of `name`; None when allowed, else seconds until it may retry."""


class FixedWindow:
    """At most `limit` counts per name in each wall-clock window (aligned with Redis' windows)."""

    def __init__(self, limit: int, period: int = WINDOW_SECONDS, clock: Callable[[], float] = time.time):
        self.limit = limit
        self.period = period
        self.clock = clock
        self._window = -1
        self._counts: dict[str, int] = {}

    def _current(self) -> dict[str, int]:
        window = int(self.clock() // self.period)
        if window != self._window:
            self._window, self._counts = window, {}
        return self._counts

    def _name(self, counts: dict[str, int], name: str) -> str:
        return name if name in counts or len(counts) < MAX_NAMES else OVERFLOW

    def exhausted(self, name: str) -> int | None:
        """Seconds until the window ends when `name` has used its limit, else None (no count)."""
        counts = self._current()
        if counts.get(self._name(counts, name), 0) >= self.limit:
            return seconds_left(self.clock(), self.period)
        return None

    def add(self, name: str) -> int:
        counts = self._current()
        name = self._name(counts, name)
        counts[name] = counts.get(name, 0) + 1
        return counts[name]

    async def hit(self, name: str) -> int | None:
        if self.add(name) > self.limit:
            return seconds_left(self.clock(), self.period)
        return None


class KeyRateLimiter:
    """A fixed one-minute window per key id in Redis (keys carry a TTL, so eviction is safe);
    the in-process window of the same limit while Redis is unreachable."""

    def __init__(self, limit: int, master: Callable[[], Redis], clock: Callable[[], float] = time.time):
        self.limit = limit
        self._master_factory = master
        self._master: Redis | None = None
        self.clock = clock
        self.fallback = FixedWindow(limit, clock=clock)
        self._redis_retry_at = 0.0

    async def hit(self, name: str) -> int | None:
        now = time.monotonic()
        if now >= self._redis_retry_at:
            try:
                count = await self._redis_count(name)
            except (RedisError, OSError, TimeoutError) as error:
                if self._redis_retry_at == 0.0:
                    log.warning(
                        "redis unreachable: the per-key rate limit is kept in process until it answers",
                        extra={"error": str(error), "limit_per_minute": self.limit},
                    )
                self._redis_retry_at = now + REDIS_RETRY_SECONDS
            else:
                if self._redis_retry_at:
                    log.info("redis answers again: the per-key rate limit is shared through it")
                    self._redis_retry_at = 0.0
                return seconds_left(self.clock()) if count > self.limit else None
        return await self.fallback.hit(name)

    async def _redis_count(self, name: str) -> int:
        if self._master is None:
            self._master = self._master_factory()
        window = int(self.clock() // WINDOW_SECONDS)
        bucket = rate_limit_key(name, window)
        async with self._master.pipeline(transaction=True) as pipe:
            pipe.incr(bucket)
            pipe.expire(bucket, 2 * WINDOW_SECONDS)
            count, _ = await pipe.execute()
        return int(count)
