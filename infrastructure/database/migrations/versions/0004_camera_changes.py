"""Camera changes: an operator changes a registered camera through the API (PATCH
/v1/cameras/{id}: its stream, sample rate, name, threshold), and retires one by disabling it.
A camera is never deleted (frames and detections keep it); a disabled one is neither read by
the ingest nor watched by CameraSilent (infrastructure/prometheus/postgres-exporter-queries.yaml).

The API role gets UPDATE on cameras (roles.yaml); a database migrated before this revision gets
it here. The primary key stays its own: frames reference it, so changing an id fails there.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

from infra.facts.database import database_roles

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade(use_timescale: bool) -> None:
    op.execute("ALTER TABLE cameras ADD COLUMN enabled boolean NOT NULL DEFAULT true")
    api = database_roles().api
    op.execute(f"GRANT {', '.join(database_roles().roles[api].tables['cameras'])} ON cameras TO {api}")


def downgrade(use_timescale: bool) -> None:
    op.execute(f"REVOKE UPDATE ON cameras FROM {database_roles().api}")
    op.execute("ALTER TABLE cameras DROP COLUMN enabled")
