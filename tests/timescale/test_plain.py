"""The switch on a server without TimescaleDB (the platform's PostgreSQL), each in a fresh empty
database: ITS_TIMESCALE=on fails at once naming the setting and changes nothing;
ITS_TIMESCALE=off builds the plain path, and downgrading removes it again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from alembic import command

from app.common.migrate import alembic_config, head_revision
from tests.conftest import RunningPlatform
from tests.timescale.conftest import FIGURES, migrate_timed, run_migrate
from tests.timescale.engine import close, connect

pytestmark = pytest.mark.platform

RELATIONS = """SELECT c.relname, c.relkind::text FROM pg_class c
               JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm')
               ORDER BY 1"""


async def _sql(dsn: str, sql: str) -> list[tuple[object, ...]]:
    connection = await connect(dsn)
    try:
        return [tuple(row) for row in await connection.fetch(sql)]
    finally:
        await close(connection)


def sql(dsn: str, statement: str) -> list[tuple[object, ...]]:
    return asyncio.run(_sql(dsn, statement))


@pytest.fixture
def empty_database(local_platform: RunningPlatform, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database on the platform's PostgreSQL; its DSN (superuser)."""
    name = f"its_timescale_{request.node.name[5:40]}".lower()
    server = local_platform.database_dsn.rsplit("/", 1)[0]
    sql(f"{server}/postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    sql(f"{server}/postgres", f"CREATE DATABASE {name}")
    try:
        yield f"{server}/{name}"
    finally:
        sql(f"{server}/postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_timescale_on_without_the_extension_fails_at_once_and_creates_nothing(empty_database: str) -> None:
    assert sql(empty_database, "SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'") == [
        (0,)
    ]
    started = time.perf_counter()
    result = run_migrate(empty_database, "on")
    elapsed = time.perf_counter() - started
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "ITS_TIMESCALE=on" in result.stderr
    assert "Traceback" not in result.stderr
    assert elapsed < 20
    # No DDL ran: no table of the schema, not even Alembic's version table.
    assert sql(empty_database, RELATIONS) == []
    assert sql(empty_database, "SELECT to_regclass('cameras'), to_regclass('alembic_version')") == [
        (None, None)
    ]


def test_timescale_off_builds_the_plain_path_and_downgrade_removes_it(empty_database: str) -> None:
    migrate_timed(empty_database, "off", "plain: apply migrations (python -m app.common.migrate)")
    relations = {str(name): kind for name, kind in sql(empty_database, RELATIONS)}
    # Partitioned detections and rollup table; the partitions its_maintain() created.
    assert relations["detections"] == "p" and relations["vehicle_counts_1m"] == "p"
    assert relations["detections_default"] == "r" and relations["vehicle_counts_1m_default"] == "r"
    assert sum(name.startswith("detections_2") for name in relations) == 9  # yesterday .. a week ahead
    assert sql(empty_database, "SELECT version_num FROM alembic_version") == [(head_revision(),)]

    started = time.perf_counter()
    command.downgrade(alembic_config(empty_database, "off"), "base")
    FIGURES["plain: downgrade to base"] = time.perf_counter() - started
    assert sql(empty_database, RELATIONS) == [("alembic_version", "r")]
    assert sql(empty_database, "SELECT to_regprocedure('its_maintain(timestamptz)')") == [(None,)]
