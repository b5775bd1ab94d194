"""Least privilege: each app identity gets only what its queries need (roles.yaml).

The owner of the schema (the role that runs the migrations) keeps every object; the API and the
worker get the table privileges roles.yaml lists. On the plain path the partition keeper and the
per-minute rollup run as the owner (SECURITY DEFINER), so the worker needs no DDL right and no
privilege on vehicle_counts_1m; nobody else may execute them.

The login roles are made by whoever owns the server's roles (the local platform's provisioner,
CloudNativePG's managed roles in a cluster); a server where the migrating role may create roles
(the Timescale test engine) gets NOLOGIN ones here, so the GRANTs always have a grantee.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

from infra.facts.database import database_roles

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

OWNER_FUNCTIONS = ("its_maintain(timestamptz)", "its_rollup_vehicle_counts()")


def _if_function(signature: str, statement: str) -> str:
    return f"DO $$ BEGIN IF to_regprocedure('{signature}') IS NOT NULL THEN {statement}; END IF; END $$"


def upgrade(use_timescale: bool) -> None:
    roles = database_roles()
    for signature in OWNER_FUNCTIONS:
        op.execute(_if_function(signature, f"REVOKE EXECUTE ON FUNCTION {signature} FROM PUBLIC"))
        op.execute(
            _if_function(signature, f"ALTER FUNCTION {signature} SECURITY DEFINER SET search_path = public")
        )
    for name, role in roles.roles.items():
        op.execute(
            f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{name}') THEN "
            f"CREATE ROLE {name} NOLOGIN; END IF; END $$"
        )
        op.execute(f"GRANT USAGE ON SCHEMA public TO {name}")
        for table, privileges in role.tables.items():
            op.execute(f"GRANT {', '.join(privileges)} ON {table} TO {name}")
        for function in role.functions:
            signature = next(s for s in OWNER_FUNCTIONS if s.startswith(f"{function}("))
            op.execute(_if_function(signature, f"GRANT EXECUTE ON FUNCTION {signature} TO {name}"))


def downgrade(use_timescale: bool) -> None:
    roles = database_roles()
    for name, role in roles.roles.items():
        for table in role.tables:
            op.execute(f"REVOKE ALL ON {table} FROM {name}")
        for function in role.functions:
            signature = next(s for s in OWNER_FUNCTIONS if s.startswith(f"{function}("))
            op.execute(_if_function(signature, f"REVOKE EXECUTE ON FUNCTION {signature} FROM {name}"))
        op.execute(f"REVOKE USAGE ON SCHEMA public FROM {name}")
    for signature in OWNER_FUNCTIONS:
        op.execute(_if_function(signature, f"ALTER FUNCTION {signature} SECURITY INVOKER RESET search_path"))
        op.execute(_if_function(signature, f"GRANT EXECUTE ON FUNCTION {signature} TO PUBLIC"))
