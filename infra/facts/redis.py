"""infrastructure/redis/redis.yaml: Redis and Sentinel settings, for the local platform and the
redis-ha release alike (the Pulumi program injects them into the release's values)."""

from __future__ import annotations

from functools import cache

from pydantic import Field

from infra.facts._load import Strict, load
from infra.facts.paths import INFRASTRUCTURE

REDIS_FILE = INFRASTRUCTURE / "redis" / "redis.yaml"


class SentinelSettings(Strict):
    count: int = Field(ge=3)
    quorum: int = Field(ge=2)
    # Sentinel's own directive names, passed through as written.
    config: dict[str, int]


class RedisFile(Strict):
    master_name: str = Field(pattern=r"^[a-z][a-z0-9-]+$")
    replicas: int = Field(ge=1)
    # redis.conf directives, passed through as written.
    config: dict[str, str | int]
    sentinel: SentinelSettings


@cache
def redis_settings() -> RedisFile:
    return load(RedisFile, REDIS_FILE)
