"""The Timescale switch: one setting decides which storage path the migrations take."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import Connection, text

TimescaleMode = Literal["auto", "on", "off"]


class TimescaleUnavailableError(RuntimeError):
    """ITS_TIMESCALE=on was asked of a server that cannot load the extension."""


def timescale_available(connection: Connection) -> bool:
    row = connection.execute(
        text("SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'")
    ).scalar_one()
    return bool(row)


def resolve_timescale(connection: Connection, mode: TimescaleMode) -> bool:
    """Decide the path before any DDL runs, so a wrong setting changes nothing."""
    if mode == "off":
        return False
    available = timescale_available(connection)
    if mode == "on" and not available:
        raise TimescaleUnavailableError(
            "ITS_TIMESCALE=on, but this PostgreSQL server has no timescaledb extension "
            "(pg_available_extensions has no 'timescaledb'); set ITS_TIMESCALE=off or auto "
            "to use the plain PostgreSQL path"
        )
    return available
