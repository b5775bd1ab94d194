"""The worker's loop: camera-events -> frames from MinIO -> YOLO -> detections (COPY) ->
vehicle-detections, alerts, latest counts -> commit offsets.

Offsets are committed only after the database transaction, so a crash loses nothing; each
frame is claimed in that transaction (frames.processed_at), so a redelivery counts nothing
twice. A message that can never be processed (app.worker.batch says which) goes to the
dead-letter topic, acknowledged by Kafka before its offset is committed with the batch's; a
transient fault rewinds the whole batch and retries it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import urllib3
from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition
from minio.error import MinioException
from PIL import Image
from redis.exceptions import RedisError

from app.common import clients
from app.common.contracts import (
    ALERTS_TOPIC,
    DEAD_LETTERS_TOPIC,
    DETECTIONS_TOPIC,
    FRAMES_BUCKET,
    FRAMES_TOPIC,
    AlertEvent,
    DeadLetterEvent,
    Detection,
    DetectionEvent,
    FrameEvent,
    latest_counts_key,
)
from app.common.secrets import VaultSecrets
from app.common.settings import Settings
from app.worker import metrics
from app.worker.batch import split_batch
from app.worker.detector import Detector, resolve_weights

log = logging.getLogger("app.worker")
COLUMNS = ("ts", "camera_id", "frame_id", "class", "confidence", "x1", "y1", "x2", "y2")
MAINTENANCE_EVERY = 3600.0
# Faults of the platform, not of a message: the batch is rewound and retried, nothing is lost.
# (An S3Error other than a missing object is a MinioException; a refused or broken connection
# to the store is urllib3's; Vault is not on this path: secrets are cached at start-up.)
TRANSIENT = (
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    KafkaException,
    RuntimeError,
    MinioException,
    urllib3.exceptions.HTTPError,
    RedisError,
)


@dataclass
class Frame:
    event: FrameEvent
    image: Image.Image
    boxes: list[Detection]
    claimed: bool = False  # this delivery recorded it (False: an earlier one already had)


class Worker:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.secrets = VaultSecrets(settings)
        self.secrets.start_background_refresh()
        self.store = clients.object_store(settings, self.secrets)
        self.producer = clients.kafka_producer(settings, self.secrets.kafka_credentials())
        self.sentinel = clients.redis_sentinel(settings, self.secrets.redis_credentials())
        weights = resolve_weights(settings.model_uri, self.store, _cache_dir())
        self.detector = Detector(
            weights, settings.device, settings.worker_confidence, settings.vehicle_classes
        )
        self.consumer = clients.kafka_consumer(settings, self.secrets.kafka_credentials())
        self.stopping = False
        self.heartbeat = time.monotonic()
        self._last_maintenance = 0.0

    async def run(self) -> None:
        metrics.serve(
            self.settings.worker_metrics_host, self.settings.worker_metrics_port, lambda: self.heartbeat
        )
        self.db = await clients.database_pool(self.settings, self.secrets)
        self.consumer.subscribe([FRAMES_TOPIC])
        log.info(
            "worker consuming", extra={"topic": FRAMES_TOPIC, "group": self.settings.kafka_consumer_group}
        )
        try:
            while not self.stopping:
                self.heartbeat = time.monotonic()
                await self._maintain()
                messages = await asyncio.to_thread(
                    self.consumer.consume,
                    self.settings.worker_batch_size,
                    self.settings.worker_batch_timeout_ms / 1000,
                )
                messages = [m for m in messages if not m.error()]
                if messages:
                    await self._handle_batch(messages)
                self._report_lag()
        finally:
            self.consumer.close()  # leaves the group at once, so a restart rebalances fast
            self.producer.flush(5)
            await self.db.close()
            log.info("worker stopped")

    async def _handle_batch(self, messages: list[Message]) -> None:
        try:
            frames, dead_letters = await asyncio.to_thread(self._load_and_detect, messages)
            await asyncio.to_thread(self._dead_letter, dead_letters)
            fresh = await self._write(frames)
            thresholds = await self._thresholds({f.event.camera_id for f in fresh})
            self._publish(fresh, thresholds)
            await self._update_latest_counts(fresh)
            await asyncio.to_thread(self.consumer.commit, asynchronous=False)
        except TRANSIENT as error:
            # Not committed: rewind to the batch's first offsets and try again shortly.
            log.error("batch failed, will be redelivered", extra={"error": str(error)})
            metrics.FRAMES.labels("failed").inc(len(messages))
            for partition, offset in _first_offsets(messages).items():
                self.consumer.seek(TopicPartition(FRAMES_TOPIC, partition, offset))
            await asyncio.sleep(1)

    def _load_and_detect(self, messages: list[Message]) -> tuple[list[Frame], list[DeadLetterEvent]]:
        decoded, dead_letters = split_batch(messages, self._fetch)
        images = [frame.image for frame in decoded]
        started = time.perf_counter()
        boxes = self.detector.detect(images)
        metrics.INFERENCE.observe(time.perf_counter() - started)
        metrics.BATCH.observe(len(images))
        frames = [Frame(d.event, d.image, b) for d, b in zip(decoded, boxes, strict=True)]
        return frames, dead_letters

    def _fetch(self, object_key: str) -> bytes:
        response = self.store.get_object(FRAMES_BUCKET, object_key)
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def _dead_letter(self, dead_letters: list[DeadLetterEvent]) -> None:
        """Produce each dead letter and wait until Kafka acknowledged every one (acks=all), or raise."""
        if not dead_letters:
            return
        failures: list[KafkaError] = []

        def delivered(error: KafkaError | None, _message: Message) -> None:
            if error is not None:
                failures.append(error)

        for letter in dead_letters:
            self.producer.produce(
                DEAD_LETTERS_TOPIC,
                key=letter.key,
                value=letter.model_dump_json().encode(),
                on_delivery=delivered,
            )
        if self.producer.flush(10) or failures:
            raise RuntimeError(f"dead letters not acknowledged by Kafka: {failures[:3]}")
        for letter in dead_letters:
            metrics.DEAD_LETTERS.labels(letter.reason).inc()
            log.warning(
                "camera event dead-lettered",
                extra={
                    "reason": letter.reason,
                    "detail": letter.detail,
                    "partition": letter.partition,
                    "offset": letter.offset,
                    "frame_id": str(letter.frame_id) if letter.frame_id else None,
                    "camera_id": letter.camera_id,
                    "topic": DEAD_LETTERS_TOPIC,
                },
            )

    async def _write(self, frames: list[Frame]) -> list[Frame]:
        """Record each frame in its own transaction; return the frames this delivery claimed."""
        async with self.db.acquire() as conn:
            for frame in frames:
                event = frame.event
                async with conn.transaction():
                    claimed = await conn.fetchval(
                        """UPDATE frames SET processed_at = now(), detection_count = $2
                           WHERE id = $1 AND processed_at IS NULL RETURNING id""",
                        event.frame_id,
                        len(frame.boxes),
                    )
                    if claimed is None:
                        metrics.FRAMES.labels("duplicate").inc()
                        continue
                    frame.claimed = True
                    if frame.boxes:
                        await conn.copy_records_to_table(
                            "detections",
                            records=[
                                (
                                    event.captured_at,
                                    event.camera_id,
                                    event.frame_id,
                                    b.cls,
                                    b.confidence,
                                    b.x1,
                                    b.y1,
                                    b.x2,
                                    b.y2,
                                )
                                for b in frame.boxes
                            ],
                            columns=COLUMNS,
                        )
                metrics.FRAMES.labels("processed").inc()
                for box in frame.boxes:
                    metrics.DETECTIONS.labels(box.cls).inc()
                log.info(
                    "frame processed",
                    extra={
                        "camera_id": event.camera_id,
                        "frame_id": str(event.frame_id),
                        "vehicles": len(frame.boxes),
                    },
                )
        return [frame for frame in frames if frame.claimed]

    def _publish(self, frames: list[Frame], thresholds: dict[str, int]) -> None:
        for frame in frames:
            event = frame.event
            found = DetectionEvent(
                frame_id=event.frame_id,
                camera_id=event.camera_id,
                captured_at=event.captured_at,
                detections=frame.boxes,
            )
            self.producer.produce(
                DETECTIONS_TOPIC, key=event.camera_id, value=found.model_dump_json().encode()
            )
            threshold = thresholds.get(event.camera_id, self.settings.congestion_threshold)
            if len(frame.boxes) >= threshold:
                alert = AlertEvent(**found.model_dump(), vehicles=len(frame.boxes), threshold=threshold)
                self.producer.produce(
                    ALERTS_TOPIC, key=event.camera_id, value=alert.model_dump_json().encode()
                )
                metrics.ALERTS.inc()
        if self.producer.flush(10):
            raise RuntimeError("detections not acknowledged by Kafka")

    async def _thresholds(self, cameras: set[str]) -> dict[str, int]:
        rows = await self.db.fetch(
            "SELECT id, congestion_threshold FROM cameras WHERE id = ANY($1)", list(cameras)
        )
        return {row["id"]: row["congestion_threshold"] for row in rows}

    async def _update_latest_counts(self, frames: list[Frame]) -> None:
        master = self.sentinel.master_for(self.settings.redis_master_name)
        for frame in frames:
            counts: dict[str, Any] = {}
            for box in frame.boxes:
                counts[box.cls] = counts.get(box.cls, 0) + 1
            key = latest_counts_key(frame.event.camera_id)
            mapping = {
                **counts,
                "frame_id": str(frame.event.frame_id),
                "captured_at": frame.event.captured_at.isoformat(),
            }
            async with master.pipeline(transaction=True) as pipe:
                pipe.delete(key)
                pipe.hset(key, mapping=mapping)
                pipe.expire(key, self.settings.counts_cache_ttl_seconds)
                await pipe.execute()

    async def _maintain(self) -> None:
        """On the plain-PostgreSQL path, keep the daily partitions (Timescale has its jobs)."""
        if time.monotonic() - self._last_maintenance < MAINTENANCE_EVERY:
            return
        self._last_maintenance = time.monotonic()
        if await self.db.fetchval("SELECT to_regprocedure('its_maintain(timestamptz)') IS NOT NULL"):
            await self.db.execute("SELECT its_maintain()")

    def _report_lag(self) -> None:
        try:
            assignment = self.consumer.assignment()
            for tp in self.consumer.position(assignment):
                _, high = self.consumer.get_watermark_offsets(tp, cached=True)
                if tp.offset >= 0 and high >= 0:
                    metrics.LAG.labels(FRAMES_TOPIC, str(tp.partition)).set(max(high - tp.offset, 0))
        except KafkaException:
            return


def _first_offsets(messages: list[Message]) -> dict[int, int]:
    first: dict[int, int] = {}
    for message in messages:
        partition, offset = int(message.partition() or 0), int(message.offset() or 0)
        first[partition] = min(offset, first.get(partition, offset))
    return first


def _cache_dir() -> Path:
    return Path.home() / ".cache" / "its-camera-ai" / "models"


def install_signal_handlers(worker: Worker) -> None:
    def stop(signum: int, _frame: object) -> None:
        log.info("stopping after the current batch", extra={"signal": signum})
        worker.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
