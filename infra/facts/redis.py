"""infrastructure/redis/redis.yaml: Redis and Sentinel settings and the ACL users, for the local
platform and the redis-ha release alike (the Pulumi program injects them into the release's
values)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from functools import cache
from typing import Literal

from pydantic import Field, field_validator, model_validator

from infra.facts._load import Strict, load
from infra.facts.paths import INFRASTRUCTURE

REDIS_FILE = INFRASTRUCTURE / "redis" / "redis.yaml"

Where = Literal["redis", "sentinel"]
# Identities the platform itself relies on: replication (masteruser), the Sentinels (auth-user,
# sentinel-user), the exporter and the platform's own admin.
PLATFORM_USERS = ("admin", "replica", "sentinel", "exporter")
# Rule words that set a user's state or password: the platform sets those, never the file.
_FORBIDDEN_RULE = re.compile(r"^(on|off|nopass|reset|resetpass|[<>#!].*)$")
_USER_NAME = re.compile(r"^[a-z][a-z0-9-]*$")


class SentinelSettings(Strict):
    count: int = Field(ge=3)
    quorum: int = Field(ge=2)
    # Sentinel's own directive names, passed through as written.
    config: dict[str, int]


class RedisUser(Strict):
    description: str = Field(min_length=1)
    # ACL rules on the Redis servers / on the Sentinels; None: the identity does not exist there.
    redis: str | None = None
    sentinel: str | None = None

    @field_validator("redis", "sentinel")
    @classmethod
    def _rules_only(cls, value: str | None) -> str | None:
        if value is not None:
            bad = [word for word in value.split() if _FORBIDDEN_RULE.match(word)]
            if bad or not value.split():
                raise ValueError(f"rules only, no state or password words: {bad or 'empty'}")
        return value

    def rules(self, where: Where) -> list[str] | None:
        text = self.redis if where == "redis" else self.sentinel
        return None if text is None else text.split()


class RedisFile(Strict):
    master_name: str = Field(pattern=r"^[a-z][a-z0-9-]+$")
    replicas: int = Field(ge=1)
    # redis.conf directives, passed through as written.
    config: dict[str, str | int]
    sentinel: SentinelSettings
    users: dict[str, RedisUser]

    @model_validator(mode="after")
    def _users(self) -> RedisFile:
        problems = [f"users.{name}: not a user name" for name in self.users if not _USER_NAME.match(name)]
        if "default" in self.users:
            problems.append("users.default: the default user is off; it is not configurable")
        for name in PLATFORM_USERS:
            if name not in self.users:
                problems.append(f"users.{name}: required (the platform relies on it)")
        needed: tuple[tuple[str, Where], ...] = (
            ("replica", "redis"),
            ("sentinel", "redis"),
            ("sentinel", "sentinel"),
        )
        for name, where in needed:
            if name in self.users and self.users[name].rules(where) is None:
                problems.append(f"users.{name}.{where}: required")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def users_on(self, where: Where) -> list[str]:
        """The identities that exist on the Redis servers or on the Sentinels."""
        return [name for name, user in self.users.items() if user.rules(where) is not None]

    def acl_file(
        self, where: Where, passwords: Mapping[str, str], default_password: str | None = None
    ) -> str:
        """The ACL file of a Redis server or a Sentinel: every identity that exists there, on,
        with the SHA-256 of its password and its rules; the default user off. (A chart whose own
        scripts log in as the default user passes its password: it is then on, with every
        right. An ACL file that leaves `default` out turns it on WITHOUT a password, whatever
        requirepass says: verified on Redis 7.0.)"""
        if default_password is None and where == "sentinel":
            lines = ["user default off"]
        elif default_password is None:
            # Off: no connection can be the default user (each one gets NOAUTH until it logs in
            # as another). Its rights serve only Redis itself: 7.0 replays a MULTI/EXEC of the
            # append-only file as the default user and refuses it if that user may not run the
            # commands, so a restart would drop every transaction the app wrote (verified on
            # 7.0.15: the worker's latest counts gone, "NOPERM ... AOF-loading-client" logged).
            # The AOF holds only what authenticated users were allowed to write.
            lines = ["user default reset off ~* &* +@all"]
        else:
            lines = [f"user default reset on #{password_hash(default_password)} ~* &* +@all"]
        for name in self.users_on(where):
            rules = self.users[name].rules(where) or []
            secret = f"#{password_hash(passwords[name])}"
            lines.append(" ".join(["user", name, "reset", "on", secret, *rules]))
        return "\n".join(lines) + "\n"


def password_hash(password: str) -> str:
    """Redis's stored form of a password (ACL `#<sha256 hex>`): the ACL file holds no password."""
    return hashlib.sha256(password.encode()).hexdigest()


def secret_name(user: str) -> str:
    """The key of a Redis identity's generated password in the local platform's secrets."""
    return "redis_" + user.replace("-", "_")


@cache
def redis_settings() -> RedisFile:
    return load(RedisFile, REDIS_FILE)
