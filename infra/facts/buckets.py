"""infrastructure/minio/buckets.yaml: object-store buckets by role, and the service users."""

from __future__ import annotations

from functools import cache
from typing import Literal

from pydantic import Field, model_validator

from infra.facts._load import Strict, by_role, load
from infra.facts.paths import INFRASTRUCTURE

BUCKETS_FILE = INFRASTRUCTURE / "minio" / "buckets.yaml"
POLICIES_DIR = INFRASTRUCTURE / "minio" / "policies"


class LifecycleRule(Strict):
    id: str = Field(min_length=1)
    prefix: str = ""
    expiration_days: int | None = Field(default=None, ge=1)
    noncurrent_expiration_days: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _expires_something(self) -> LifecycleRule:
        if self.expiration_days is None and self.noncurrent_expiration_days is None:
            raise ValueError(f"rule {self.id}: needs expiration_days or noncurrent_expiration_days")
        return self


class ObjectLock(Strict):
    mode: Literal["GOVERNANCE", "COMPLIANCE"]
    days: int = Field(ge=1, le=3650)


class Bucket(Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    description: str = Field(min_length=1)
    versioning: bool = False
    lifecycle: list[LifecycleRule] = Field(default_factory=list)
    # Object lock is set when the bucket is made (it cannot be added later) and needs versioning.
    object_lock: ObjectLock | None = None

    @model_validator(mode="after")
    def _lock_needs_versioning(self) -> Bucket:
        if self.object_lock and not self.versioning:
            raise ValueError(f"{self.name}: object_lock needs versioning: true")
        return self


class BucketRoles(Strict):
    frames: Bucket
    models: Bucket
    logs: Bucket
    backups: Bucket


class ServiceUser(Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]{2,63}$")
    policy: str

    @property
    def secret_name(self) -> str:
        """The key of this user's generated secret key in the local platform's secrets."""
        return "minio_" + self.name.replace("-", "_")


class UserRoles(Strict):
    api: ServiceUser
    ingest: ServiceUser
    worker: ServiceUser
    backup: ServiceUser


class BucketsFile(Strict):
    buckets: BucketRoles
    users: UserRoles

    def all(self) -> list[Bucket]:
        return by_role(self.buckets)

    def all_users(self) -> list[ServiceUser]:
        return by_role(self.users)

    @model_validator(mode="after")
    def _policies_exist(self) -> BucketsFile:
        for user in self.all_users():
            if not (POLICIES_DIR / f"{user.policy}.json").is_file():
                raise ValueError(f"users.{user.name}.policy: no policies/{user.policy}.json")
        return self


@cache
def buckets() -> BucketsFile:
    return load(BucketsFile, BUCKETS_FILE)
