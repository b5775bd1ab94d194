"""Sampling at a camera's rate on wall-clock slots, the frame keys they make, and the rate window."""

from __future__ import annotations

from app.common.contracts import frame_id_for, stream_frame_key
from app.ingest.sampling import RateWindow, Sampler, slot_of, slot_start_ms


def test_the_first_frame_of_each_slot_is_kept() -> None:
    sampler = Sampler(sample_fps=1.0)
    # A 5 frame/s stream for 3 seconds from t=100.0: one frame kept per second.
    kept = [sampler.take(100.0 + i * 0.2) for i in range(15)]
    assert [slot for slot in kept if slot is not None] == [100, 101, 102]
    assert kept[0] == 100 and kept[5] == 101 and kept[10] == 102


def test_a_slower_stream_than_the_rate_keeps_every_frame() -> None:
    sampler = Sampler(sample_fps=2.0)
    kept = [sampler.take(10.0 + i) for i in range(4)]  # 1 frame/s against 2 slots/s
    assert kept == [20, 22, 24, 26]


def test_frames_out_of_order_or_in_a_spent_slot_are_dropped() -> None:
    sampler = Sampler(sample_fps=1.0)
    assert sampler.take(50.5) == 50
    assert sampler.take(49.9) is None  # a clock step back never re-records a slot
    assert sampler.take(50.99) is None


def test_two_readers_of_one_camera_name_the_same_slot_alike() -> None:
    """A handover or a reconnect: each reader decodes the frame a little apart in time, yet a
    slot's frame id is the same, so the frames table records it once."""
    first, second = Sampler(sample_fps=0.5), Sampler(sample_fps=0.5)
    slot_a, slot_b = first.take(1_000.1), second.take(1_001.7)
    assert slot_a is not None and slot_a == slot_b
    key = stream_frame_key(slot_start_ms(slot_a, 0.5))
    assert key == "stream@1000000"
    assert frame_id_for("cam-1", key) == frame_id_for("cam-1", stream_frame_key(slot_start_ms(slot_b, 0.5)))
    assert frame_id_for("cam-1", key) != frame_id_for("cam-2", key)


def test_slots_are_wall_clock_fractions() -> None:
    assert slot_of(1_700_000_000.25, 4.0) == 6_800_000_001
    assert slot_start_ms(6_800_000_001, 4.0) == 1_700_000_000_250


def test_the_rate_window_counts_recent_frames_only() -> None:
    window = RateWindow(window_seconds=10)
    for second in range(20):
        window.add(1000.0 + second)
    assert window.rate(now=1019.5, since=900.0) == 1.0  # 10 frames in the last 10 s
    assert window.rate(now=1040.0, since=900.0) == 0.0


def test_a_fresh_reader_is_measured_over_the_time_it_ran() -> None:
    window = RateWindow(window_seconds=10)
    for second in range(4):
        window.add(500.0 + second)
    assert window.rate(now=504.0, since=500.0) == 1.0
