"""The worker's loop: camera-events -> frames from MinIO -> YOLO -> detections (COPY) ->
vehicle-detections, alerts, latest counts -> commit offsets.

Three stages joined by bounded queues, so the store's and the brokers' round trips overlap
inference instead of adding to it: `load` consumes a batch and fetches (concurrently) and
decodes its frames, `detect` runs YOLO on it, `record` writes it and commits its offsets. At
most PREFETCH_BATCHES batches wait between two stages, so a backlog never piles up in memory.

Offsets are committed only after the database transaction, and only the recorded batch's own
(explicit offsets: the consumer's position is already past the batches behind it), so a crash
loses nothing; each frame is claimed in that transaction (frames.processed_at), so a
redelivery counts nothing twice. A message that can never be processed (app.worker.batch says
which) goes to the dead-letter topic, acknowledged by Kafka before its offset is committed
with the batch's. A transient fault in any stage rewinds the consumer to the first offsets of
the oldest batch not yet committed, drops every batch in flight (their generation is stale)
and retries.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import urllib3
from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition
from minio.error import MinioException
from PIL import Image
from redis.exceptions import RedisError

from app.common import clients, metrics_server
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
from app.worker.batch import DecodedFrame, PermanentFailure, check_key, parse_event, split_batch
from app.worker.detector import Detector, resolve_weights

log = logging.getLogger("app.worker")
COLUMNS = ("ts", "camera_id", "frame_id", "class", "confidence", "x1", "y1", "x2", "y2")
MAINTENANCE_EVERY = 3600.0
# Batches that may wait between two stages: one is enough to keep inference busy while the
# next batch loads and the previous one is recorded.
PREFETCH_BATCHES = 1
# Frame objects fetched at once: the store answers each get in a few ms of its own time.
FETCH_THREADS = 4
T = TypeVar("T")
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


@dataclass
class Batch:
    """Messages consumed together, carried through the stages; `generation` is the rewind count
    when they were consumed (a rewind since makes them stale: they are dropped, not recorded)."""

    generation: int
    messages: list[Message]
    decoded: list[DecodedFrame] = field(default_factory=list)
    dead_letters: list[DeadLetterEvent] = field(default_factory=list)
    frames: list[Frame] = field(default_factory=list)


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
        # Every call on the consumer runs on this one thread, in the order the stages make them:
        # a rewind's seek is queued before any consume issued after it.
        self._kafka = ThreadPoolExecutor(1, thread_name_prefix="kafka-consumer")
        self._fetchers = ThreadPoolExecutor(FETCH_THREADS, thread_name_prefix="frame-fetch")
        self._inference = ThreadPoolExecutor(1, thread_name_prefix="inference")
        self.stopping = False
        self.heartbeat = time.monotonic()
        self._last_maintenance = 0.0
        self.generation = 0
        self._in_flight: list[Batch] = []  # consumed, not yet committed, oldest first

    async def run(self) -> None:
        metrics_server.serve(
            self.settings.worker_metrics_host,
            self.settings.worker_metrics_port,
            lambda: self.heartbeat,
            stalled=b"consume loop stalled\n",
        )
        self.db = await clients.database_pool(self.settings, self.secrets)
        await self._on_consumer(self.consumer.subscribe, [FRAMES_TOPIC])
        log.info(
            "worker consuming", extra={"topic": FRAMES_TOPIC, "group": self.settings.kafka_consumer_group}
        )
        loaded: asyncio.Queue[Batch | None] = asyncio.Queue(PREFETCH_BATCHES)
        detected: asyncio.Queue[Batch | None] = asyncio.Queue(PREFETCH_BATCHES)
        try:
            # A fault that is not transient ends every stage (and the process: it is restarted).
            async with asyncio.TaskGroup() as stages:
                stages.create_task(self._load(loaded))
                stages.create_task(self._detect(loaded, detected))
                stages.create_task(self._record(detected))
        finally:
            await self._on_consumer(self.consumer.close)  # leaves the group at once: a fast rebalance
            for pool in (self._kafka, self._fetchers, self._inference):
                pool.shutdown(wait=False)
            self.producer.flush(5)
            await self.db.close()
            log.info("worker stopped")

    async def _on_consumer(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._kafka, lambda: call(*args, **kwargs))

    # -- the stages ----------------------------------------------------------------------------

    async def _load(self, out: asyncio.Queue[Batch | None]) -> None:
        """Consume a batch, fetch and decode its frames; hand it on. Ends the pipeline on stop
        (the batches in flight are still recorded)."""
        while not self.stopping:
            self.heartbeat = time.monotonic()
            await self._maintain()
            generation = self.generation  # read before the consume is queued (see _rewind)
            messages = await self._on_consumer(
                self.consumer.consume,
                self.settings.worker_batch_size,
                self.settings.worker_batch_timeout_ms / 1000,
            )
            messages = [m for m in messages if not m.error()]
            if messages and generation == self.generation:
                batch = Batch(generation, messages)
                self._in_flight.append(batch)
                try:
                    batch.decoded, batch.dead_letters = await asyncio.to_thread(self._split, messages)
                except TRANSIENT as error:
                    await self._rewind(batch, "load", error)
                    continue
                await out.put(batch)
            await self._on_consumer(self._report_lag)
        await out.put(None)

    async def _detect(self, source: asyncio.Queue[Batch | None], out: asyncio.Queue[Batch | None]) -> None:
        loop = asyncio.get_running_loop()
        while (batch := await source.get()) is not None:
            if batch.generation != self.generation:
                continue
            try:
                batch.frames = await loop.run_in_executor(self._inference, self._infer, batch.decoded)
            except TRANSIENT as error:
                await self._rewind(batch, "detect", error)
                continue
            await out.put(batch)
        await out.put(None)

    async def _record(self, source: asyncio.Queue[Batch | None]) -> None:
        while (batch := await source.get()) is not None:
            self.heartbeat = time.monotonic()
            if batch.generation != self.generation:
                continue
            try:
                await asyncio.to_thread(self._dead_letter, batch.dead_letters)
                fresh = await self._write(batch.frames)
                thresholds = await self._thresholds({f.event.camera_id for f in fresh})
                await asyncio.to_thread(self._publish, fresh, thresholds)
                await self._update_latest_counts(fresh)
                await self._on_consumer(self._commit, batch.messages)
            except TRANSIENT as error:
                await self._rewind(batch, "record", error)
                continue
            if batch in self._in_flight:  # a rewind meanwhile dropped it: redelivered, counted once
                self._in_flight.remove(batch)

    async def _rewind(self, failed: Batch, stage: str, error: Exception) -> None:
        """Not committed: back to the first offsets of the oldest batch in flight, every batch
        in flight dropped, and a pause before the next try. Nothing awaits between the new
        generation and the queued seeks, so a consume queued after them reads from there."""
        log.error("batch failed, will be redelivered", extra={"error": str(error), "stage": stage})
        metrics.FRAMES.labels("failed").inc(len(failed.messages))
        first = _first_offsets([m for batch in self._in_flight for m in batch.messages])
        self.generation += 1
        self._in_flight.clear()
        seeks = [
            self._on_consumer(self._seek, TopicPartition(FRAMES_TOPIC, partition, offset))
            for partition, offset in first.items()
        ]
        await asyncio.gather(*seeks)
        await asyncio.sleep(1)

    def _commit(self, messages: list[Message]) -> None:
        committed = self.consumer.commit(offsets=_next_offsets(messages), asynchronous=False) or []
        refused = [tp for tp in committed if tp.error is not None]
        if refused:
            raise KafkaException(refused[0].error)

    def _seek(self, partition: TopicPartition) -> None:
        try:
            self.consumer.seek(partition)
        except KafkaException as error:
            # Revoked meanwhile: its new owner starts from the committed offset.
            log.warning(
                "rewind skipped a partition", extra={"partition": partition.partition, "error": str(error)}
            )

    # -- the work of each stage ----------------------------------------------------------------

    def _split(self, messages: list[Message]) -> tuple[list[DecodedFrame], list[DeadLetterEvent]]:
        """The batch's frames fetched at once, then parsed and decoded message by message."""
        fetched = self._fetch_all(messages)

        def fetch(object_key: str) -> bytes:
            return fetched[object_key].result() if object_key in fetched else self._fetch(object_key)

        return split_batch(messages, fetch)

    def _fetch_all(self, messages: list[Message]) -> dict[str, Future[bytes]]:
        keys = set()
        for message in messages:
            try:
                event = parse_event(message.value())
                check_key(event)
            except PermanentFailure:
                continue  # split_batch dead-letters it, with the reason
            keys.add(event.object_key)
        return {key: self._fetchers.submit(self._fetch, key) for key in keys}

    def _infer(self, decoded: list[DecodedFrame]) -> list[Frame]:
        started = time.perf_counter()
        boxes = self.detector.detect([frame.image for frame in decoded])
        metrics.INFERENCE.observe(time.perf_counter() - started)
        metrics.BATCH.observe(len(decoded))
        return [Frame(d.event, d.image, b) for d, b in zip(decoded, boxes, strict=True)]

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
        """Record the batch in one transaction: claim its frames (one UPDATE), then COPY the
        claimed frames' detections; return the frames this delivery claimed. A frame an earlier
        delivery recorded stays as it was and adds no detection."""
        if not frames:
            return []
        async with self.db.acquire() as conn, conn.transaction():
            claimed = {
                row["id"]
                for row in await conn.fetch(
                    """UPDATE frames SET processed_at = now(), detection_count = batch.detections
                       FROM unnest($1::uuid[], $2::integer[]) AS batch (id, detections)
                       WHERE frames.id = batch.id AND frames.processed_at IS NULL
                       RETURNING frames.id""",
                    [frame.event.frame_id for frame in frames],
                    [len(frame.boxes) for frame in frames],
                )
            }
            for frame in frames:
                frame.claimed = frame.event.frame_id in claimed
            records = [
                (e.captured_at, e.camera_id, e.frame_id, b.cls, b.confidence, b.x1, b.y1, b.x2, b.y2)
                for frame in frames
                if frame.claimed
                for e in (frame.event,)
                for b in frame.boxes
            ]
            if records:
                await conn.copy_records_to_table("detections", records=records, columns=COLUMNS)
        for frame in frames:
            if not frame.claimed:
                metrics.FRAMES.labels("duplicate").inc()
                continue
            metrics.FRAMES.labels("processed").inc()
            for box in frame.boxes:
                metrics.DETECTIONS.labels(box.cls).inc()
            log.info(
                "frame processed",
                extra={
                    "camera_id": frame.event.camera_id,
                    "frame_id": str(frame.event.frame_id),
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


def _next_offsets(messages: list[Message]) -> list[TopicPartition]:
    """What committing these messages means: each partition's offset after its last one here."""
    last: dict[int, int] = {}
    for message in messages:
        partition, offset = int(message.partition() or 0), int(message.offset() or 0)
        last[partition] = max(offset, last.get(partition, offset))
    return [TopicPartition(FRAMES_TOPIC, partition, offset + 1) for partition, offset in last.items()]


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
