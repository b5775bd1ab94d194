"""The real migrations, applied with ITS_TIMESCALE=on through `python -m app.common.migrate`,
build on a real TimescaleDB engine exactly what infrastructure/database/timeseries.yaml
declares; downgrading removes it and upgrading again rebuilds it."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from alembic import command

from app.common.migrate import alembic_config, head_revision
from infra.facts.timeseries import timeseries
from tests.timescale.conftest import run_migrate
from tests.timescale.engine import TimescaleEngine, close, connect

D, C = timeseries().detections, timeseries().vehicle_counts_1m


async def _fetch(dsn: str, sql: str, *args: Any) -> list[dict[str, Any]]:
    connection = await connect(dsn)
    try:
        return [dict(row) for row in await connection.fetch(sql, *args)]
    finally:
        await close(connection)


def fetch(dsn: str, sql: str, *args: Any) -> list[dict[str, Any]]:
    return asyncio.run(_fetch(dsn, sql, *args))


def interval(text: str, dsn: str) -> timedelta:
    """A declared interval as the server reads it ('1 day' -> timedelta(days=1))."""
    value = fetch(dsn, "SELECT $1::text::interval AS v", text)[0]["v"]
    assert isinstance(value, timedelta)
    return value


def jobs(dsn: str) -> list[dict[str, Any]]:
    return fetch(
        dsn,
        """SELECT proc_name, hypertable_name, schedule_interval, config::text AS config,
                  (config->>'compress_after')::interval AS compress_after,
                  (config->>'drop_after')::interval AS drop_after,
                  (config->>'start_offset')::interval AS start_offset,
                  (config->>'end_offset')::interval AS end_offset
           FROM timescaledb_information.jobs WHERE hypertable_name IS NOT NULL
           ORDER BY proc_name, hypertable_name""",
    )


def test_the_engine_is_timescaledb_and_the_migrations_created_the_extension(
    migrated: TimescaleEngine,
) -> None:
    assert migrated.postgres_version.startswith("17.")
    assert migrated.timescaledb_version.startswith("2.")
    rows = fetch(migrated.dsn, "SELECT extname FROM pg_extension WHERE extname = 'timescaledb'")
    assert rows == [{"extname": "timescaledb"}]
    assert fetch(migrated.dsn, "SELECT version_num FROM alembic_version") == [
        {"version_num": head_revision()}
    ]


def test_detections_is_a_hypertable_with_the_declared_chunk_interval(migrated: TimescaleEngine) -> None:
    dsn = migrated.dsn
    hypertables = fetch(
        dsn,
        "SELECT hypertable_name, compression_enabled FROM timescaledb_information.hypertables"
        " WHERE hypertable_schema = 'public'",
    )
    assert hypertables == [{"hypertable_name": "detections", "compression_enabled": True}]
    dimensions = fetch(
        dsn,
        "SELECT column_name, dimension_type, time_interval FROM timescaledb_information.dimensions"
        " WHERE hypertable_name = 'detections'",
    )
    assert dimensions == [
        {"column_name": "ts", "dimension_type": "Time", "time_interval": interval(D.chunk_interval, dsn)}
    ]
    indexes = fetch(dsn, "SELECT indexname FROM pg_indexes WHERE tablename = 'detections' ORDER BY 1")
    assert {"indexname": "detections_camera_ts_idx"} in indexes


def test_compression_segments_by_camera_and_orders_by_time(migrated: TimescaleEngine) -> None:
    settings = fetch(
        migrated.dsn,
        """SELECT attname, segmentby_column_index, orderby_column_index, orderby_asc
           FROM timescaledb_information.compression_settings
           WHERE hypertable_name = 'detections' ORDER BY attname""",
    )
    assert settings == [
        {
            "attname": "camera_id",
            "segmentby_column_index": 1,
            "orderby_column_index": None,
            "orderby_asc": None,
        },
        {"attname": "ts", "segmentby_column_index": None, "orderby_column_index": 1, "orderby_asc": False},
    ]


def test_vehicle_counts_1m_is_a_real_time_continuous_aggregate_of_detections(
    migrated: TimescaleEngine,
) -> None:
    dsn = migrated.dsn
    caggs = fetch(
        dsn,
        """SELECT view_name, hypertable_name, materialized_only, finalized, view_definition
           FROM timescaledb_information.continuous_aggregates""",
    )
    assert len(caggs) == 1
    cagg = caggs[0]
    assert (cagg["view_name"], cagg["hypertable_name"]) == ("vehicle_counts_1m", "detections")
    assert cagg["materialized_only"] is False and cagg["finalized"] is True
    assert "time_bucket" in cagg["view_definition"] and "count(*)" in cagg["view_definition"]
    columns = fetch(
        dsn,
        """SELECT column_name, data_type FROM information_schema.columns
           WHERE table_name = 'vehicle_counts_1m' ORDER BY ordinal_position""",
    )
    assert [(c["column_name"], c["data_type"]) for c in columns] == [
        ("bucket", "timestamp with time zone"),
        ("camera_id", "text"),
        ("class", "text"),
        ("vehicles", "bigint"),
    ]


def test_policies_carry_the_declared_intervals(migrated: TimescaleEngine) -> None:
    dsn = migrated.dsn
    found = {(j["proc_name"], j["hypertable_name"]): j for j in jobs(dsn)}
    assert set(found) == {
        ("policy_compression", "detections"),
        ("policy_retention", "detections"),
        ("policy_retention", "vehicle_counts_1m"),
        ("policy_refresh_continuous_aggregate", "vehicle_counts_1m"),
    }
    assert found["policy_compression", "detections"]["compress_after"] == interval(D.compress_after, dsn)
    assert found["policy_retention", "detections"]["drop_after"] == interval(D.retention, dsn)
    assert found["policy_retention", "vehicle_counts_1m"]["drop_after"] == interval(C.retention, dsn)
    refresh = found["policy_refresh_continuous_aggregate", "vehicle_counts_1m"]
    assert refresh["start_offset"] == interval(C.refresh_start_offset, dsn)
    assert refresh["end_offset"] == interval(C.refresh_end_offset, dsn)
    assert refresh["schedule_interval"] == interval(C.refresh_schedule, dsn)


def test_migrating_again_is_a_no_op(migrated: TimescaleEngine) -> None:
    before = jobs(migrated.dsn)
    result = run_migrate(migrated.dsn, "on")
    assert result.returncode == 0, result.stderr
    assert jobs(migrated.dsn) == before


def test_downgrade_removes_the_timescale_schema_and_upgrade_rebuilds_it(migrated: TimescaleEngine) -> None:
    dsn = migrated.dsn
    tables = """SELECT count(*) AS n FROM pg_class
                WHERE relname IN ('detections', 'vehicle_counts_1m', 'cameras', 'frames', 'users', 'roles')"""
    command.downgrade(alembic_config(dsn, "on"), "base")
    assert fetch(dsn, tables) == [{"n": 0}]
    assert fetch(
        dsn, "SELECT count(*) AS n FROM timescaledb_information.jobs WHERE hypertable_name IS NOT NULL"
    ) == [{"n": 0}]
    result = run_migrate(dsn, "on")
    assert result.returncode == 0, result.stderr
    assert fetch(dsn, tables) == [{"n": 6}]
    assert len(jobs(dsn)) == 4
