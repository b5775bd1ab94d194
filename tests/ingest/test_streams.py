"""Cameras that stream, against the running platform: the test cameras' RTSP server (GStreamer),
the ingest reading them, the frame path, the worker, the API, Prometheus and Alertmanager.

Each wait is bounded by what the settings imply (the offline bound, the member TTL, the backoff's
cap, the alert's `for`), and each figure it observed is printed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx
import psycopg
import pytest

from app.common.settings import Settings
from app.ingest.assignment import owner
from app.smoke import run_stream_smoke
from infra.local.alerts import AlertReceiver
from infra.local.stacks import App
from infra.local.stacks.app import STREAM_SAMPLE_FPS
from infra.local.stacks.cameras import GARBAGE_CAMERA, STREAM_CAMERAS, STREAM_SECRET, stream_url
from tests.conftest import RunningPlatform
from tests.prometheus.live import Prometheus, Timings, rule

pytestmark = pytest.mark.platform
T = TypeVar("T")
SETTINGS = Settings()
OFFLINE_AFTER = SETTINGS.stream_offline_after_seconds
TICK = SETTINGS.ingest_tick_seconds
# A reader's (re)connect: RTSP DESCRIBE/SETUP/PLAY and FFmpeg's 1 s probe, on two busy cores.
CONNECT_S = 10.0


def wait_for(what: str, check: Callable[[], T | None], timeout: float, every: float = 0.5) -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout:.0f}s (last: {last!r})")


@pytest.fixture(scope="module")
def api(local_platform: RunningPlatform) -> Iterator[httpx.Client]:
    headers = {"X-API-Key": local_platform.operator_key}
    with httpx.Client(base_url=local_platform.api_url, timeout=15, headers=headers) as client:
        yield client


def stream(api: httpx.Client, camera: str) -> dict[str, Any]:
    response = api.get(f"/v1/cameras/{camera}")
    assert response.status_code == 200, response.text
    status: dict[str, Any] = response.json()["stream"]
    return status


def register_streaming(local_platform: RunningPlatform, api: httpx.Client, camera: str, mount: str) -> None:
    response = api.post(
        "/v1/cameras",
        json={
            "id": camera,
            "name": f"test {camera}",
            "stream_url": stream_url(local_platform.cfg.ports.camera_rtsp, mount),
            "stream_secret": STREAM_SECRET,
            "sample_fps": STREAM_SAMPLE_FPS,
        },
    )
    assert response.status_code in (201, 409), response.text


@pytest.fixture
def extra_streams(local_platform: RunningPlatform, api: httpx.Client) -> Iterator[Callable[[str, str], None]]:
    """Registers streaming cameras for one test (camera id, mount); afterwards they stop
    streaming through the API (the ingest drops them at its next read of the cameras), so the
    worker is not kept busy by them for the rest of the session."""
    added: list[str] = []

    def register(camera: str, mount: str) -> None:
        register_streaming(local_platform, api, camera, mount)
        added.append(camera)

    yield register
    for camera in added:
        stopped = api.patch(f"/v1/cameras/{camera}", json={"stream_url": None})
        assert stopped.status_code == 200, stopped.text


def ingest_metric(port: int, name: str, camera: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    prefix = f'{name}{{camera_id="{camera}"}} '
    return next((float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix)), 0.0)


def wait_released(port: int, camera: str, since: float) -> float:
    """Seconds from `since` until the ingest has no reader of the camera: the camera's state
    series goes with its reader (app/ingest/metrics.forget), at the ingest's next read of the
    cameras."""
    state = f'its_ingest_camera_state{{camera_id="{camera}",'

    def released() -> bool:
        return state not in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text

    wait_for(f"{camera}'s reader released", released, SETTINGS.ingest_cameras_refresh_seconds + 2 * TICK + 5)
    return time.monotonic() - since


def duplicate_slots(local_platform: RunningPlatform, cameras: list[str]) -> list[tuple[Any, ...]]:
    """Frames rows that share a camera's sample slot: a slot recorded twice."""
    with psycopg.connect(local_platform.database_dsn) as conn:
        return conn.execute(
            """SELECT f.camera_id, floor(extract(epoch FROM f.captured_at) * c.sample_fps) AS slot, count(*)
               FROM frames f JOIN cameras c ON c.id = f.camera_id
               WHERE f.camera_id = ANY(%s) GROUP BY 1, 2 HAVING count(*) > 1""",
            (cameras,),
        ).fetchall()


def frames_since(local_platform: RunningPlatform, camera: str, since: float) -> int:
    with psycopg.connect(local_platform.database_dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM frames WHERE camera_id = %s AND captured_at >= to_timestamp(%s)",
            (camera, since),
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_streamed_cameras_detections_come_out_of_the_api(
    local_platform: RunningPlatform, api: httpx.Client
) -> None:
    """A test camera registered with its stream URL (its login a Vault reference): a frame the
    ingest samples from it after now is detected by the worker and read back from the API."""
    camera = STREAM_CAMERAS[0]
    result = run_stream_smoke(local_platform.api_url, local_platform.operator_key, camera, timeout_s=90)
    print(result.summary())
    assert result.detections
    assert stream(api, camera)["state"] == "online"
    listed = api.get("/v1/cameras", params={"stream_state": "online"}).json()
    assert camera in [c["id"] for c in listed]
    assert all(c["stream"]["state"] == "online" for c in listed)


def test_stream_urls_with_credentials_are_refused_by_the_api_and_the_database(
    local_platform: RunningPlatform, api: httpx.Client
) -> None:
    refused = api.post(
        "/v1/cameras",
        json={"id": "cred-in-url", "name": "x", "stream_url": "rtsp://admin:secret@127.0.0.1:554/s"},
    )
    assert refused.status_code == 422 and "must not carry credentials" in refused.text
    with psycopg.connect(local_platform.database_dsn) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "INSERT INTO cameras (id, name, stream_url) VALUES ('cred-in-sql', 'x', 'rtsp://a:b@127.0.0.1/s')"
        )
    with psycopg.connect(local_platform.database_dsn) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "INSERT INTO cameras (id, name, stream_url, sample_fps) VALUES ('fast', 'x', 'rtsp://h/s', 60)"
        )


def test_a_stream_stopped_and_restored_through_the_api_is_applied_by_the_ingest(
    local_platform: RunningPlatform, api: httpx.Client, extra_streams: Callable[[str, str], None]
) -> None:
    """An operator stops a camera's stream (PATCH stream_url: null): its secret goes with it, the
    ingest releases the reader at its next read of the cameras and no frame of it follows; given
    back, a reader reopens it and records frames again; retired (enabled: false), it is released
    again and shows no stream state. A secret for a camera without a stream and an unknown
    camera are refused by name."""
    camera = "patched-cam"
    extra_streams(camera, STREAM_CAMERAS[0])
    port = local_platform.cfg.ports.ingest_metrics
    refresh = SETTINGS.ingest_cameras_refresh_seconds
    wait_for("online", lambda: stream(api, camera)["state"] == "online", refresh + CONNECT_S + OFFLINE_AFTER)

    asked = time.monotonic()
    stopped = api.patch(f"/v1/cameras/{camera}", json={"stream_url": None})
    assert stopped.status_code == 200, stopped.text
    body = stopped.json()
    assert (body["stream_url"], body["stream_secret"], body["stream"]) == (None, None, None)
    released = wait_released(port, camera, asked)
    time.sleep(1)  # a frame sampled before the release may still be on its way
    after = time.time()
    time.sleep(3 / STREAM_SAMPLE_FPS)
    assert frames_since(local_platform, camera, after) == 0

    refused = api.patch(f"/v1/cameras/{camera}", json={"stream_secret": STREAM_SECRET})
    assert refused.status_code == 422 and "stream_secret needs a stream_url" in refused.text, refused.text
    unknown = api.patch("/v1/cameras/no-such-camera", json={"name": "x"})
    assert unknown.status_code == 404 and "unknown camera 'no-such-camera'" in unknown.text

    url = stream_url(local_platform.cfg.ports.camera_rtsp, STREAM_CAMERAS[0])
    restored_at = time.time()
    restored = api.patch(f"/v1/cameras/{camera}", json={"stream_url": url, "stream_secret": STREAM_SECRET})
    assert restored.status_code == 200, restored.text
    asked = time.monotonic()
    # A frame sampled after the change, not the health report the stopped reader left behind.
    wait_for(
        "a frame from the reopened stream",
        lambda: frames_since(local_platform, camera, restored_at),
        refresh + CONNECT_S + OFFLINE_AFTER,
    )
    online = time.monotonic() - asked

    asked = time.monotonic()
    retired = api.patch(f"/v1/cameras/{camera}", json={"enabled": False})
    assert retired.status_code == 200, retired.text
    assert (retired.json()["enabled"], retired.json()["stream"]) == (False, None)
    retired_after = wait_released(port, camera, asked)
    assert camera not in [c["id"] for c in api.get("/v1/cameras", params={"stream_state": "offline"}).json()]
    print(
        f"stream stopped through the API: reader released after {released:.1f}s (refresh {refresh:.0f}s); "
        f"restored, its first frame recorded after {online:.1f}s; "
        f"retired, released after {retired_after:.1f}s"
    )


def test_a_killed_stream_server_goes_offline_alerts_and_comes_back_without_duplicates(
    local_platform: RunningPlatform, api: httpx.Client
) -> None:
    """The test cameras' server stopped: each camera reads offline within the offline bound,
    StreamCameraOffline fires and reaches the receiver; started again, each camera reads online
    within the backoff's cap, and no sample slot was recorded twice."""
    cameras = list(STREAM_CAMERAS)
    wait_for(
        "cameras online before the fault",
        lambda: all(stream(api, c)["state"] == "online" for c in cameras),
        60,
    )
    prometheus, timings = Prometheus(local_platform.cfg), Timings.of(local_platform.cfg)
    receiver = AlertReceiver.of(local_platform.cfg)
    offline = rule("StreamCameraOffline")
    labels = {"camera_id": cameras[0]}
    fault = time.monotonic()
    since = receiver.now()
    local_platform.supervisor.stop("camera-server")
    try:
        wait_for(
            "offline in the API",
            lambda: all(stream(api, c)["state"] == "offline" for c in cameras),
            OFFLINE_AFTER + 2 * TICK + SETTINGS.ingest_read_timeout_seconds + 5,
        )
        went_offline = time.monotonic() - fault
        fired = receiver.wait_for(
            offline.name,
            "firing",
            timeout=timings.first_notification_bound(offline.for_s)
            + OFFLINE_AFTER
            + SETTINGS.ingest_read_timeout_seconds,
            since=since,
            labels=labels,
        )
        assert fired.receiver == "tickets"
        assert prometheus.firing(offline.name, labels), "delivered but not firing on Prometheus"
        alerted = time.monotonic() - fault
    finally:
        local_platform.supervisor.start("camera-server")
    restored = time.monotonic()
    wait_for(
        "online again",
        lambda: all(stream(api, c)["state"] == "online" for c in cameras),
        SETTINGS.ingest_reconnect_max_seconds + CONNECT_S + 2 * TICK + 10,
    )
    back = time.monotonic() - restored
    reconnects = ingest_metric(
        local_platform.cfg.ports.ingest_metrics, "its_ingest_reconnects_total", cameras[0]
    )
    print(
        f"stream server stopped: offline in the API after {went_offline:.1f}s, {offline.name} "
        f"delivered after {alerted:.1f}s; restarted: online after {back:.1f}s; "
        f"{reconnects:.0f} reconnects of {cameras[0]} so far"
    )
    assert reconnects >= 1
    assert duplicate_slots(local_platform, cameras) == []


def test_a_garbage_stream_counts_decode_errors_and_spares_the_others(
    local_platform: RunningPlatform, api: httpx.Client, extra_streams: Callable[[str, str], None]
) -> None:
    """A camera whose stream's H.264 bytes are corrupted: its decode errors are counted, its
    reader keeps reading (frames read go on rising, no reconnect storm), and the other cameras
    stay online and keep recording."""
    extra_streams(GARBAGE_CAMERA, GARBAGE_CAMERA)
    port = local_platform.cfg.ports.ingest_metrics

    def errors() -> float:
        return ingest_metric(port, "its_ingest_decode_errors_total", GARBAGE_CAMERA)

    wait_for(
        "decode errors counted",
        lambda: errors() > 0,
        SETTINGS.ingest_cameras_refresh_seconds + CONNECT_S + 20,
    )
    start = time.time()
    read_before = ingest_metric(port, "its_ingest_frames_read_total", GARBAGE_CAMERA)
    errors_before, reconnects_before = (
        errors(),
        ingest_metric(port, "its_ingest_reconnects_total", GARBAGE_CAMERA),
    )
    time.sleep(15)
    read_after = ingest_metric(port, "its_ingest_frames_read_total", GARBAGE_CAMERA)
    errors_after, reconnects_after = (
        errors(),
        ingest_metric(port, "its_ingest_reconnects_total", GARBAGE_CAMERA),
    )
    print(
        f"garbage stream over 15 s: {read_after - read_before:.0f} frames read, "
        f"{errors_after - errors_before:.0f} decode errors, "
        f"{reconnects_after - reconnects_before:.0f} reconnects"
    )
    assert read_after > read_before and errors_after > errors_before  # the reader lives and counts
    assert reconnects_after - reconnects_before <= 1
    for camera in STREAM_CAMERAS:
        assert stream(api, camera)["state"] == "online"
        assert frames_since(local_platform, camera, start) >= 10 * STREAM_SAMPLE_FPS


def test_two_replicas_split_the_cameras_and_a_killed_ones_move_to_the_other(
    local_platform: RunningPlatform, api: httpx.Client, extra_streams: Callable[[str, str], None]
) -> None:
    """A second ingest replica joins: the cameras split between the two as rendezvous hashing
    says (the first replica keeps the rest). It is killed (SIGKILL, no goodbye): its cameras
    read online on the first within member TTL + a tick + a connect, and no slot is recorded
    twice through either move."""
    extra = [f"handover-{index}" for index in range(4)]  # more cameras, the same shared mount
    for camera in extra:
        extra_streams(camera, STREAM_CAMERAS[0])
    cameras = [*STREAM_CAMERAS, *extra]
    replicas = ["local-ingest-0", "local-ingest-1"]
    expected = {camera: owner(camera, replicas) for camera in cameras}
    moved = [camera for camera, replica in expected.items() if replica == "local-ingest-1"]
    assert moved and len(moved) < len(cameras), f"this set does not split: {expected}"
    app = local_platform.platform.stack(App)
    second = subprocess.Popen(
        [str(local_platform.cfg.tools.python), "-m", "app.ingest"],
        env={**os.environ, **app.ingest_environment(1)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def split() -> bool:
            seen = {camera: stream(api, camera) for camera in cameras}
            return all(s["reader"] == expected[c] and s["state"] == "online" for c, s in seen.items())

        wait_for(
            "the cameras split over two replicas",
            split,
            SETTINGS.ingest_cameras_refresh_seconds + CONNECT_S + 30,
        )
        killed = time.monotonic()
        second.send_signal(signal.SIGKILL)
        second.wait(10)

        def moved_back() -> bool:
            seen = [stream(api, c) for c in moved]
            return all(s["reader"] == "local-ingest-0" and s["state"] == "online" for s in seen)

        bound = SETTINGS.ingest_member_ttl_seconds + 2 * TICK + CONNECT_S + OFFLINE_AFTER
        wait_for("the killed replica's cameras on the other", moved_back, bound)
        print(
            f"two replicas: {len(moved)} of {len(cameras)} cameras on the second; killed, they read "
            f"online on the first after {time.monotonic() - killed:.1f}s (bound {bound:.0f}s)"
        )
    finally:
        if second.poll() is None:
            second.kill()
            second.wait(10)
    assert duplicate_slots(local_platform, cameras) == []
