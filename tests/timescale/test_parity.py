"""Parity: one generated set of detections, loaded into the platform's PostgreSQL (plain path:
partitions and the trigger-kept rollup) and into TimescaleDB (hypertable and continuous
aggregate), gives the same per-minute counts per camera and class, row for row, and both
equal the counts computed from the set itself."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import asyncpg
import pytest

from tests.conftest import RunningPlatform
from tests.timescale.conftest import FIGURES
from tests.timescale.engine import TimescaleEngine, close, connect, insert_detections
from tests.timescale.generator import DetectionSet, generate

pytestmark = pytest.mark.platform

Counts = list[tuple[datetime, str, str, int]]
COUNTS = """SELECT bucket, camera_id, class, vehicles FROM {source}
            WHERE camera_id = ANY($1::text[]) ORDER BY bucket, camera_id, class"""


async def counts(connection: asyncpg.Connection, source: str, cameras: list[str]) -> Counts:
    rows = await connection.fetch(COUNTS.format(source=source), cameras)
    return [(row["bucket"], row["camera_id"], row["class"], row["vehicles"]) for row in rows]


async def delete_set(connection: asyncpg.Connection, cameras: list[str]) -> None:
    await connection.execute("DELETE FROM detections WHERE camera_id = ANY($1::text[])", cameras)
    await connection.execute("DELETE FROM vehicle_counts_1m WHERE camera_id = ANY($1::text[])", cameras)


async def plain_counts(dsn: str, detections: DetectionSet) -> Counts:
    connection = await connect(dsn)
    try:
        await delete_set(connection, detections.cameras)  # a rerun after an interrupted one
        try:
            FIGURES[
                "plain: load the set (INSERT ... unnest, 1,000 rows a statement)"
            ] = await insert_detections(connection, detections.rows)
            loaded = await connection.fetchval(
                "SELECT count(*) FROM detections WHERE camera_id = ANY($1::text[])", detections.cameras
            )
            assert loaded == len(detections.rows)
            return await counts(connection, "vehicle_counts_1m", detections.cameras)
        finally:
            await delete_set(connection, detections.cameras)
    finally:
        await close(connection)


async def timescale_counts(dsn: str, detections: DetectionSet) -> tuple[Counts, Counts, int]:
    connection = await connect(dsn)
    try:
        FIGURES[
            "timescale: load the set (INSERT ... unnest, 1,000 rows a statement)"
        ] = await insert_detections(connection, detections.rows)
        materialized = await connection.fetchval(
            "SELECT format('%I.%I', materialization_hypertable_schema, materialization_hypertable_name)"
            " FROM timescaledb_information.continuous_aggregates WHERE view_name = 'vehicle_counts_1m'"
        )
        before_refresh = len(await counts(connection, materialized, detections.cameras))
        started = time.perf_counter()
        await connection.execute(
            "CALL refresh_continuous_aggregate('vehicle_counts_1m', $1::timestamptz, $2::timestamptz)",
            detections.start,
            detections.end,
        )
        FIGURES["timescale: refresh the continuous aggregate"] = time.perf_counter() - started
        return (
            await counts(connection, "vehicle_counts_1m", detections.cameras),
            await counts(connection, materialized, detections.cameras),
            before_refresh,
        )
    finally:
        await close(connection)


def test_per_minute_counts_are_identical_on_both_paths(
    local_platform: RunningPlatform, migrated: TimescaleEngine
) -> None:
    detections = generate()
    assert len(detections.rows) > 100_000 and len(detections.cameras) >= 20
    assert (detections.end - detections.start).total_seconds() >= 6 * 3600
    expected = sorted(
        (bucket, camera, cls, n) for (bucket, camera, cls), n in detections.expected_counts().items()
    )
    assert {row[2] for row in expected} == {"car", "truck", "bus", "motorcycle", "bicycle"}

    plain = asyncio.run(plain_counts(local_platform.database_dsn, detections))
    timescale, materialized, before_refresh = asyncio.run(timescale_counts(migrated.dsn, detections))

    assert before_refresh == 0  # the counts below come from the refresh, not from elsewhere
    assert len(plain) == len(expected)
    assert plain == expected
    assert materialized == expected
    assert timescale == plain
    assert sum(row[3] for row in plain) == len(detections.rows)
