"""Hostile input end to end on the test session's platform: a message the worker can never
process goes to the dead-letter topic with its reason, the frames behind it still come out as
detections, and the worker neither wedges nor restarts. A dead letter replayed after its cause
is fixed comes out as detections too."""

from __future__ import annotations

import io
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from confluent_kafka import KafkaError, Message, Producer
from minio import Minio

from app.common.contracts import FRAMES_BUCKET, FRAMES_TOPIC, FrameEvent, frame_object_key
from app.worker import dead_letters
from infra.local.stacks import Minio as MinioStack
from tests.conftest import RunningPlatform

pytestmark = pytest.mark.platform
SAMPLES = Path(__file__).resolve().parents[2] / "app" / "worker" / "samples"
BOUND_SECONDS = 60  # a frame behind a poison message comes out within this, as any frame does


@pytest.fixture(scope="module")
def kafka(local_platform: RunningPlatform) -> dict[str, Any]:
    """The platform's admin login: a producer other than the API, and the runbook's reader."""
    return local_platform.kafka_config()


@pytest.fixture(scope="module")
def store(local_platform: RunningPlatform) -> Minio:
    return local_platform.platform.stack(MinioStack).root_client()


@pytest.fixture
def worker_stays_up(local_platform: RunningPlatform) -> Iterator[None]:
    """The same worker process answers before and after: nothing crashed or restarted it."""
    pid = local_platform.supervisor.pid("worker")
    yield
    assert local_platform.supervisor.state("worker") == "RUNNING"
    assert local_platform.supervisor.pid("worker") == pid, "the worker restarted"
    health = httpx.get(f"http://127.0.0.1:{local_platform.cfg.ports.worker_metrics}/healthz", timeout=5)
    assert health.status_code == 200, health.text


def _inject(kafka: dict[str, Any], key: str, value: bytes) -> tuple[int, int]:
    """Write straight to camera-events, as a producer other than the API would; (partition, offset)."""
    placed: list[tuple[int, int]] = []
    failures: list[KafkaError] = []

    def delivered(error: KafkaError | None, message: Message) -> None:
        if error is not None:
            failures.append(error)
        else:
            placed.append((message.partition() or 0, message.offset() or 0))

    producer = Producer({**kafka, "acks": "all", "enable.idempotence": True})
    producer.produce(FRAMES_TOPIC, key=key, value=value, on_delivery=delivered)
    assert producer.flush(15) == 0 and not failures, failures
    return placed[0]


def _dead_letter_of(kafka: dict[str, Any], origin: tuple[int, int]) -> dead_letters.Stored:
    """The dead letter of the camera-events message at (partition, offset), read back from Kafka."""
    deadline = time.monotonic() + BOUND_SECONDS
    while time.monotonic() < deadline:
        for stored in dead_letters.read(kafka):
            letter = stored.letter
            if (letter.topic, letter.partition, letter.offset) == (FRAMES_TOPIC, *origin):
                return stored
        time.sleep(1)
    pytest.fail(f"no dead letter for camera-events {origin} within {BOUND_SECONDS}s")


def _dead_letter_count(local_platform: RunningPlatform, reason: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{local_platform.cfg.ports.worker_metrics}/metrics", timeout=5).text
    found = re.search(rf'^its_worker_dead_letters_total\{{reason="{reason}"\}} (\S+)$', text, re.MULTILINE)
    assert found, f"its_worker_dead_letters_total{{reason={reason!r}}} not exported"
    return float(found.group(1))


def _detections(
    api: httpx.Client, key: str, camera: str, frame_id: str, captured: datetime
) -> list[dict[str, Any]]:
    """The frame's detections through the API, waited for up to the bound."""
    window = {
        "start": (captured - timedelta(seconds=1)).isoformat(),
        "end": (captured + timedelta(seconds=1)).isoformat(),
    }
    deadline = time.monotonic() + BOUND_SECONDS
    while time.monotonic() < deadline:
        found = api.get(f"/v1/cameras/{camera}/detections", params=window, headers={"X-API-Key": key})
        assert found.status_code == 200, found.text
        mine = [d for d in found.json()["detections"] if d["frame_id"] == frame_id]
        if mine:
            return mine
        time.sleep(0.5)
    pytest.fail(f"no detections for frame {frame_id} within {BOUND_SECONDS}s")


def _event(camera: str, extension: str = "jpg") -> FrameEvent:
    frame_id = uuid.uuid4()
    return FrameEvent(
        frame_id=frame_id,
        camera_id=camera,
        object_key=frame_object_key(camera, frame_id, "0" * 16, extension),
        captured_at=datetime.now(UTC),
        content_type="image/jpeg",
    )


def _record(local_platform: RunningPlatform, event: FrameEvent, size: int) -> None:
    """The frames row the API writes for an accepted frame."""
    with psycopg.connect(local_platform.database_dsn) as conn:
        conn.execute(
            """INSERT INTO frames (id, camera_id, captured_at, object_key, content_type, size_bytes)
               VALUES (%s, %s, %s, %s, %s, %s)""",
            (event.frame_id, event.camera_id, event.captured_at, event.object_key, event.content_type, size),
        )


@pytest.mark.usefixtures("worker_stays_up")
def test_a_poison_event_is_dead_lettered_and_the_frame_behind_it_comes_out(
    api: httpx.Client, camera: str, kafka: dict[str, Any], local_platform: RunningPlatform
) -> None:
    before = _dead_letter_count(local_platform, "undecodable_event")
    poison = b'{"frame_id": "not-a-uuid", "camera_id": 42}'
    # Keyed by the camera, so it lands on the good frame's partition, right in front of it.
    origin = _inject(kafka, camera, poison)
    sample = SAMPLES / "street-1.jpg"
    captured = datetime.now(UTC)
    posted = api.post(
        f"/v1/cameras/{camera}/frames",
        files={"file": (sample.name, sample.read_bytes(), "image/jpeg")},
        data={"captured_at": captured.isoformat()},
        headers={"X-API-Key": local_platform.operator_key},
    )
    assert posted.status_code == 202, posted.text

    assert _detections(api, local_platform.operator_key, camera, posted.json()["frame_id"], captured)
    stored = _dead_letter_of(kafka, origin)
    assert stored.letter.reason == "undecodable_event"
    assert "not a FrameEvent" in stored.letter.detail
    assert stored.letter.original_value() == poison and stored.letter.key == camera
    assert stored.letter.frame_id is None
    assert _dead_letter_count(local_platform, "undecodable_event") >= before + 1


@pytest.mark.usefixtures("worker_stays_up")
def test_a_missing_object_is_dead_lettered_and_replayed_once_put_back(
    api: httpx.Client, camera: str, kafka: dict[str, Any], store: Minio, local_platform: RunningPlatform
) -> None:
    before = _dead_letter_count(local_platform, "object_missing")
    event = _event(camera)
    sample = (SAMPLES / "street-0.jpg").read_bytes()
    _record(local_platform, event, len(sample))  # accepted, but its object never reached the store
    origin = _inject(kafka, camera, event.model_dump_json().encode())

    stored = _dead_letter_of(kafka, origin)
    assert stored.letter.reason == "object_missing"
    assert (stored.letter.frame_id, stored.letter.object_key) == (event.frame_id, event.object_key)
    assert "NoSuchKey" in stored.letter.detail
    assert _dead_letter_count(local_platform, "object_missing") >= before + 1

    # The runbook's fix: put the object back, replay the dead letter; the frame comes out.
    store.put_object(FRAMES_BUCKET, event.object_key, io.BytesIO(sample), len(sample), "image/jpeg")
    login = {"ITS_KAFKA_USERNAME": kafka["sasl.username"], "ITS_KAFKA_PASSWORD": kafka["sasl.password"]}
    with pytest.MonkeyPatch.context() as env:
        for name, value in login.items():
            env.setenv(name, value)
        env.setenv("ITS_KAFKA_SECURITY_PROTOCOL", kafka["security.protocol"])
        assert dead_letters.main(["--bootstrap", kafka["bootstrap.servers"], "replay", stored.at]) == 0
    frame_id = str(event.frame_id)
    assert _detections(api, local_platform.operator_key, camera, frame_id, event.captured_at)


@pytest.mark.usefixtures("worker_stays_up")
def test_a_truncated_jpeg_in_the_bucket_is_dead_lettered(
    camera: str, kafka: dict[str, Any], store: Minio, local_platform: RunningPlatform
) -> None:
    before = _dead_letter_count(local_platform, "undecodable_image")
    whole = (SAMPLES / "street-2.jpg").read_bytes()
    truncated = whole[: len(whole) // 2]
    event = _event(camera)
    store.put_object(FRAMES_BUCKET, event.object_key, io.BytesIO(truncated), len(truncated), "image/jpeg")
    _record(local_platform, event, len(truncated))
    origin = _inject(kafka, camera, event.model_dump_json().encode())

    stored = _dead_letter_of(kafka, origin)
    assert stored.letter.reason == "undecodable_image"
    assert "truncated" in stored.letter.detail
    assert (stored.letter.frame_id, stored.letter.camera_id) == (event.frame_id, camera)
    assert _dead_letter_count(local_platform, "undecodable_image") >= before + 1
    with psycopg.connect(local_platform.database_dsn) as conn:
        row = conn.execute("SELECT processed_at FROM frames WHERE id = %s", (event.frame_id,)).fetchone()
    assert row == (None,), "a frame that does not decode was recorded as processed"
