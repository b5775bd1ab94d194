"""Time the migrations and the load of the fixed detection set on each engine.

    python -m tests.timescale.bench                      # TimescaleDB engine only
    python -m tests.timescale.bench --plain-dsn DSN      # and a plain PostgreSQL server

DSN is a superuser DSN of any database on the server (`make up` prints how to reach it); the
bench creates a scratch database there, applies the plain path, loads, compares the counts
with TimescaleDB's and drops the database. Each engine gets a fresh, empty database.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from tests.timescale.conftest import run_migrate
from tests.timescale.engine import TimescaleEngine, close, connect, insert_detections
from tests.timescale.generator import DetectionSet, generate

SCRATCH = "its_timescale_bench"
COUNTS = "SELECT bucket, camera_id, class, vehicles FROM vehicle_counts_1m ORDER BY 1, 2, 3"


def migrate(dsn: str, timescale: str) -> float:
    started = time.perf_counter()
    result = run_migrate(dsn, timescale)
    if result.returncode != 0:
        raise SystemExit(f"migrate failed ({timescale}): {result.stderr}")
    return time.perf_counter() - started


Rows = list[tuple[object, ...]]


async def load(dsn: str, detections: DetectionSet, refresh: bool) -> tuple[float, float, Rows]:
    connection = await connect(dsn)
    try:
        loaded = await insert_detections(connection, detections.rows)
        started = time.perf_counter()
        if refresh:
            await connection.execute("CALL refresh_continuous_aggregate('vehicle_counts_1m', NULL, NULL)")
        refreshed = time.perf_counter() - started
        return loaded, refreshed, [tuple(row) for row in await connection.fetch(COUNTS)]
    finally:
        await close(connection)


async def execute(dsn: str, sql: str) -> None:
    connection = await connect(dsn)
    try:
        await connection.execute(sql)
    finally:
        await close(connection)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--plain-dsn", help="superuser DSN of a PostgreSQL server without TimescaleDB")
    args = parser.parse_args(argv)
    detections = generate()
    print(
        f"set: {len(detections.rows):,} detections, {len(detections.cameras)} cameras, "
        f"{(detections.end - detections.start).total_seconds() / 3600:.0f} h, "
        f"{len(detections.expected_counts()):,} camera-class-minutes"
    )
    started = time.perf_counter()
    with TimescaleEngine() as engine:
        versions = f"PostgreSQL {engine.postgres_version}, TimescaleDB {engine.timescaledb_version}"
        print(f"timescale engine ({versions})")
        print(f"  start:             {time.perf_counter() - started:6.2f} s")
        print(f"  apply migrations:  {migrate(engine.dsn, 'on'):6.2f} s")
        loaded, refreshed, timescale = asyncio.run(load(engine.dsn, detections, refresh=True))
        print(f"  load the set:      {loaded:6.2f} s ({len(detections.rows) / loaded:,.0f} rows/s)")
        print(f"  refresh aggregate: {refreshed:6.2f} s")
    if args.plain_dsn:
        server = args.plain_dsn.rsplit("/", 1)[0]
        asyncio.run(execute(f"{server}/postgres", f"DROP DATABASE IF EXISTS {SCRATCH} WITH (FORCE)"))
        asyncio.run(execute(f"{server}/postgres", f"CREATE DATABASE {SCRATCH}"))
        try:
            dsn = f"{server}/{SCRATCH}"
            print("plain PostgreSQL")
            print(f"  apply migrations:  {migrate(dsn, 'off'):6.2f} s")
            loaded, _, plain = asyncio.run(load(dsn, detections, refresh=False))
            print(f"  load the set:      {loaded:6.2f} s ({len(detections.rows) / loaded:,.0f} rows/s)")
        finally:
            asyncio.run(execute(f"{server}/postgres", f"DROP DATABASE IF EXISTS {SCRATCH} WITH (FORCE)"))
        same = plain == timescale
        print(f"counts identical row for row: {same} ({len(plain):,} plain, {len(timescale):,} timescale)")
        return 0 if same else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
