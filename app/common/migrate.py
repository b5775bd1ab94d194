"""Apply the schema: `python -m app.common.migrate [revision]` (default: head).

The one entry point for the local platform, the tests and the cluster's migration Job.
"""

from __future__ import annotations

import argparse
import sys

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from app.common.timescale_switch import TimescaleMode, TimescaleUnavailableError
from infra.facts.paths import INFRASTRUCTURE

ALEMBIC_INI = INFRASTRUCTURE / "database" / "alembic.ini"


def alembic_config(url: str, timescale: TimescaleMode) -> Config:
    config = Config(str(ALEMBIC_INI))
    config.attributes["url"] = sqlalchemy_url(url)
    config.attributes["timescale"] = timescale
    return config


def sqlalchemy_url(url: str) -> str:
    """The libpq-style URL for SQLAlchemy, which picks asyncpg from the driver name.

    SQLAlchemy hands query parameters to asyncpg.connect() as keywords, and asyncpg names
    libpq's `sslmode` `ssl`; every other part of the URL is passed on unchanged.
    """
    url = url.replace("postgresql://", "postgresql+asyncpg://", 1)
    parsed = make_url(url)
    if "sslmode" not in parsed.query:
        return url
    parsed = parsed.difference_update_query(["sslmode"]).update_query_dict({"ssl": parsed.query["sslmode"]})
    return parsed.render_as_string(hide_password=False)


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
