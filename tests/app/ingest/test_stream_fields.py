"""A camera's stream fields: URLs the ingest may open and nothing else, credentials only as a
Vault reference, a bounded sample rate; the same bounds as the SQL CHECKs (migration 0003)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.common.cameras import CameraIn, CameraUpdate
from app.common.streams import classify, stream_status


def camera(**stream: object) -> CameraIn:
    return CameraIn.model_validate({"id": "cam-1", "name": "Cam", **stream})


@pytest.mark.parametrize(
    "url",
    [
        "rtsp://10.1.2.3:554/Streaming/Channels/101",
        "rtsps://camera.example:322/live",
        "http://camera.example/mjpg/video.mjpg",
        "rtsp://[2001:db8::1]:554/stream1",
    ],
)
def test_stream_urls_a_camera_serves_are_accepted(url: str) -> None:
    assert camera(stream_url=url, stream_secret="its/streams/site-a").stream_url == url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("rtsp://admin:hunter2@10.1.2.3/stream", "must not carry credentials"),
        ("rtsp://admin@10.1.2.3/stream", "must not carry credentials"),
        ("file:///etc/passwd", "must start with one of"),
        ("rtmp://10.1.2.3/live", "must start with one of"),
        ("rtsp:///stream", "must name a host"),
        ("rtsp://10.1.2.3:99999/x", "invalid port"),
        ("rtsp://10.1.2.3/a b", "printable ASCII"),
        ("rtsp://10.1.2.3/" + "a" * 2100, "at most 2048"),
    ],
)
def test_other_urls_are_refused_with_the_reason(url: str, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        camera(stream_url=url)


@pytest.mark.parametrize(
    "secret", ["secret/its/streams/x", "its/api/postgres", "its/streams/../api", "its/streams/"]
)
def test_a_secret_reference_outside_the_stream_prefix_is_refused(secret: str) -> None:
    with pytest.raises(ValidationError):
        camera(stream_url="rtsp://10.1.2.3/s", stream_secret=secret)


def test_a_secret_without_a_stream_is_refused() -> None:
    with pytest.raises(ValidationError, match="without a stream_url"):
        camera(stream_secret="its/streams/site-a")


def test_a_change_sets_only_the_fields_it_names() -> None:
    moved = CameraUpdate.model_validate({"stream_url": "rtsp://10.1.2.4/s", "sample_fps": 2})
    assert moved.changes() == {"sample_fps": 2.0, "stream_url": "rtsp://10.1.2.4/s"}
    assert CameraUpdate.model_validate({"location": None}).changes() == {"location": None}
    assert CameraUpdate.model_validate({"enabled": False}).changes() == {"enabled": False}


def test_stopping_a_stream_drops_its_secret() -> None:
    stopped = CameraUpdate.model_validate({"stream_url": None})
    assert stopped.changes() == {"stream_url": None, "stream_secret": None}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({}, "nothing to change"),
        ({"id": "cam-2"}, "Extra inputs are not permitted"),
        ({"name": None}, "name cannot be null"),
        ({"sample_fps": None}, "sample_fps cannot be null"),
        ({"enabled": None}, "enabled cannot be null"),
        ({"sample_fps": 60}, "less than or equal to 10"),
        ({"stream_url": None, "stream_secret": "its/streams/a"}, "while stream_url is cleared"),
        ({"stream_url": "rtsp://u:p@10.1.2.3/s"}, "must not carry credentials"),
        ({"stream_secret": "its/api/postgres"}, "should match pattern"),
    ],
)
def test_a_change_that_cannot_be_stored_is_refused_with_the_reason(
    change: dict[str, object], reason: str
) -> None:
    with pytest.raises(ValidationError, match=reason):
        CameraUpdate.model_validate(change)


@pytest.mark.parametrize("fps", [0, 0.05, 10.5, -1])
def test_the_sample_rate_is_bounded(fps: float) -> None:
    with pytest.raises(ValidationError):
        camera(stream_url="rtsp://10.1.2.3/s", sample_fps=fps)


def test_states_online_degraded_offline() -> None:
    # now, last frame, reader start, sampled rate, configured rate, offline after
    assert classify(100, 99, 0, 1.0, 1.0, 10) == "online"
    assert classify(100, 99, 0, 0.5, 1.0, 10) == "degraded"
    assert classify(100, 85, 0, 1.0, 1.0, 10) == "offline"
    assert classify(100, None, 95, 0.0, 1.0, 10) == "degraded"  # a reader 5 s old, no frame yet
    assert classify(100, None, 80, 0.0, 1.0, 10) == "offline"


def test_the_api_trusts_a_report_only_while_it_is_fresh() -> None:
    report = {
        "state": "online",
        "sampled_fps": "1.000",
        "last_frame_at": "99.0",
        "reported_at": "99.5",
        "reader": "r0",
    }
    assert stream_status(report, now=100, offline_after=10).state == "online"
    assert stream_status(report, now=120, offline_after=10).state == "offline"  # its reader died
    assert stream_status({}, now=100, offline_after=10).state == "offline"  # nobody reads it
