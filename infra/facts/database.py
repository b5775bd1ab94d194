"""infrastructure/database/: the time-series intervals live in timeseries.py; this module reads
roles.yaml, the owner of the schema and what each app identity may do."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Literal

from pydantic import Field

from infra.facts._load import Strict, load
from infra.facts.paths import INFRASTRUCTURE

ROLES_FILE = INFRASTRUCTURE / "database" / "roles.yaml"
RoleName = str
Privilege = Literal["SELECT", "INSERT", "UPDATE", "DELETE"]


SqlName = Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,62}$")]


class AppRole(Strict):
    description: str = Field(min_length=1)
    # Names are checked here: the migrations write them into GRANT statements.
    tables: dict[SqlName, list[Privilege]]
    functions: list[SqlName] = Field(default_factory=list)


class Roles(Strict):
    owner: SqlName
    roles: dict[SqlName, AppRole]

    @property
    def api(self) -> RoleName:
        return self._named("its_api")

    @property
    def worker(self) -> RoleName:
        return self._named("its_worker")

    @property
    def ingest(self) -> RoleName:
        return self._named("its_ingest")

    def _named(self, name: str) -> RoleName:
        if name not in self.roles:
            raise KeyError(f"roles.yaml has no role {name!r}")
        return name


def role_for(identity: str) -> str:
    """The database role of an app identity (its-api -> its_api): one name, two spellings."""
    return identity.replace("-", "_")


@cache
def database_roles() -> Roles:
    return load(Roles, ROLES_FILE)
