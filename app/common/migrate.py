"""Apply the schema: `python -m app.common.migrate [revision]` (default: head).

The one entry point for the local platform, the tests and the cluster's migration Job.
"""

from __future__ import annotations

import argparse
import sys

from alembic import command
from alembic.config import Config

from app.common.paths import INFRASTRUCTURE
from app.common.timescale import TimescaleMode, TimescaleUnavailableError

ALEMBIC_INI = INFRASTRUCTURE / "database" / "alembic.ini"


def alembic_config(url: str, timescale: TimescaleMode) -> Config:
    config = Config(str(ALEMBIC_INI))
    # SQLAlchemy picks asyncpg from the driver name; the URL itself stays libpq-style.
    config.attributes["url"] = url.replace("postgresql://", "postgresql+asyncpg://", 1)
    config.attributes["timescale"] = timescale
    return config


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
