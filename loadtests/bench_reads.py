"""Benchmark: GET detections and GET counts with millions of detections in the table, on the
plain path (the local platform, through the API) and on the Timescale engine (the same SQL).

`python -m loadtests.bench_reads [--rows N] [--cameras K] [--concurrency C] [--requests R]
[--timescale-rows M]` against the running platform (`make up`), under the heavy lock.

1. Plain path: the platform's admin registers K cameras of this run's own and generates N
   detections for them over the last 23 hours in bulk (INSERT ... SELECT generate_series, in
   statements of a million rows; the plain path's statement trigger keeps vehicle_counts_1m as
   it does for the worker's COPY), then ANALYZE. R GETs of each route from C concurrent
   clients, through the API, each a 15-minute window (the dashboards' window, limit 100 as
   loadtests/locustfile.py asks) ending at a random minute of the generated span, with viewer
   keys of the run's own (loadtests/run_keys.py), so no key nears its limit. Then EXPLAIN
   (ANALYZE) of each route's SQL, read from app/api/routes (not retyped), with the same
   parameters, showing the index and the partitions it used. The run's rows are deleted after.
2. Timescale engine (tools/timescale/server.mjs, TimescaleDB 2.23 on PostgreSQL 17 in WASM):
   migrated with ITS_TIMESCALE=on as tests/timescale does, then loaded with M rows of the same
   shape in batches of 1,000 (INSERT ... SELECT FROM unnest, the only bulk load the engine
   survives), the continuous aggregate refreshed, and the same SQL timed R times on ONE
   connection (the engine serves one at a time: its concurrency is 1, said in the output), with
   its EXPLAIN (ANALYZE). It holds fewer rows than the platform; the output says how many.

Prints each p50/p95/p99 and the plans. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from app.api.routes import counts as counts_route
from app.api.routes import detections as detections_route
from infra.local.config import LocalPlatformConfig
from infra.local.platform import Platform
from infra.local.stacks import App, Postgres
from loadtests.route_sql import statement
from loadtests.run_keys import run_keys
from tests.timescale.conftest import run_migrate
from tests.timescale.engine import TimescaleEngine, close, connect, insert_detections

CLASSES = ("car", "truck", "bus", "motorcycle", "bicycle")
SPAN = timedelta(hours=23)  # inside the plain path's partitions (yesterday onwards)
WINDOW = timedelta(minutes=15)
LIMIT = 100
GENERATE_CHUNK = 1_000_000
# Generated server-side: K cameras round-robin, timestamps spread evenly over the span.
GENERATE = """
INSERT INTO detections (ts, camera_id, frame_id, class, confidence, x1, y1, x2, y2)
SELECT $1::timestamptz + (n::double precision / $3) * $4::interval,
       $5::text || '-' || lpad((n % $6)::text, 3, '0'),
       md5(n::text)::uuid,
       ($7::text[])[1 + n % 5],
       0.3 + (n % 70) / 100.0,
       n % 600, n % 300, n % 600 + 40, n % 300 + 30
FROM generate_series($2::bigint, $2::bigint + $8 - 1) AS n
"""


def quantiles(samples: list[float]) -> str:
    q = statistics.quantiles(samples, n=100, method="inclusive")
    return f"p50 {q[49] * 1000:.1f} ms, p95 {q[94] * 1000:.1f} ms, p99 {q[98] * 1000:.1f} ms"


def windows(start: datetime, count: int, seed: int) -> list[tuple[datetime, datetime]]:
    rng = random.Random(seed)
    minutes = int((SPAN - WINDOW).total_seconds() // 60)
    ends = [start + WINDOW + timedelta(minutes=rng.randrange(minutes)) for _ in range(count)]
    return [(end - WINDOW, end) for end in ends]


async def generate(dsn: str, prefix: str, cameras: int, rows: int, start: datetime) -> float:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.executemany(
            "INSERT INTO cameras (id, name) VALUES ($1, 'reads benchmark')",
            [(f"{prefix}-{n:03d}",) for n in range(cameras)],
        )
        started = time.perf_counter()
        for offset in range(0, rows, GENERATE_CHUNK):
            size = min(GENERATE_CHUNK, rows - offset)
            await conn.execute(
                GENERATE, start, offset, rows, SPAN, prefix, cameras, list(CLASSES), size, timeout=3600
            )
        await conn.execute("ANALYZE detections")
        await conn.execute("ANALYZE vehicle_counts_1m")
        return time.perf_counter() - started
    finally:
        await conn.close()


async def remove(dsn: str, prefix: str, cameras: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        ids = [f"{prefix}-{n:03d}" for n in range(cameras)]
        await conn.execute("DELETE FROM detections WHERE camera_id = ANY($1)", ids, timeout=3600)
        # The plain path's counts are a table the trigger keeps: removed with the rows.
        await conn.execute("DELETE FROM vehicle_counts_1m WHERE camera_id = ANY($1)", ids)
        await conn.execute("DELETE FROM cameras WHERE id = ANY($1)", ids)
    finally:
        await conn.close()


async def api_route(
    api: httpx.AsyncClient,
    path: str,
    extra: dict[str, str],
    keys: list[str],
    cameras: list[str],
    plan: list[tuple[datetime, datetime]],
    concurrency: int,
) -> list[float]:
    """One route's GETs, each window of `plan` once, from `concurrency` clients."""
    latencies: list[float] = []
    remaining = iter(range(len(plan)))

    async def runner() -> None:
        for number in remaining:
            low, high = plan[number]
            params = {"start": low.isoformat(), "end": high.isoformat(), **extra}
            t0 = time.perf_counter()
            response = await api.get(
                path.format(cameras[number % len(cameras)]),
                params=params,
                headers={"X-API-Key": keys[number % len(keys)]},
            )
            latencies.append(time.perf_counter() - t0)
            if response.status_code != 200:
                raise SystemExit(f"{path}: {response.status_code} {response.text[:200]}")

    await asyncio.gather(*(runner() for _ in range(concurrency)))
    return latencies


async def api_reads(
    api_url: str, keys: list[str], cameras: list[str], start: datetime, requests: int, concurrency: int
) -> dict[str, list[float]]:
    routes = {
        "GET detections": ("/v1/cameras/{}/detections", {"limit": str(LIMIT)}),
        "GET counts": ("/v1/cameras/{}/counts", {}),
    }
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: dict[str, list[float]] = {}
    async with httpx.AsyncClient(base_url=api_url, timeout=60, limits=limits) as api:
        for seed, (name, (path, extra)) in enumerate(routes.items()):
            plan = windows(start, requests, seed)
            latencies[name] = await api_route(api, path, extra, keys, cameras, plan, concurrency)
    return latencies


def route_queries() -> dict[str, tuple[str, Callable[[str, datetime, datetime], tuple[object, ...]]]]:
    """Each route's SQL, read from its module, and its parameters in the route's order."""
    detections = statement(detections_route.list_detections, "SELECT")
    counts = statement(counts_route.per_minute_counts, "SELECT")
    return {
        "GET detections": (detections, lambda camera, low, high: (camera, low, high, LIMIT)),
        "GET counts": (counts, lambda camera, low, high: (camera, low, high)),
    }


async def explain(conn: asyncpg.Connection, camera: str, start: datetime) -> None:
    low, high = windows(start, 1, seed=99)[0]
    for name, (sql, params) in route_queries().items():
        plan = await conn.fetch(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) {sql}", *params(camera, low, high))
        print(f"EXPLAIN (ANALYZE) {name}:")
        for row in plan:
            print(f"    {row[0]}")


async def sql_reads(
    run: Callable[[str, tuple[object, ...]], Awaitable[object]],
    cameras: list[str],
    start: datetime,
    requests: int,
) -> dict[str, list[float]]:
    latencies: dict[str, list[float]] = {}
    for seed, (name, (sql, params)) in enumerate(route_queries().items()):
        latencies[name] = []
        for number, (low, high) in enumerate(windows(start, requests, seed)):
            t0 = time.perf_counter()
            await run(sql, params(cameras[number % len(cameras)], low, high))
            latencies[name].append(time.perf_counter() - t0)
    return latencies


async def timescale(rows: int, cameras: int, requests: int, start: datetime) -> tuple[int, float]:
    with TimescaleEngine() as engine:
        migrated = await asyncio.to_thread(run_migrate, engine.dsn, "on")
        if migrated.returncode != 0:
            raise SystemExit(f"migrations on the Timescale engine: {migrated.stderr}")
        ids = [f"ts-{n:03d}" for n in range(cameras)]
        step = SPAN / rows
        data = [
            (
                start + n * step,
                ids[n % cameras],
                uuid.uuid4(),
                CLASSES[n % 5],
                0.3 + (n % 70) / 100,
                1.0,
                1.0,
                41.0,
                31.0,
            )
            for n in range(rows)
        ]
        conn = await connect(engine.dsn)
        try:
            loaded = await insert_detections(conn, data)
            await conn.execute("CALL refresh_continuous_aggregate('vehicle_counts_1m', NULL, NULL)")
            await conn.execute("ANALYZE detections")
            held = int(await conn.fetchval("SELECT count(*) FROM detections"))
            chunks = await conn.fetchval("SELECT count(*) FROM show_chunks('detections')")
            print(f"Timescale engine: {held:,} detections in {chunks} chunks, loaded in {loaded:.1f} s")

            async def run(sql: str, params: tuple[object, ...]) -> object:
                return await conn.fetch(sql, *params)

            latencies = await sql_reads(run, ids, start, requests)
            for name, samples in latencies.items():
                print(f"Timescale engine {name} (the route's SQL, concurrency 1): {quantiles(samples)}")
            await explain(conn, ids[0], start)
        finally:
            await close(conn)
    return held, loaded


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--requests", type=int, default=400, help="per route")
    parser.add_argument("--timescale-rows", type=int, default=200_000)
    parser.add_argument("--skip-plain", action="store_true", help="the Timescale engine only")
    args = parser.parse_args(argv)
    if not 1 <= args.cameras <= 100 or args.rows < args.cameras or args.timescale_rows < args.cameras:
        raise SystemExit("--cameras 1..100, and at least one row per camera")
    start = datetime.now(UTC).replace(second=0, microsecond=0) - SPAN
    if not args.skip_plain:
        platform = Platform(LocalPlatformConfig.load(), log=lambda _line: None)
        dsn = platform.stack(Postgres).superuser_dsn("its")
        prefix = f"reads-{uuid.uuid4().hex[:6]}"
        cameras = [f"{prefix}-{n:03d}" for n in range(args.cameras)]
        try:
            took = asyncio.run(generate(dsn, prefix, args.cameras, args.rows, start))
            print(
                f"plain path: {args.rows:,} detections for {args.cameras} cameras generated in {took:.0f} s"
            )
            with run_keys(platform, f"{prefix}-viewer", args.concurrency, "viewer") as keys:
                latencies = asyncio.run(
                    api_reads(
                        platform.stack(App).api_url,
                        list(keys.values()),
                        cameras,
                        start,
                        args.requests,
                        args.concurrency,
                    )
                )
            for name, samples in latencies.items():
                print(
                    f"plain path {name} through the API (concurrency {args.concurrency}): "
                    f"{quantiles(samples)}"
                )

            async def plans() -> None:
                conn = await asyncpg.connect(dsn)
                try:
                    await explain(conn, cameras[0], start)
                finally:
                    await conn.close()

            asyncio.run(plans())
        finally:
            asyncio.run(remove(dsn, prefix, args.cameras))
    asyncio.run(timescale(args.timescale_rows, args.cameras, args.requests, start))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
