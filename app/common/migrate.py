"""Apply the schema: `python -m app.common.migrate [revision]` (default: head).

The one entry point for the local platform, the tests and the cluster's migration Job.
"""

from __future__ import annotations

import argparse
import ssl
import sys
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from app.common.timescale_switch import TimescaleMode, TimescaleUnavailableError
from infra.facts.paths import INFRASTRUCTURE

ALEMBIC_INI = INFRASTRUCTURE / "database" / "alembic.ini"


def alembic_config(url: str, timescale: TimescaleMode) -> Config:
    config = Config(str(ALEMBIC_INI))
    sa_url, connect_args = sqlalchemy_url(url)
    config.attributes["url"] = sa_url
    config.attributes["connect_args"] = connect_args
    config.attributes["timescale"] = timescale
    return config


# sslmodes that check the server's certificate against a root certificate (libpq's names).
VERIFYING_MODES = frozenset({"verify-ca", "verify-full"})


def sqlalchemy_url(url: str) -> tuple[str, dict[str, Any]]:
    """The libpq-style URL for SQLAlchemy (which picks asyncpg from the driver name), and the
    keywords for asyncpg.connect() that a URL cannot carry.

    SQLAlchemy hands query parameters to asyncpg.connect() as keywords; asyncpg names libpq's
    `sslmode` `ssl` and has no `sslrootcert` keyword (it reads one only from a DSN of its own).
    So a mode that verifies the server with a root certificate becomes an SSLContext trusting
    exactly that certificate, checking the host name for verify-full (what libpq does); any
    other mode goes on as `ssl=<mode>`. Every other part of the URL is passed on unchanged.
    """
    url = url.replace("postgresql://", "postgresql+asyncpg://", 1)
    parsed = make_url(url)
    if "sslmode" not in parsed.query and "sslrootcert" not in parsed.query:
        return url, {}
    mode = str(parsed.query.get("sslmode", "prefer"))
    rootcert = parsed.query.get("sslrootcert")
    parsed = parsed.difference_update_query(["sslmode", "sslrootcert"])
    if rootcert is None or mode not in VERIFYING_MODES:
        parsed = parsed.update_query_dict({"ssl": mode})
        return parsed.render_as_string(hide_password=False), {}
    return parsed.render_as_string(hide_password=False), {"ssl": verifying_context(str(rootcert), mode)}


def verifying_context(rootcert: str, mode: str) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=rootcert)  # CERT_REQUIRED, this CA only
    context.check_hostname = mode == "verify-full"
    return context


def head_revision() -> str:
    """The newest revision of infrastructure/database/migrations."""
    head = ScriptDirectory.from_config(Config(str(ALEMBIC_INI))).get_current_head()
    if head is None:
        raise RuntimeError(f"{ALEMBIC_INI}: no migrations")
    return head


def upgrade(url: str, timescale: TimescaleMode, revision: str = "head") -> None:
    command.upgrade(alembic_config(url, timescale), revision)


def main(argv: list[str] | None = None) -> int:
    from app.common.settings import Settings

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("revision", nargs="?", default="head")
    parser.add_argument("--url", help="database URL with credentials (default: ITS_DATABASE_URL)")
    args = parser.parse_args(argv)
    settings = Settings()
    try:
        upgrade(args.url or settings.database_url, settings.timescale, args.revision)
    except TimescaleUnavailableError as error:
        print(f"migrate: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
