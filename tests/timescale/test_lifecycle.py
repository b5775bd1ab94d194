"""The data lifecycle the migrations declare, run on a real TimescaleDB engine by the policy
jobs themselves: chunks past the compression age compress and read back unchanged; the
retention jobs drop exactly the chunks past the declared ages and nothing newer."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import asyncpg

from infra.facts.timeseries import timeseries
from tests.timescale.engine import TimescaleEngine, close, connect, insert_detections
from tests.timescale.generator import generate

D, C = timeseries().detections, timeseries().vehicle_counts_1m
T = TypeVar("T")


def with_connection(dsn: str, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    async def run() -> T:
        connection = await connect(dsn)
        try:
            return await work(connection)
        finally:
            await close(connection)

    return asyncio.run(run())


async def job_id(connection: asyncpg.Connection, proc: str, hypertable: str) -> int:
    found = await connection.fetchval(
        "SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = $1 AND hypertable_name = $2",
        proc,
        hypertable,
    )
    assert isinstance(found, int), f"no {proc} job on {hypertable}"
    return found


async def run_job(connection: asyncpg.Connection, job: int) -> None:
    await connection.execute(f"CALL run_job({job})")


async def chunks(connection: asyncpg.Connection, hypertable: str) -> dict[str, dict[str, Any]]:
    rows = await connection.fetch(
        """SELECT chunk_name, range_start, range_end, is_compressed
           FROM timescaledb_information.chunks WHERE hypertable_name = $1""",
        hypertable,
    )
    return {row["chunk_name"]: dict(row) for row in rows}


async def at_hours_ago(connection: asyncpg.Connection, prefix: str, hours_ago: list[float]) -> list[Any]:
    """Generated detections moved to start at each of `hours_ago` before the server's now()."""
    now = await connection.fetchval("SELECT now()")
    assert isinstance(now, datetime)
    rows: list[Any] = []
    for n, hours in enumerate(hours_ago):
        start = (now - timedelta(hours=hours)).replace(second=0, microsecond=0)
        batch = generate(seed=n, start=start, hours=1, cameras=3, camera_prefix=f"{prefix}-{n}").rows
        rows.extend(batch)
    await insert_detections(connection, rows)
    return rows


def test_chunks_past_the_compression_age_compress_and_read_back_identical(migrated: TimescaleEngine) -> None:
    async def work(connection: asyncpg.Connection) -> None:
        compress_after = await connection.fetchval("SELECT $1::text::interval", D.compress_after)
        # Three days old (past the compression age) and two hours old (inside it).
        await at_hours_ago(connection, "compress", [72, 2])
        select = (
            "SELECT * FROM detections WHERE camera_id LIKE 'compress-%'"
            " ORDER BY ts, camera_id, frame_id, x1, y1"
        )
        before = [tuple(row) for row in await connection.fetch(select)]
        assert len(before) > 1_000
        now = await connection.fetchval("SELECT now()")

        await run_job(connection, await job_id(connection, "policy_compression", "detections"))

        after = await chunks(connection, "detections")
        old = [c for c in after.values() if c["range_end"] <= now - compress_after]
        young = [c for c in after.values() if c["range_end"] > now - compress_after]
        assert old and young
        assert all(c["is_compressed"] for c in old), old
        assert not any(c["is_compressed"] for c in young), young
        # Really compressed: the rows live in the compressed chunk, segmented by camera.
        stats = await connection.fetchrow(
            "SELECT count(*) AS n, sum(after_compression_total_bytes) AS bytes"
            " FROM chunk_compression_stats('detections') WHERE compression_status = 'Compressed'"
        )
        assert stats is not None and stats["n"] == len(old) and stats["bytes"] > 0
        assert [tuple(row) for row in await connection.fetch(select)] == before
        # The continuous aggregate still counts the compressed rows.
        await connection.execute("CALL refresh_continuous_aggregate('vehicle_counts_1m', NULL, NULL)")
        counted = await connection.fetchval(
            "SELECT sum(vehicles) FROM vehicle_counts_1m WHERE camera_id LIKE 'compress-%'"
        )
        assert counted == len(before)

    with_connection(migrated.dsn, work)


def test_retention_drops_exactly_the_chunks_past_the_declared_age(migrated: TimescaleEngine) -> None:
    async def work(connection: asyncpg.Connection) -> None:
        keep_detections = await connection.fetchval("SELECT $1::text::interval", D.retention)
        keep_counts = await connection.fetchval("SELECT $1::text::interval", C.retention)
        # Around both ages, including a chunk that straddles the detections cut-off.
        days = [45, 40, 25, 10, 8, 7.5, 7, 6.5, 6, 1]
        rows = await at_hours_ago(connection, "retain", [24 * d for d in days])
        await connection.execute("CALL refresh_continuous_aggregate('vehicle_counts_1m', NULL, NULL)")
        materialized = await connection.fetchval(
            "SELECT format('%I.%I', materialization_hypertable_schema, materialization_hypertable_name)"
            " FROM timescaledb_information.continuous_aggregates WHERE view_name = 'vehicle_counts_1m'"
        )
        count_chunks_name = materialized.split(".")[1]
        detections_before = await chunks(connection, "detections")
        counts_before = await chunks(connection, count_chunks_name)
        now = await connection.fetchval("SELECT now()")

        await run_job(connection, await job_id(connection, "policy_retention", "detections"))
        await run_job(connection, await job_id(connection, "policy_retention", "vehicle_counts_1m"))

        for before, kept_for, hypertable in (
            (detections_before, keep_detections, "detections"),
            (counts_before, keep_counts, count_chunks_name),
        ):
            cutoff = now - kept_for
            expired = {name for name, c in before.items() if c["range_end"] <= cutoff}
            newer = {name for name, c in before.items() if c["range_end"] > cutoff}
            assert expired and newer, (hypertable, before)
            assert set(await chunks(connection, hypertable)) == newer, hypertable

        # Row for row: every detection in a kept chunk is still there, none from a dropped one.
        kept_ranges = [
            (c["range_start"], c["range_end"]) for c in (await chunks(connection, "detections")).values()
        ]
        expected = sum(1 for row in rows if any(start <= row[0] < end for start, end in kept_ranges))
        assert 0 < expected < len(rows)
        remaining = await connection.fetchval(
            "SELECT count(*) FROM detections WHERE camera_id LIKE 'retain-%'"
        )
        assert remaining == expected
        assert await connection.fetchval(
            "SELECT min(ts) FROM detections WHERE camera_id LIKE 'retain-%'"
        ) > now - keep_detections - timedelta(days=1)
        # Counts outlive detections: the minutes 25 days back are still counted.
        counted = await connection.fetchval(
            "SELECT count(*) FROM vehicle_counts_1m WHERE camera_id LIKE 'retain-%' AND bucket < $1",
            now - keep_detections - timedelta(days=1),
        )
        assert counted > 0
        oldest = await connection.fetchval(
            "SELECT min(bucket) FROM vehicle_counts_1m WHERE camera_id LIKE 'retain-%'"
        )
        assert oldest > now - keep_counts - timedelta(days=10)  # one count chunk at most past the age

    with_connection(migrated.dsn, work)
