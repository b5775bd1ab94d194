"""Alembic environment: runs every migration over one asyncpg connection.

The database URL and the Timescale switch come from the app settings, so the platform, the
tests and a cluster Job all apply the schema through the same entry point (app.common.migrate).
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.common.timescale_switch import resolve_timescale

config = context.config


def _do_run(connection: Connection) -> None:
    use_timescale = resolve_timescale(connection, config.attributes["timescale"])
    context.configure(connection=connection, target_metadata=None, transactional_ddl=True)
    with context.begin_transaction():
        context.run_migrations(use_timescale=use_timescale)


async def _run() -> None:
    # statement_cache_size=0: PgBouncer in transaction mode and the single-backend Timescale
    # engine both reject prepared statements that outlive one transaction.
    engine = create_async_engine(
        config.attributes["url"],
        connect_args={
            "statement_cache_size": 0,
            "prepared_statement_cache_size": 0,
            # TLS that a URL cannot say to asyncpg (app/common/migrate.py sqlalchemy_url).
            **config.attributes.get("connect_args", {}),
        },
        poolclass=NullPool,
    )
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_do_run)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) mode is not supported: the Timescale switch needs a live server")
asyncio.run(_run())
