"""infrastructure/database/recovery.yaml: PostgreSQL's RPO and RTO, and how long backups are kept."""

from __future__ import annotations

from functools import cache

from pydantic import Field, model_validator

from infra.facts._load import Strict, load
from infra.facts.paths import INFRASTRUCTURE

RECOVERY_FILE = INFRASTRUCTURE / "database" / "recovery.yaml"


class Recovery(Strict):
    rpo_minutes: int = Field(ge=1, le=60)
    rto_minutes: int = Field(ge=1)
    retention_days: int = Field(ge=1)
    object_lock_days: int = Field(ge=1)

    @model_validator(mode="after")
    def _lock_within_window(self) -> Recovery:
        # A backup is locked no longer than it is needed: past the window the plugin retires it.
        if self.object_lock_days > self.retention_days:
            raise ValueError("object_lock_days: must be <= retention_days")
        return self

    @property
    def archive_timeout(self) -> str:
        """PostgreSQL's archive_timeout that keeps the RPO."""
        return f"{self.rpo_minutes}min"


@cache
def recovery() -> Recovery:
    return load(Recovery, RECOVERY_FILE)
