"""Benchmark: the worker's detections write (COPY) against row-by-row INSERT of the same rows.

`python -m loadtests.bench_detections_write [--frames N] [--boxes B]` against the running
platform (`make up`): N frames of a camera of this run's own, B detections each, written into
`detections` (its partitions, indexes and the plain path's counts trigger, as the worker
writes them) over asyncpg, logged in as the worker's own database role through PgBouncer:

1. COPY: `copy_records_to_table` with the worker's columns, one call per batch of frames (the
   worker's batch size), as app.worker.consumer writes a batch;
2. INSERT: one INSERT statement per row, each awaited, the same rows for another set of frames.

Prints rows/s of each and the ratio COPY / INSERT (goal >= 10). The run's rows are deleted
afterwards. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from app.common.settings import Settings
from app.worker.consumer import COLUMNS
from infra.facts.database import role_for
from infra.local.config import LocalPlatformConfig
from infra.local.platform import Platform
from infra.local.stacks import App, Postgres
from infra.local.stacks.app import WORKER_IDENTITY
from infra.local.stacks.postgres import password_secret

CLASSES = ("car", "truck", "bus", "motorcycle", "bicycle")
Row = tuple[Any, ...]


def rows_for(camera: str, frames: list[uuid.UUID], boxes: int, seed: int) -> list[list[Row]]:
    """Each frame's detections, seeded so both methods write the same shape of data."""
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(minutes=30)
    batches = []
    for index, frame in enumerate(frames):
        at = start + timedelta(milliseconds=100 * index)
        batch = []
        for _ in range(boxes):
            x, y = rng.uniform(0, 600), rng.uniform(0, 300)
            batch.append((at, camera, frame, rng.choice(CLASSES), rng.uniform(0.3, 1), x, y, x + 40, y + 30))
        batches.append(batch)
    return batches


async def register(conn: asyncpg.Connection, camera: str, frames: list[uuid.UUID]) -> None:
    await conn.execute("INSERT INTO cameras (id, name) VALUES ($1, 'detections write benchmark')", camera)
    await conn.executemany(
        """INSERT INTO frames (id, camera_id, captured_at, object_key, content_type, size_bytes)
           VALUES ($1, $2, now(), $3, 'image/jpeg', 1)""",
        [(frame, camera, f"frames/{camera}/{frame}.jpg") for frame in frames],
    )


async def copy_rate(conn: asyncpg.Connection, batches: list[list[Row]], per_batch: int) -> float:
    started = time.perf_counter()
    for start in range(0, len(batches), per_batch):
        records = [row for frame in batches[start : start + per_batch] for row in frame]
        async with conn.transaction():
            await conn.copy_records_to_table("detections", records=records, columns=COLUMNS)
    return sum(len(b) for b in batches) / (time.perf_counter() - started)


async def insert_rate(conn: asyncpg.Connection, batches: list[list[Row]], per_batch: int) -> float:
    # The worker's own column names, no input: nothing to inject.
    columns, values = ", ".join(COLUMNS), ", ".join(f"${n}" for n in range(1, len(COLUMNS) + 1))
    statement = f"INSERT INTO detections ({columns}) VALUES ({values})"  # noqa: S608
    started = time.perf_counter()
    for start in range(0, len(batches), per_batch):
        async with conn.transaction():
            for frame in batches[start : start + per_batch]:
                for row in frame:
                    await conn.execute(statement, *row)
    return sum(len(b) for b in batches) / (time.perf_counter() - started)


async def run(platform: Platform, frames: int, boxes: int) -> tuple[float, float, int]:
    postgres = platform.stack(Postgres)
    admin = await asyncpg.connect(postgres.superuser_dsn("its"))
    env = platform.stack(App).environment(WORKER_IDENTITY)
    role = role_for(WORKER_IDENTITY)
    worker = await asyncpg.connect(
        env["ITS_DATABASE_URL"], password=platform.secrets[password_secret(role)], statement_cache_size=0
    )
    camera = f"writes-{uuid.uuid4().hex[:8]}"
    copied, inserted = [uuid.uuid4() for _ in range(frames)], [uuid.uuid4() for _ in range(frames)]
    per_batch = Settings().worker_batch_size
    try:
        await register(admin, camera, copied + inserted)
        copy = await copy_rate(worker, rows_for(camera, copied, boxes, seed=1), per_batch)
        insert = await insert_rate(worker, rows_for(camera, inserted, boxes, seed=1), per_batch)
        written = await admin.fetchval("SELECT count(*) FROM detections WHERE camera_id = $1", camera)
    finally:
        await admin.execute("DELETE FROM detections WHERE camera_id = $1", camera)
        # The local platform runs the plain path: its counts are a table the trigger keeps.
        await admin.execute("DELETE FROM vehicle_counts_1m WHERE camera_id = $1", camera)
        await admin.execute("DELETE FROM frames WHERE camera_id = $1", camera)
        await admin.execute("DELETE FROM cameras WHERE id = $1", camera)
        await worker.close()
        await admin.close()
    return copy, insert, int(written)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=800)
    parser.add_argument("--boxes", type=int, default=8)
    args = parser.parse_args(argv)
    platform = Platform(LocalPlatformConfig.load(), log=lambda _line: None)
    copy, insert, written = asyncio.run(run(platform, args.frames, args.boxes))
    expected = 2 * args.frames * args.boxes
    if written != expected:
        raise SystemExit(f"wrote {written} detections, expected {expected}")
    batch = Settings().worker_batch_size
    print(f"{args.frames} frames x {args.boxes} detections per method, batches of {batch} frames")
    print(f"COPY (the worker's path): {copy:,.0f} rows/s")
    print(f"row-by-row INSERT: {insert:,.0f} rows/s")
    print(f"ratio COPY / INSERT: {copy / insert:.1f} (goal >= 10)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
