"""What a health check returns, and the one way to wait on one."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Health:
    healthy: bool
    detail: dict[str, Any] = field(default_factory=dict)
    endpoints: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.healthy


def _say(message: str) -> None:
    print(message, flush=True)


def wait_until(
    what: str,
    check: Callable[[], Health],
    timeout: float,
    progress: Callable[[], str] | None = None,
    every: float = 10,
    log: Callable[[str], None] = _say,
) -> Health:
    """Poll until healthy, printing progress on long waits; on a timeout say what was last seen.
    A check that raises counts as not yet healthy (connection refused, a missing CRD)."""
    start = time.monotonic()
    next_report = start + every
    last = Health(False)
    while True:
        try:
            last = check()
        except Exception as error:
            last = Health(False, {"error": str(error)[:300]})
        if last:
            return last
        now = time.monotonic()
        if now - start > timeout:
            raise TimeoutError(f"{what}: not healthy within {timeout:.0f}s; last seen {last.detail}")
        if now >= next_report:
            log(f"    ... waiting for {what} ({now - start:.0f}s): {progress() if progress else last.detail}")
            next_report += every
        time.sleep(1)
