"""The ingest's event loop: membership, assignment, readers, recording and health.

Each tick a replica renews its membership (Redis, under its own ACL prefix), reads who else is
alive, and keeps exactly one reader for each streaming camera it wins by rendezvous hashing
(app/ingest/assignment.py). A replica that stops leaves the membership at once; one that dies is
dropped when its heartbeat expires (member_ttl), and its cameras start on the others within
member_ttl + one tick. Every sampled frame goes through app/common/frames.py, as an upload does,
under a frame id named by its camera's sample slot, so a handover or a reconnect can never
record one slot twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from concurrent.futures import Future
from datetime import UTC, datetime

import asyncpg
from redis.asyncio import Redis

from app.common import clients, metrics_server
from app.common.contracts import INGEST_MEMBERS_KEY, frame_id_for, stream_frame_key, stream_health_key
from app.common.frames import FrameSinks, IncomingFrame, accept_frame
from app.common.secrets import VaultSecrets, identity_paths
from app.common.settings import Settings
from app.common.streams import HealthReport, classify
from app.ingest import metrics
from app.ingest.assignment import assigned
from app.ingest.reader import ReaderConfig, SampledFrame, StreamReader, StreamSource

log = logging.getLogger("app.ingest")
# Bounds the cameras one query returns; far above what one platform registers.
MAX_STREAMS = 10_000
CAMERAS_SQL = """SELECT id, stream_url, stream_secret, sample_fps FROM cameras
                 WHERE stream_url IS NOT NULL AND enabled ORDER BY id LIMIT $1"""


def replica_id(settings: Settings) -> str:
    return settings.ingest_replica_id or f"{socket.gethostname()}-{os.getpid()}"


class Membership:
    """The live replicas: a sorted set of replica ids scored by when each heartbeat expires."""

    def __init__(self, redis: Redis, replica: str, ttl: float) -> None:
        self.redis = redis
        self.replica = replica
        self.ttl = ttl

    async def heartbeat(self) -> list[str]:
        now = time.time()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(INGEST_MEMBERS_KEY, {self.replica: now + self.ttl})
            pipe.zremrangebyscore(INGEST_MEMBERS_KEY, "-inf", now)
            pipe.zrangebyscore(INGEST_MEMBERS_KEY, now, "+inf")
            *_, members = await pipe.execute()
        return sorted(m.decode() for m in members)

    async def leave(self) -> None:
        await self.redis.zrem(INGEST_MEMBERS_KEY, self.replica)


class Ingest:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.replica = replica_id(settings)
        self.secrets = VaultSecrets(settings, identity_paths(settings))
        self.readers: dict[str, StreamReader] = {}
        self.sources: list[StreamSource] = []
        self.heartbeat = time.monotonic()
        self.stopping = asyncio.Event()
        self._pending: dict[str, Future[None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.reader_config = ReaderConfig(
            read_timeout=settings.ingest_read_timeout_seconds,
            reconnect_min=settings.ingest_reconnect_min_seconds,
            reconnect_max=settings.ingest_reconnect_max_seconds,
            jpeg_quality=settings.ingest_jpeg_quality,
        )

    async def run(self) -> None:
        s = self.settings
        self._loop = asyncio.get_running_loop()
        metrics_server.serve(s.ingest_metrics_host, s.ingest_metrics_port, lambda: self.heartbeat)
        db = await clients.database_pool(s, self.secrets)
        store = clients.object_store(s, self.secrets)
        producer = clients.AcknowledgedProducer(clients.kafka_producer(s, self.secrets.kafka_credentials()))
        redis: Redis = clients.redis_sentinel(s, self.secrets.redis_credentials()).master_for(
            s.redis_master_name
        )
        self.sinks = FrameSinks(db, store, producer)
        membership = Membership(redis, self.replica, s.ingest_member_ttl_seconds)
        log.info("ingest started", extra={"replica": self.replica})
        refreshed = 0.0
        try:
            while not self.stopping.is_set():
                if time.monotonic() - refreshed >= s.ingest_cameras_refresh_seconds:
                    try:
                        self.sources = await self._streams(db)
                        refreshed = time.monotonic()
                    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                        # The cameras it has are still the cameras: read on, re-read next tick.
                        log.warning(
                            "cameras not re-read", extra={"error": f"{type(error).__name__}: {error}"}
                        )
                await self._tick(membership, redis)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), s.ingest_tick_seconds)
        finally:
            await self._shutdown(membership, producer, db)

    async def _tick(self, membership: Membership, redis: Redis) -> None:
        """One round: renew membership, reconcile readers, report health. A fault of Redis skips
        the round (the readers go on until this replica's membership would have expired)."""
        try:
            members = await membership.heartbeat()
        except Exception as error:
            log.warning("membership heartbeat failed", extra={"error": str(error)})
            if time.monotonic() - self.heartbeat > membership.ttl and self.readers:
                # The others dropped this replica and took its cameras: stop reading them here
                # too (a slot read twice meanwhile is still recorded once: frame ids are slots).
                log.warning("membership lost, releasing every camera", extra={"replica": self.replica})
                self._reconcile({})
            return
        self.heartbeat = time.monotonic()
        metrics.REPLICAS.set(len(members))
        by_id = {source.camera_id: source for source in self.sources}
        mine = assigned(self.replica, by_id, members)
        self._reconcile({camera: by_id[camera] for camera in mine})
        try:
            await self._report(redis)
        except Exception as error:
            log.warning("health report failed", extra={"error": str(error)})

    async def _streams(self, db: asyncpg.Pool) -> list[StreamSource]:
        rows = await db.fetch(CAMERAS_SQL, MAX_STREAMS)
        return [
            StreamSource(r["id"], r["stream_url"], r["stream_secret"], float(r["sample_fps"])) for r in rows
        ]

    def _reconcile(self, wanted: dict[str, StreamSource]) -> None:
        for camera, reader in list(self.readers.items()):
            if wanted.get(camera) != reader.source:
                reader.stop()
                del self.readers[camera]
                metrics.forget(camera)
                log.info("reader released", extra={"camera_id": camera, "replica": self.replica})
        for camera, source in wanted.items():
            if camera not in self.readers:
                reader = StreamReader(source, self.reader_config, self._credentials, self._deliver)
                self.readers[camera] = reader
                reader.start()
                log.info("reader started", extra={"camera_id": camera, "replica": self.replica})
        metrics.CAMERAS.set(len(self.readers))

    def _credentials(self, path: str) -> tuple[str, str]:
        """A stream's login from Vault, read at each (re)connect (a rotated password applies at
        the next reconnect). Called from a reader's thread."""
        values = self.secrets.read(path)
        return str(values["username"]), str(values["password"])

    def _deliver(self, sampled: SampledFrame) -> bool:
        """From a reader's thread: record the frame on the event loop, unless the camera's
        previous frame is still being recorded (then this sample is dropped: False)."""
        pending = self._pending.get(sampled.camera_id)
        if pending is not None and not pending.done():
            return False
        assert self._loop is not None
        self._pending[sampled.camera_id] = asyncio.run_coroutine_threadsafe(self._record(sampled), self._loop)
        return True

    async def _record(self, sampled: SampledFrame) -> None:
        camera = sampled.camera_id
        frame_id = frame_id_for(camera, stream_frame_key(sampled.slot_start_ms))
        captured_at = _utc(sampled.decoded_at)
        try:
            incoming = IncomingFrame(camera, frame_id, sampled.jpeg, sampled.frame, captured_at)
            accepted = await accept_frame(self.sinks, incoming)
        except Exception as error:
            metrics.FRAMES_SAMPLED.labels(camera, "failed").inc()
            log.warning(
                "frame not recorded", extra={"camera_id": camera, "error": f"{type(error).__name__}: {error}"}
            )
            return
        metrics.FRAMES_SAMPLED.labels(camera, "replayed" if accepted.replayed else "recorded").inc()
        reader = self.readers.get(camera)
        if reader is not None:
            reader.recorded.add(sampled.decoded_at)
            reader.last_frame_at = sampled.decoded_at

    async def _report(self, redis: Redis) -> None:
        now = time.time()
        offline_after = self.settings.stream_offline_after_seconds
        async with redis.pipeline(transaction=True) as pipe:
            for camera, reader in self.readers.items():
                rate = reader.recorded.rate(now, reader.started_at)
                state = classify(
                    now,
                    reader.last_frame_at,
                    reader.started_at,
                    rate,
                    reader.source.sample_fps,
                    offline_after,
                )
                metrics.set_state(camera, state)
                report = HealthReport(state, rate, reader.last_frame_at, now, self.replica)
                pipe.hset(stream_health_key(camera), mapping=report.to_redis())  # type: ignore[arg-type]
                # Kept a while past the point the API stops trusting it (offline_after).
                pipe.expire(stream_health_key(camera), int(offline_after * 6))
            await pipe.execute()

    async def _shutdown(
        self, membership: Membership, producer: clients.AcknowledgedProducer, db: asyncpg.Pool
    ) -> None:
        for reader in self.readers.values():
            reader.stop()
        try:
            await membership.leave()  # the others take this replica's cameras at their next tick
        except Exception as error:
            log.warning("leaving the membership failed", extra={"error": str(error)})
        deadline = time.monotonic() + self.settings.ingest_read_timeout_seconds + 1
        for reader in self.readers.values():
            await asyncio.to_thread(reader.join, max(0.0, deadline - time.monotonic()))
        pending = [asyncio.wrap_future(f) for f in self._pending.values() if not f.done()]
        if pending:
            await asyncio.wait(pending, timeout=10)
        producer.close()
        await db.close()
        log.info("ingest stopped", extra={"replica": self.replica})


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
