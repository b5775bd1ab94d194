"""Camera streams: the URL a camera serves (without credentials), the Vault reference of its
credentials and the rate the ingest samples it at, each bounded in SQL as in the API's model
(app/common/cameras.py), so no writer can store a password in clear or an unbounded rate.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

from infra.facts.database import database_roles

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COLUMNS = """
ALTER TABLE cameras
    ADD COLUMN stream_url text
        CONSTRAINT cameras_stream_url_check CHECK (
            length(stream_url) <= 2048
            AND stream_url ~ '^(rtsps?|https?)://[^/@[:space:]]+(/[^[:space:]]*)?$'
        ),
    ADD COLUMN stream_secret text
        CONSTRAINT cameras_stream_secret_check CHECK (
            stream_secret IS NULL
            OR (stream_secret ~ '^its/streams/[a-z0-9][a-z0-9_-]{0,62}$' AND stream_url IS NOT NULL)
        ),
    ADD COLUMN sample_fps real NOT NULL DEFAULT 1
        CONSTRAINT cameras_sample_fps_check CHECK (sample_fps BETWEEN 0.1 AND 10)
"""


def upgrade(use_timescale: bool) -> None:
    op.execute(COLUMNS)
    op.execute("CREATE INDEX cameras_streaming ON cameras (id) WHERE stream_url IS NOT NULL")
    # The ingest identity came with this revision: its GRANTs (roles.yaml), as 0002 gives the others.
    ingest = database_roles().ingest
    op.execute(
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ingest}') THEN "
        f"CREATE ROLE {ingest} NOLOGIN; END IF; END $$"
    )
    op.execute(f"GRANT USAGE ON SCHEMA public TO {ingest}")
    for table, privileges in database_roles().roles[ingest].tables.items():
        op.execute(f"GRANT {', '.join(privileges)} ON {table} TO {ingest}")


def downgrade(use_timescale: bool) -> None:
    ingest = database_roles().ingest
    for table in database_roles().roles[ingest].tables:
        op.execute(f"REVOKE ALL ON {table} FROM {ingest}")
    op.execute(f"REVOKE USAGE ON SCHEMA public FROM {ingest}")
    op.execute("DROP INDEX cameras_streaming")
    op.execute(
        "ALTER TABLE cameras DROP COLUMN sample_fps, DROP COLUMN stream_secret, DROP COLUMN stream_url"
    )
