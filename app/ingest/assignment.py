"""Which ingest replica reads which camera: rendezvous (highest random weight) hashing over the
live replicas. Each replica computes the same answer from the same membership, with no
coordinator; a replica that joins takes only the cameras it now wins (about 1/n of them) and a
replica that leaves hands only its own to the others."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def weight(replica: str, camera_id: str) -> int:
    digest = hashlib.blake2b(f"{replica}\x00{camera_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(camera_id: str, replicas: Iterable[str]) -> str | None:
    """The replica that reads `camera_id` (None when there is no replica)."""
    return max(replicas, key=lambda replica: (weight(replica, camera_id), replica), default=None)


def assigned(replica: str, camera_ids: Iterable[str], replicas: Iterable[str]) -> set[str]:
    """The cameras `replica` reads among `camera_ids`, given the live `replicas`."""
    members = sorted(set(replicas))
    return {camera for camera in camera_ids if owner(camera, members) == replica}
