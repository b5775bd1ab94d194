"""Rendezvous assignment: every camera has exactly one reader, the spread is even, and a replica
joining or leaving moves only its own share."""

from __future__ import annotations

from app.ingest.assignment import assigned, owner

CAMERAS = [f"cam-{index:04d}" for index in range(2000)]


def owners(replicas: list[str]) -> dict[str, str | None]:
    return {camera: owner(camera, replicas) for camera in CAMERAS}


def test_each_camera_has_one_reader_and_the_spread_is_even() -> None:
    replicas = ["ingest-a", "ingest-b", "ingest-c", "ingest-d"]
    shares = [assigned(replica, CAMERAS, replicas) for replica in replicas]
    assert set().union(*shares) == set(CAMERAS)
    assert sum(len(share) for share in shares) == len(CAMERAS)  # disjoint
    for share in shares:  # 500 each on average; a hash this even stays within 20%
        assert 400 <= len(share) <= 600, [len(s) for s in shares]


def test_a_joining_replica_takes_only_its_share() -> None:
    before = owners(["ingest-a", "ingest-b", "ingest-c"])
    after = owners(["ingest-a", "ingest-b", "ingest-c", "ingest-d"])
    moved = [camera for camera in CAMERAS if before[camera] != after[camera]]
    assert all(after[camera] == "ingest-d" for camera in moved)  # nothing moves between the others
    assert 0.18 * len(CAMERAS) <= len(moved) <= 0.32 * len(CAMERAS)  # about a quarter


def test_a_leaving_replica_hands_over_only_its_own_cameras() -> None:
    before = owners(["ingest-a", "ingest-b", "ingest-c"])
    after = owners(["ingest-a", "ingest-c"])
    for camera in CAMERAS:
        if before[camera] != "ingest-b":
            assert after[camera] == before[camera]
        else:
            assert after[camera] in ("ingest-a", "ingest-c")


def test_the_answer_does_not_depend_on_the_membership_order() -> None:
    assert owners(["x", "y", "z"]) == owners(["z", "x", "y"])


def test_no_replica_no_reader() -> None:
    assert owner("cam-1", []) is None
    assert assigned("ingest-a", CAMERAS, []) == set()
