"""One port scheme for every supervised set: named offsets added to a base, all on loopback.

A base moves a whole set (ITS_PORT_BASE, ITS_CLUSTER_PORT_BASE), so the test suite runs its
own platform and cluster beside a developer's. Bases stay below Linux's ephemeral range
(32768-60999), where any outgoing connection could take a fixed port first.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass

from infra.kernel.layout import HOST

EPHEMERAL_START = 32768
Offset = int | list[int]


def free_port() -> int:
    """A loopback port nothing listens on now (the kernel picks it from the ephemeral range),
    for a short-lived server of a test or benchmark beside the fixed sets."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


class PortError(ValueError):
    """A port base or offset table is wrong; the message names the setting."""


def check_offsets(offsets: Mapping[str, Offset]) -> None:
    seen: dict[int, str] = {}
    for name, value in offsets.items():
        for offset in value if isinstance(value, list) else [value]:
            if offset in seen:
                raise PortError(f"ports.{name}: offset {offset} is also used by ports.{seen[offset]}")
            seen[offset] = name


@dataclass(frozen=True)
class Ports:
    base: int
    offsets: Mapping[str, Offset]

    def __post_init__(self) -> None:
        check_offsets(self.offsets)
        top = self.base + max(max(v) if isinstance(v, list) else v for v in self.offsets.values())
        if top >= EPHEMERAL_START:
            raise PortError(f"port base {self.base}: its ports reach {top}, inside the ephemeral range")

    def __getattr__(self, name: str) -> int:
        value = self._offset(name)
        if isinstance(value, list):
            raise AttributeError(f"ports.{name} is a list: use Ports.many({name!r})")
        return self.base + value

    def many(self, name: str) -> list[int]:
        value = self._offset(name)
        return [self.base + offset for offset in (value if isinstance(value, list) else [value])]

    def _offset(self, name: str) -> Offset:
        if name.startswith("__") or name not in self.offsets:
            raise AttributeError(name)
        return self.offsets[name]


def port_base_from_env(variable: str, default: int) -> int:
    raw = os.environ.get(variable)
    if raw is None:
        return default
    if not raw.isdigit() or not 1024 <= int(raw) < EPHEMERAL_START:
        raise PortError(f"{variable}: {raw!r} is not a port base between 1024 and {EPHEMERAL_START - 1}")
    return int(raw)
