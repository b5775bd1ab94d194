"""The set of registered camera ids the hot paths check before the database."""

from __future__ import annotations

import asyncio

from app.api.known_cameras import KnownCameras


class Database:
    """Answers whether a camera is registered and counts how often it was asked."""

    def __init__(self, registered: set[str]) -> None:
        self.registered = registered
        self.asked: list[str] = []

    async def __call__(self, camera_id: str) -> bool:
        self.asked.append(camera_id)
        return camera_id in self.registered


def test_a_registered_camera_is_asked_of_the_database_once() -> None:
    known, database = KnownCameras(), Database({"cam-1"})
    assert asyncio.run(known.exists("cam-1", database))
    assert asyncio.run(known.exists("cam-1", database))
    assert database.asked == ["cam-1"]


def test_an_unknown_camera_is_asked_every_time_and_never_kept() -> None:
    known, database = KnownCameras(), Database(set())
    for _ in range(3):
        assert not asyncio.run(known.exists("nobody", database))
    assert database.asked == ["nobody"] * 3
    assert len(known) == 0
    # Registered later (by another API pod): found on the next ask.
    database.registered.add("nobody")
    assert asyncio.run(known.exists("nobody", database))


def test_the_set_keeps_at_most_its_capacity_least_recently_used_out() -> None:
    known, database = KnownCameras(capacity=2), Database({"a", "b", "c"})
    for camera in ("a", "b", "a", "c"):  # "a" used again: "b" is the oldest when "c" comes
        asyncio.run(known.exists(camera, database))
    assert len(known) == 2
    database.asked.clear()
    asyncio.run(known.exists("a", database))
    asyncio.run(known.exists("b", database))
    assert database.asked == ["b"]
