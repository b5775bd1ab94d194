"""Benchmark: API ingest against the same three steps done directly, same run, same concurrency.

`python -m loadtests.bench_ingest [--concurrency C] [--requests N] [--keys K]` against the
running platform (`make up`). The platform's worker is stopped for the run and started again
after it, so nothing but ingest competes for the cores.

Direct steps, each N times from C concurrent tasks, with the bytes of one sample frame:
1. MinIO put: the API's object-store client (its own MinIO user, read from Vault as the API
   reads it), `put_object` in a thread as the API calls it, into the frames bucket under a
   camera prefix of this run's own; the objects are removed afterwards.
2. The frames INSERT: the API's own statement (read from app/api/routes/frames.py, not
   retyped), on the API's pool (its database role, its pool size, through PgBouncer), each an
   autocommitted statement as the API runs it, at the server's synchronous_commit (printed);
   the rows are deleted afterwards.
3. Kafka produce, acks=all: `AcknowledgedProducer.send` with the API's producer settings, to a
   topic of this run's own shaped like camera-events (partitions, replication, min.insync from
   infrastructure/kafka/topics.yaml), deleted afterwards. Logged in as the platform's admin: the
   API's Kafka identity may produce to camera-events only, and this never writes there.

The API: N frame POSTs from C concurrent clients. How the API is loaded at this rate without
weakening a check: the per-key limit (rate_limit_per_minute) and authentication stay as they
are; the run makes K camera keys the way the platform makes its keys, each bound to one
camera of its own (loadtests/run_keys.py: hashed records to Vault beside the platform's, the
API restarted to read them, the platform's records restored and the API restarted after). The
cameras are registered through the API with the operator key, and request i posts for camera
i mod K with that camera's key, so no key goes near its limit.

The frames the API accepts are real frames (object, row, camera-event on camera-events): the
worker processes them once it is started again, and the run's cameras stay registered so their
frames and detections keep their camera.

Prints each rate and latency, the slowest direct step, the ratio API / slowest step (goal >=
0.7) and whether the POST p95 is under 50 ms at this concurrency. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import os
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
from confluent_kafka import Producer

from app.common import clients
from app.common import frames as shared_frames
from app.common.contracts import FRAMES_BUCKET, FrameEvent, frame_object_key
from app.common.secrets import VaultSecrets, api_paths
from app.common.settings import Settings
from infra.local.config import LocalPlatformConfig
from infra.local.platform import Platform
from infra.local.stacks import App, Kafka, Minio, Postgres
from infra.local.stacks.app import API_IDENTITY
from loadtests.bench_kafka import APP_PRODUCER, create_topic
from loadtests.route_sql import statement
from loadtests.run_keys import run_keys

SAMPLE = sorted((Path(__file__).resolve().parents[1] / "app" / "worker" / "samples").glob("*.jpg"))[0]
KEY_TTL = timedelta(hours=1)
P95_GOAL_S = 0.050
RATIO_GOAL = 0.7
Step = Callable[[int], Awaitable[None]]


@dataclass(frozen=True)
class Measured:
    name: str
    done: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.done / self.seconds

    def quantile(self, q: int) -> float:
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[q - 1]

    def line(self, unit: str) -> str:
        return (
            f"{self.name}: {self.rate:,.1f} {unit}/s; p50 {self.quantile(50) * 1000:.1f} ms, "
            f"p95 {self.quantile(95) * 1000:.1f} ms, p99 {self.quantile(99) * 1000:.1f} ms"
        )


async def measure(name: str, step: Step, requests: int, concurrency: int) -> Measured:
    """`step(i)` for i in 0..requests-1 from `concurrency` tasks; one warm-up call first (as a
    warm API has its connections), not counted."""
    await step(-1)
    latencies: list[float] = []
    remaining = iter(range(requests))

    async def runner() -> None:
        for number in remaining:
            started = time.perf_counter()
            await step(number)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(runner() for _ in range(concurrency)))
    return Measured(name, requests, time.perf_counter() - started, latencies)


def event_for(camera: str, data: bytes) -> FrameEvent:
    frame_id = uuid.uuid4()
    key = frame_object_key(camera, frame_id, hashlib.sha256(data).hexdigest()[:16], "jpg")
    return FrameEvent(
        frame_id=frame_id,
        camera_id=camera,
        object_key=key,
        captured_at=datetime.now(UTC),
        content_type="image/jpeg",
    )


async def direct_steps(
    platform: Platform, settings: Settings, camera: str, data: bytes, requests: int, concurrency: int
) -> list[Measured]:
    secrets = await asyncio.to_thread(VaultSecrets, settings, api_paths(settings))
    store = clients.object_store(settings, secrets)
    pool = await clients.database_pool(settings, secrets)
    kafka = platform.stack(Kafka)
    admin = kafka.admin()
    topic = create_topic(admin)
    producer = clients.AcknowledgedProducer(Producer({**kafka.client_config(), **APP_PRODUCER}))
    insert = statement(shared_frames._store_once, "INSERT INTO frames")
    value = event_for(camera, data).model_dump_json().encode()

    async def put(_: int) -> None:
        key = event_for(camera, data).object_key
        await asyncio.to_thread(
            store.put_object, FRAMES_BUCKET, key, io.BytesIO(data), len(data), "image/jpeg"
        )

    async def record(_: int) -> None:
        event = event_for(camera, data)
        await pool.fetchval(
            insert, event.frame_id, camera, event.captured_at, event.object_key, event.content_type, len(data)
        )

    async def publish(_: int) -> None:
        await producer.send(topic, camera, value)

    try:
        commit = await pool.fetchval("SHOW synchronous_commit")
        standbys = await pool.fetchval("SHOW synchronous_standby_names")
        print(f"frames INSERT at synchronous_commit={commit}, synchronous_standby_names={standbys!r}")
        return [
            await measure("MinIO put (API's client)", put, requests, concurrency),
            await measure("frames INSERT (API's statement and pool)", record, requests, concurrency),
            await measure("Kafka produce acks=all (AcknowledgedProducer)", publish, requests, concurrency),
        ]
    finally:
        producer.close()
        admin.delete_topics([topic])[topic].result(30)
        await pool.close()


def remove_objects(platform: Platform, camera: str) -> int:
    root = platform.stack(Minio).root_client()
    keys = [
        o.object_name for o in root.list_objects(FRAMES_BUCKET, prefix=f"frames/{camera}/", recursive=True)
    ]
    for key in keys:
        if key is not None:
            root.remove_object(FRAMES_BUCKET, key)
    return len(keys)


async def api_ingest(
    api_url: str, operator: str, keys: dict[str, str], data: bytes, requests: int, concurrency: int
) -> tuple[Measured, Counter[int]]:
    cameras = sorted(keys)
    statuses: Counter[int] = Counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=api_url, timeout=30, limits=limits) as api:
        for camera in cameras:
            response = await api.post(
                "/v1/cameras",
                json={"id": camera, "name": "ingest benchmark"},
                headers={"X-API-Key": operator},
            )
            if response.status_code not in (201, 409):
                raise SystemExit(f"registering {camera}: {response.status_code} {response.text}")

        async def post(number: int) -> None:
            camera = cameras[number % len(cameras)]
            response = await api.post(
                f"/v1/cameras/{camera}/frames",
                files={"file": (SAMPLE.name, data, "image/jpeg")},
                headers={"X-API-Key": keys[camera]},
            )
            if number >= 0:
                statuses[response.status_code] += 1

        measured = await measure("API POST /v1/cameras/{id}/frames", post, requests, concurrency)
    accepted = statuses[202]
    return Measured(measured.name, accepted, measured.seconds, measured.latencies), statuses


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/<pid>/stat, fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cleanup_direct(platform: Platform, camera: str) -> int:
    with psycopg.connect(platform.stack(Postgres).superuser_dsn("its")) as conn:
        conn.execute("DELETE FROM frames WHERE camera_id = %s", (camera,))
        conn.execute("DELETE FROM cameras WHERE id = %s", (camera,))
    return remove_objects(platform, camera)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--requests", type=int, default=600, help="per step and for the API")
    parser.add_argument(
        "--keys", type=int, default=0, help="camera keys of the run (default 4 x concurrency)"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.concurrency <= 256 or not 1 <= args.requests <= 100_000:
        raise SystemExit("--concurrency 1..256 and --requests 1..100000")
    platform = Platform(LocalPlatformConfig.load(), log=lambda _line: None)
    os.environ.update(platform.stack(App).environment(API_IDENTITY))
    settings = Settings()
    run = uuid.uuid4().hex[:8]
    data = SAMPLE.read_bytes()
    direct_camera = f"ingest-direct-{run}"
    key_count = args.keys or 4 * args.concurrency
    with psycopg.connect(platform.stack(Postgres).superuser_dsn("its")) as conn:
        conn.execute(
            "INSERT INTO cameras (id, name) VALUES (%s, 'ingest benchmark, direct steps')", (direct_camera,)
        )
    platform.supervisor.stop("worker")
    try:
        try:
            steps = asyncio.run(
                direct_steps(platform, settings, direct_camera, data, args.requests, args.concurrency)
            )
        finally:
            removed = cleanup_direct(platform, direct_camera)
        with run_keys(platform, f"ingest-{run}", key_count, "camera") as keys:
            operator = platform.secrets.api_credentials().operator
            api_pid = platform.supervisor.pid("api")
            cpu_before = cpu_seconds(api_pid)
            api, statuses = asyncio.run(
                api_ingest(platform.stack(App).api_url, operator, keys, data, args.requests, args.concurrency)
            )
            api_cpu = cpu_seconds(api_pid) - cpu_before
    finally:
        platform.supervisor.start("worker")
    print(f"{args.requests} requests per step, concurrency {args.concurrency}, frame of {len(data):,} bytes")
    print(f"direct steps' objects removed: {removed}; rows and topic deleted")
    for step in steps:
        print(step.line("ops"))
    print(api.line("frames accepted"))
    print(f"API answers: {dict(sorted(statuses.items()))} ({key_count} camera keys, one camera each)")
    print(
        f"API process CPU over its run: {api_cpu:.1f} s for {api.seconds:.1f} s wall "
        f"({api.done / api_cpu:,.1f} frames accepted per CPU-second; camera registrations included)"
    )
    slowest = min(steps, key=lambda step: step.rate)
    ratio = api.rate / slowest.rate
    print(f"slowest direct step: {slowest.name} ({slowest.rate:,.1f}/s)")
    print(
        f"ratio API / slowest step: {ratio:.2f} (goal >= {RATIO_GOAL}): "
        f"{'met' if ratio >= RATIO_GOAL else 'NOT met'}"
    )
    p95 = api.quantile(95)
    print(
        f"POST p95 {p95 * 1000:.1f} ms at concurrency {args.concurrency} "
        f"(goal < {P95_GOAL_S * 1000:.0f} ms): "
        f"{'met' if p95 < P95_GOAL_S else 'NOT met'}"
    )
    print(f"the {statuses[202]} accepted frames are real: the worker (started again) processes them")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
