"""API keys: the form a caller presents, the record Vault keeps, and how one is checked.

A presented key is `its_<key id>_<secret>`. Vault never holds it: it holds one record per key
(id, role, expiry, the cameras a camera key may post for) with `hash` = HMAC-SHA256(pepper,
secret), and the pepper at a separate path. A copy of the records alone (a backup, a log of a
KV read) therefore lets nobody authenticate, and the check is a keyed hash compared in
constant time, not a dictionary lookup on the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from app.common.cameras import CAMERA_ID_PATTERN

Role = Literal["operator", "viewer", "camera"]
PREFIX = "its"
# No underscore in an id: `_` separates the parts of a presented key.
KEY_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
MAX_SECRET_LENGTH = 128
# Compared against when the id is unknown, so an unknown id and a wrong secret cost the same.
_NO_SUCH_KEY = "0" * 64


class ApiKeyRecord(BaseModel):
    """What Vault stores for one key (its/api/auth, `api_keys`: a JSON list of these)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=KEY_ID_PATTERN)
    role: Role
    expires_at: AwareDatetime
    cameras: tuple[str, ...] = ()
    hash: str = Field(pattern=r"^[0-9a-f]{64}$")

    @model_validator(mode="after")
    def _cameras_only_for_camera_keys(self) -> ApiKeyRecord:
        if self.role == "camera" and not self.cameras:
            raise ValueError(f"camera key {self.id!r} is bound to no camera")
        if self.role != "camera" and self.cameras:
            raise ValueError(f"{self.role} key {self.id!r} may not be bound to cameras")
        for camera in self.cameras:
            if not re.match(CAMERA_ID_PATTERN, camera):
                raise ValueError(f"key {self.id!r}: {camera!r} is not a camera id")
        return self


RECORDS = TypeAdapter(list[ApiKeyRecord])


class KeyRejectedError(Exception):
    """The presented key does not authenticate; `reason` is safe to send to the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def digest(pepper: bytes, secret: str) -> str:
    return hmac.new(pepper, secret.encode(), hashlib.sha256).hexdigest()


def parse(presented: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed presented key, else None."""
    head, _, rest = presented.partition("_")
    key_id, _, secret = rest.partition("_")
    if head != PREFIX or not re.match(KEY_ID_PATTERN, key_id):
        return None
    if not secret or len(secret) > MAX_SECRET_LENGTH:
        return None
    return key_id, secret


@dataclass(frozen=True)
class KeySet:
    """The records by id and the pepper: everything needed to check a presented key."""

    records: Mapping[str, ApiKeyRecord]
    pepper: bytes = field(repr=False)

    @classmethod
    def from_vault(cls, api_keys_json: str, pepper: str) -> KeySet:
        if not pepper:
            raise ValueError("the API key pepper is empty")
        records = RECORDS.validate_json(api_keys_json)
        by_id = {record.id: record for record in records}
        if len(by_id) != len(records):
            raise ValueError("two API key records share an id")
        return cls(by_id, pepper.encode())

    def verify(self, presented: str, now: datetime | None = None) -> ApiKeyRecord:
        parsed = parse(presented)
        if parsed is None:
            raise KeyRejectedError("malformed API key (expected its_<id>_<secret>)")
        key_id, secret = parsed
        record = self.records.get(key_id)
        # The HMAC is computed and compared whether or not the id exists.
        matches = hmac.compare_digest(digest(self.pepper, secret), record.hash if record else _NO_SUCH_KEY)
        if record is None or not matches:
            raise KeyRejectedError("invalid API key")
        if record.expires_at <= (now or datetime.now(UTC)):
            raise KeyRejectedError("API key expired")
        return record


def new_pepper() -> str:
    return secrets.token_hex(32)


def generate_key(
    key_id: str,
    role: Role,
    cameras: Iterable[str],
    ttl: timedelta,
    *,
    pepper: str,
    now: datetime | None = None,
) -> tuple[str, ApiKeyRecord]:
    """A new key: (the presented key, to hand to its holder once; the record, for Vault)."""
    secret = secrets.token_urlsafe(32)
    record = ApiKeyRecord(
        id=key_id,
        role=role,
        expires_at=(now or datetime.now(UTC)) + ttl,
        cameras=tuple(cameras),
        hash=digest(pepper.encode(), secret),
    )
    return f"{PREFIX}_{key_id}_{secret}", record


def dump_records(records: Iterable[ApiKeyRecord]) -> str:
    """The `api_keys` value written to Vault."""
    return json.dumps([r.model_dump(mode="json") for r in records], sort_keys=True)


class ApiCredentials(BaseModel):
    """The presented keys a client of the local platform holds (api-credentials.json)."""

    model_config = ConfigDict(extra="forbid")

    operator: str
    viewer: str
    cameras: dict[str, str]

    @classmethod
    def load(cls, path: Path) -> ApiCredentials:
        return cls.model_validate_json(path.read_text())

    def write(self, path: Path) -> None:
        """Written 0600 from the start: the file is never readable by others, not even briefly."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(self.model_dump_json(indent=2))
        tmp.replace(path)
