"""Core schema: cameras, users and roles, frames, detections and per-minute vehicle counts.

One schema, two storage paths chosen by the Timescale switch (ITS_TIMESCALE):
- Timescale: detections is a hypertable (compressed after a day, dropped after 7 days) and
  vehicle_counts_1m a continuous aggregate over it (kept 30 days).
- Plain PostgreSQL: detections is range-partitioned by day and vehicle_counts_1m a table
  kept up to date by a statement trigger on detections; its_maintain() creates and drops
  partitions. Both give the same rows for the same detections (tests/timescale).

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

from infra.facts.timeseries import timeseries

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

T = timeseries()

CORE = """
CREATE TABLE roles (
    name        text PRIMARY KEY,
    description text NOT NULL
);
INSERT INTO roles (name, description) VALUES
    ('operator', 'registers cameras and manages the platform'),
    ('camera',   'uploads frames for its cameras'),
    ('viewer',   'reads detections and counts');

CREATE TABLE users (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username   text NOT NULL UNIQUE,
    role       text NOT NULL REFERENCES roles (name),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cameras (
    id                   text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    name                 text NOT NULL,
    location             text,
    latitude             double precision CHECK (latitude BETWEEN -90 AND 90),
    longitude            double precision CHECK (longitude BETWEEN -180 AND 180),
    congestion_threshold integer NOT NULL DEFAULT 20 CHECK (congestion_threshold > 0),
    created_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE frames (
    id              uuid PRIMARY KEY,
    camera_id       text NOT NULL REFERENCES cameras (id),
    captured_at     timestamptz NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    object_key      text NOT NULL,
    content_type    text NOT NULL,
    size_bytes      integer NOT NULL CHECK (size_bytes > 0),
    processed_at    timestamptz,
    detection_count integer
);
CREATE INDEX frames_camera_captured_idx ON frames (camera_id, captured_at DESC);
CREATE INDEX frames_unprocessed_idx ON frames (received_at) WHERE processed_at IS NULL;
"""

DETECTIONS_COLUMNS = """
    ts         timestamptz NOT NULL,
    camera_id  text NOT NULL,
    frame_id   uuid NOT NULL,
    class      text NOT NULL,
    confidence real NOT NULL CHECK (confidence BETWEEN 0 AND 1),
    x1 real NOT NULL, y1 real NOT NULL, x2 real NOT NULL, y2 real NOT NULL
"""

COUNTS_SELECT = """
SELECT {bucket_fn} AS bucket, camera_id, class, count(*)::bigint AS vehicles
FROM {source}
GROUP BY 1, 2, 3
"""


def _timescale() -> None:
    d, c = T.detections, T.vehicle_counts_1m
    op.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    op.execute(f"CREATE TABLE detections ({DETECTIONS_COLUMNS})")
    op.execute(f"SELECT create_hypertable('detections', by_range('ts', INTERVAL '{d.chunk_interval}'))")
    op.execute("CREATE INDEX detections_camera_ts_idx ON detections (camera_id, ts DESC)")
    op.execute(
        "ALTER TABLE detections SET (timescaledb.compress,"
        " timescaledb.compress_segmentby = 'camera_id', timescaledb.compress_orderby = 'ts DESC')"
    )
    op.execute(f"SELECT add_compression_policy('detections', INTERVAL '{d.compress_after}')")
    op.execute(f"SELECT add_retention_policy('detections', INTERVAL '{d.retention}')")
    select = COUNTS_SELECT.format(bucket_fn=f"time_bucket(INTERVAL '{c.bucket}', ts)", source="detections")
    op.execute(
        "CREATE MATERIALIZED VIEW vehicle_counts_1m"
        " WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS"
        f" {select} WITH NO DATA"
    )
    op.execute(
        "SELECT add_continuous_aggregate_policy('vehicle_counts_1m',"
        f" start_offset => INTERVAL '{c.refresh_start_offset}',"
        f" end_offset => INTERVAL '{c.refresh_end_offset}',"
        f" schedule_interval => INTERVAL '{c.refresh_schedule}')"
    )
    op.execute(f"SELECT add_retention_policy('vehicle_counts_1m', INTERVAL '{c.retention}')")


def _plain() -> None:
    d, c = T.detections, T.vehicle_counts_1m
    op.execute(f"CREATE TABLE detections ({DETECTIONS_COLUMNS}) PARTITION BY RANGE (ts)")
    op.execute("CREATE TABLE detections_default PARTITION OF detections DEFAULT")
    op.execute("CREATE INDEX detections_camera_ts_idx ON detections (camera_id, ts DESC)")
    op.execute(
        """
        CREATE TABLE vehicle_counts_1m (
            bucket    timestamptz NOT NULL,
            camera_id text NOT NULL,
            class     text NOT NULL,
            vehicles  bigint NOT NULL,
            PRIMARY KEY (bucket, camera_id, class)
        ) PARTITION BY RANGE (bucket)
        """
    )
    op.execute("CREATE TABLE vehicle_counts_1m_default PARTITION OF vehicle_counts_1m DEFAULT")
    # The same rollup the continuous aggregate computes, kept by a statement trigger so that
    # COPY, INSERT ... SELECT and single inserts all count once per detection row.
    select = COUNTS_SELECT.format(
        bucket_fn=f"date_bin(INTERVAL '{c.bucket}', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00')",
        source="new_rows",
    )
    op.execute(
        f"""
        CREATE FUNCTION its_rollup_vehicle_counts() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO vehicle_counts_1m AS v (bucket, camera_id, class, vehicles)
            {select}
            ON CONFLICT (bucket, camera_id, class)
            DO UPDATE SET vehicles = v.vehicles + EXCLUDED.vehicles;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER detections_rollup AFTER INSERT ON detections"
        " REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT"
        " EXECUTE FUNCTION its_rollup_vehicle_counts()"
    )
    # Partition upkeep: daily partitions from yesterday to a week ahead; partitions wholly
    # older than the retention are dropped, as Timescale's retention policy drops chunks.
    op.execute(
        f"""
        CREATE FUNCTION its_maintain(at timestamptz DEFAULT now()) RETURNS void
        LANGUAGE plpgsql AS $$
        DECLARE
            tbl record;
            day date;
            part record;
        BEGIN
            FOR tbl IN SELECT * FROM (VALUES
                ('detections', INTERVAL '{d.retention}'),
                ('vehicle_counts_1m', INTERVAL '{c.retention}')) AS t(name, keep)
            LOOP
                FOR day IN SELECT generate_series((at - INTERVAL '1 day')::date,
                                                  (at + INTERVAL '7 days')::date, '1 day')::date
                LOOP
                    IF to_regclass(format('%s_%s', tbl.name, to_char(day, 'YYYYMMDD'))) IS NULL THEN
                        EXECUTE format(
                            'CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                            format('%s_%s', tbl.name, to_char(day, 'YYYYMMDD')), tbl.name,
                            day::timestamptz, (day + 1)::timestamptz);
                    END IF;
                END LOOP;
                FOR part IN
                    SELECT c.relname FROM pg_inherits i
                    JOIN pg_class c ON c.oid = i.inhrelid
                    JOIN pg_class p ON p.oid = i.inhparent
                    WHERE p.relname = tbl.name AND c.relname ~ '_[0-9]{{8}}$'
                      AND to_date(right(c.relname, 8), 'YYYYMMDD') + 1 <= (at - tbl.keep)::date
                LOOP
                    EXECUTE format('DROP TABLE %I', part.relname);
                END LOOP;
            END LOOP;
            DELETE FROM frames WHERE captured_at < at - INTERVAL '{T.frames.retention}';
        END $$
        """
    )
    op.execute("SELECT its_maintain()")


def _execute_script(script: str) -> None:
    # The asyncpg driver prepares each statement, so a script goes one statement at a time.
    for statement in script.split(";\n"):
        if statement.strip():
            op.execute(statement)


def upgrade(use_timescale: bool) -> None:
    _execute_script(CORE)
    if use_timescale:
        _timescale()
    else:
        _plain()


def downgrade(use_timescale: bool) -> None:
    # IF EXISTS does not cover an object of the other kind: DROP MATERIALIZED VIEW on the
    # plain path's table (or DROP TABLE on the continuous aggregate) is an error.
    if use_timescale:
        op.execute("DROP MATERIALIZED VIEW IF EXISTS vehicle_counts_1m CASCADE")
    else:
        op.execute("DROP TABLE IF EXISTS vehicle_counts_1m CASCADE")
    op.execute("DROP TABLE IF EXISTS detections CASCADE")
    op.execute("DROP FUNCTION IF EXISTS its_maintain(timestamptz)")
    op.execute("DROP FUNCTION IF EXISTS its_rollup_vehicle_counts()")
    op.execute("DROP TABLE IF EXISTS frames, cameras, users, roles CASCADE")
