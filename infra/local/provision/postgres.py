"""The application role and database, then the schema through the one migration entry point."""

from __future__ import annotations

import psycopg
from psycopg import sql

from app.common import migrate
from infra.local.config import HOST, LocalPlatformConfig
from infra.local.secrets import PlatformSecrets


def superuser_dsn(cfg: LocalPlatformConfig, secrets: PlatformSecrets, dbname: str = "postgres") -> str:
    # Through HAProxy: always the current primary, whichever member that is.
    return (
        f"postgresql://postgres:{secrets['postgres_superuser']}@{HOST}:{cfg.ports.haproxy_primary}/{dbname}"
    )


def provision(cfg: LocalPlatformConfig, secrets: PlatformSecrets) -> str:
    with psycopg.connect(superuser_dsn(cfg, secrets), autocommit=True) as conn:
        role = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'its_app'").fetchone()
        statement = (
            "ALTER ROLE its_app WITH LOGIN PASSWORD {}" if role else "CREATE ROLE its_app LOGIN PASSWORD {}"
        )
        conn.execute(sql.SQL(statement).format(sql.Literal(secrets["postgres_app"])))
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = 'its'").fetchone():
            conn.execute("CREATE DATABASE its OWNER its_app")
    app_url = f"postgresql://its_app:{secrets['postgres_app']}@{HOST}:{cfg.ports.haproxy_primary}/its"
    migrate.upgrade(app_url, "auto")
    with psycopg.connect(superuser_dsn(cfg, secrets, "its")) as conn:
        version = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return f"schema at revision {version[0] if version else '?'}"
