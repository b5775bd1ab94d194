"""The API's Kafka producer against the platform's brokers, logged in as the API: each send
returns once its own message is acknowledged, concurrent sends do not wait for each other's
flush, and a refusal (the API may not write another topic) reaches the sender."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from app.common.clients import AcknowledgedProducer
from app.common.contracts import DETECTIONS_TOPIC, FRAMES_TOPIC, FrameEvent
from tests.conftest import RunningPlatform

SAMPLES = Path(__file__).resolve().parents[2] / "app" / "worker" / "samples"

pytestmark = pytest.mark.platform


@pytest.fixture
def producer(local_platform: RunningPlatform) -> AcknowledgedProducer:
    api = {
        **local_platform.kafka_config("its-api"),
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 0,
    }
    return AcknowledgedProducer(Producer(api), ack_timeout=20)


def _end_offsets(kafka: dict[str, Any]) -> dict[int, int]:
    consumer = Consumer({**kafka, "group.id": f"probe-{uuid.uuid4()}"})
    try:
        partitions = consumer.list_topics(FRAMES_TOPIC, 10).topics[FRAMES_TOPIC].partitions
        return {p: consumer.get_watermark_offsets(TopicPartition(FRAMES_TOPIC, p), 10)[1] for p in partitions}
    finally:
        consumer.close()


def _accepted_frame_event(api: httpx.Client, camera: str, local_platform: RunningPlatform) -> bytes:
    """The event of a frame the API accepted: sent again, the worker counts the frame once."""
    sample = SAMPLES / "street-0.jpg"
    accepted = api.post(
        f"/v1/cameras/{camera}/frames",
        files={"file": (sample.name, sample.read_bytes(), "image/jpeg")},
        headers={"X-API-Key": local_platform.operator_key},
    )
    assert accepted.status_code == 202, accepted.text
    frame_id = accepted.json()["frame_id"]
    with psycopg.connect(local_platform.database_dsn) as conn:
        row = conn.execute(
            "SELECT camera_id, captured_at, object_key, content_type FROM frames WHERE id = %s", (frame_id,)
        ).fetchone()
    assert row is not None
    camera_id, captured_at, object_key, content_type = row
    event = FrameEvent(
        frame_id=frame_id,
        camera_id=camera_id,
        captured_at=captured_at,
        object_key=object_key,
        content_type=content_type,
    )
    return event.model_dump_json().encode()


def test_concurrent_sends_each_return_once_acknowledged(
    api: httpx.Client, camera: str, local_platform: RunningPlatform, producer: AcknowledgedProducer
) -> None:
    admin = local_platform.kafka_config()
    replay = _accepted_frame_event(api, camera, local_platform)
    before = _end_offsets(admin)
    values = [replay] * 50

    async def send_all() -> None:
        await asyncio.gather(*(producer.send(FRAMES_TOPIC, camera, v) for v in values))

    asyncio.run(send_all())
    after = _end_offsets(admin)
    # Acknowledged means written: every message is on the log when the sends have returned.
    assert sum(after.values()) - sum(before.values()) >= len(values)
    assert producer.close(5) == 0


def test_a_refused_write_reaches_the_sender(producer: AcknowledgedProducer) -> None:
    with pytest.raises(RuntimeError, match=r"kafka did not acknowledge: .*(?i:authori[sz]ation)"):
        asyncio.run(producer.send(DETECTIONS_TOPIC, "probe", b"the API may not write detections"))
    producer.close(1)
