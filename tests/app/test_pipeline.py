"""The app end to end on the test session's platform: frame in through the API, detections
out through the API; the worker killed mid-stream, or its object store gone mid-backlog (the
worker rewinds its pipeline), loses and double-counts nothing."""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest

from app.smoke import run_smoke
from infra.kernel.health import wait_until
from infra.local.stacks import Minio
from tests.conftest import RunningPlatform

pytestmark = pytest.mark.platform
SAMPLES = sorted((Path(__file__).resolve().parents[2] / "app" / "worker" / "samples").glob("*.jpg"))
DETECTION_BOUND_SECONDS = 60


def _register(api: httpx.Client, key: str, camera: str, threshold: int = 20) -> None:
    response = api.post(
        "/v1/cameras",
        json={"id": camera, "name": camera, "congestion_threshold": threshold},
        headers={"X-API-Key": key},
    )
    assert response.status_code == 201, response.text


def test_a_street_photo_comes_out_as_vehicle_detections_and_counts(local_platform: RunningPlatform) -> None:
    result = run_smoke(local_platform.api_url, local_platform.operator_key, timeout_s=DETECTION_BOUND_SECONDS)
    classes = {d["class"] for d in result.detections}
    # street-0.jpg shows three cars and a truck.
    assert "car" in classes, result.detections
    assert 2 <= len(result.detections) <= 6, result.detections
    assert result.detected_seconds < DETECTION_BOUND_SECONDS
    with httpx.Client(base_url=local_platform.api_url, timeout=10) as api:
        # The operator key: the rate-limit test may have used up the viewer key's minute.
        headers = {"X-API-Key": local_platform.operator_key}
        now = datetime.now(UTC)
        window = {
            "start": (now - timedelta(minutes=10)).isoformat(),
            "end": (now + timedelta(minutes=1)).isoformat(),
        }
        counts = api.get("/v1/cameras/smoke-cam/counts", params=window, headers=headers).json()["counts"]
        assert sum(c["vehicles"] for c in counts) >= len(result.detections)
        latest = api.get("/v1/cameras/smoke-cam/counts/latest", headers=headers).json()
        assert latest["frame_id"] is not None and sum(latest["counts"].values()) >= 1


def test_worker_killed_mid_stream_loses_and_duplicates_nothing(local_platform: RunningPlatform) -> None:
    camera = f"kill-{uuid.uuid4().hex[:6]}"
    frame_ids: list[str] = []
    with httpx.Client(base_url=local_platform.api_url, timeout=15) as api:
        _register(api, local_platform.operator_key, camera, threshold=1)
        # A fresh camera no camera key is bound to: the operator posts its frames.
        headers = {"X-API-Key": local_platform.operator_key}
        for index in range(24):
            sample = SAMPLES[index % len(SAMPLES)]
            response = api.post(
                f"/v1/cameras/{camera}/frames",
                files={"file": (sample.name, sample.read_bytes(), "image/jpeg")},
                headers={**headers, "Idempotency-Key": f"k{index}"},
            )
            assert response.status_code == 202, response.text
            frame_ids.append(response.json()["frame_id"])
            if index == 8:
                local_platform.supervisor.signal("worker", "KILL")  # mid-stream, no goodbye
                local_platform.supervisor.stop("worker")
            if index == 16:
                local_platform.supervisor.start("worker")
        # A retry of an accepted frame is a no-op with the same id.
        again = api.post(
            f"/v1/cameras/{camera}/frames",
            files={"file": (SAMPLES[0].name, SAMPLES[0].read_bytes(), "image/jpeg")},
            headers={**headers, "Idempotency-Key": "k0"},
        )
        assert again.status_code == 202 and again.json()["frame_id"] == frame_ids[0]
    _assert_each_frame_recorded_once(local_platform, camera, frame_ids)


def _post_frames(api: httpx.Client, key: str, camera: str, count: int) -> list[str]:
    frame_ids = []
    for index in range(count):
        sample = SAMPLES[index % len(SAMPLES)]
        response = api.post(
            f"/v1/cameras/{camera}/frames",
            files={"file": (sample.name, sample.read_bytes(), "image/jpeg")},
            headers={"X-API-Key": key, "Idempotency-Key": f"k{index}"},
        )
        assert response.status_code == 202, response.text
        frame_ids.append(response.json()["frame_id"])
    return frame_ids


def _failed_frames(local_platform: RunningPlatform) -> float:
    """The worker's count of frames whose batch failed and was rewound (its own metric)."""
    url = f"http://127.0.0.1:{local_platform.cfg.ports.worker_metrics}/metrics"
    found = re.search(
        r'^its_worker_frames_total\{outcome="failed"\} (\S+)$', httpx.get(url, timeout=5).text, re.M
    )
    return float(found.group(1)) if found else 0.0


def test_an_object_store_outage_mid_backlog_rewinds_and_records_each_frame_once(
    local_platform: RunningPlatform,
) -> None:
    """A backlog is waiting when the worker starts and MinIO is gone: every batch's fetch fails,
    the pipeline rewinds (its failed-frames count grows); once MinIO is back each frame is
    recorded exactly once."""
    supervisor = local_platform.supervisor
    camera = f"outage-{uuid.uuid4().hex[:6]}"
    with httpx.Client(base_url=local_platform.api_url, timeout=15) as api:
        _register(api, local_platform.operator_key, camera, threshold=1)
        supervisor.stop("worker")
        try:
            frame_ids = _post_frames(api, local_platform.operator_key, camera, 24)
            supervisor.stop("minio")
        finally:
            supervisor.start("worker")
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                failed = _failed_frames(local_platform)
            except httpx.HTTPError:
                failed = 0.0  # still starting: its metrics endpoint is not up yet
            if failed > 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert failed > 0, "the worker never saw the store fail: the fault did not happen"
    finally:
        supervisor.start("minio")
        # Healthy again before anything else runs: the tests after this one use the store.
        wait_until("minio", local_platform.platform.stack(Minio).health, 60)
    _assert_each_frame_recorded_once(local_platform, camera, frame_ids)


def _assert_each_frame_recorded_once(
    local_platform: RunningPlatform, camera: str, frame_ids: list[str]
) -> None:
    deadline = time.monotonic() + 180
    with psycopg.connect(local_platform.database_dsn) as conn:
        while True:
            processed = conn.execute(
                "SELECT count(*) FROM frames WHERE camera_id = %s AND processed_at IS NOT NULL", (camera,)
            ).fetchone()
            assert processed is not None
            if processed[0] == len(frame_ids) or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert processed[0] == len(frame_ids), "frames were lost"
        per_frame: dict[str, int] = dict(
            conn.execute(
                "SELECT f.id::text, f.detection_count FROM frames f WHERE f.camera_id = %s", (camera,)
            ).fetchall()
        )
        stored: dict[str, int] = dict(
            conn.execute(
                "SELECT frame_id::text, count(*) FROM detections WHERE camera_id = %s GROUP BY 1", (camera,)
            ).fetchall()
        )
        rollup = conn.execute(
            "SELECT coalesce(sum(vehicles), 0) FROM vehicle_counts_1m WHERE camera_id = %s", (camera,)
        ).fetchone()
    assert set(per_frame) == set(frame_ids)
    # Exactly the recorded detections per frame: a redelivered frame added none.
    assert {k: v for k, v in per_frame.items() if v} == stored
    assert rollup is not None and rollup[0] == sum(stored.values())
