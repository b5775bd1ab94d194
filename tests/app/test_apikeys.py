"""API keys: a presented key verifies against its hashed record and nothing else does."""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.common.apikeys import (
    ApiCredentials,
    ApiKeyRecord,
    KeyRejectedError,
    KeySet,
    dump_records,
    generate_key,
    new_pepper,
    parse,
)

PEPPER = new_pepper()
DAY = timedelta(days=1)


def key_set(*records: ApiKeyRecord, pepper: str = PEPPER) -> KeySet:
    return KeySet.from_vault(dump_records(records), pepper)


def test_a_generated_key_verifies_as_its_record() -> None:
    presented, record = generate_key("cam-a", "camera", ["local-cam-1"], DAY, pepper=PEPPER)
    assert presented.startswith("its_cam-a_")
    verified = key_set(record).verify(presented)
    assert verified == record
    assert verified.role == "camera" and verified.cameras == ("local-cam-1",)
    assert verified.expires_at.tzinfo is not None


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda key: key[:-1] + ("A" if key[-1] != "A" else "B"), "invalid API key"),  # wrong secret
        (lambda key: key.replace("its_op_", "its_nobody_"), "invalid API key"),  # unknown id
        (lambda key: key.replace("its_", "xx_", 1), "malformed"),
        (lambda key: "its_op_", "malformed"),  # no secret
        (lambda key: "its_Op!_secret", "malformed"),  # not an id
        (lambda key: key + "x" * 200, "malformed"),  # an absurd secret is not hashed
        (lambda key: "", "malformed"),
    ],
)
def test_anything_but_the_key_is_refused(tamper: Callable[[str], str], reason: str) -> None:
    presented, record = generate_key("op", "operator", [], DAY, pepper=PEPPER)
    keys = key_set(record)
    with pytest.raises(KeyRejectedError, match=reason):
        keys.verify(tamper(presented))


def test_the_same_key_under_another_pepper_is_refused() -> None:
    presented, record = generate_key("op", "operator", [], DAY, pepper=PEPPER)
    with pytest.raises(KeyRejectedError, match="invalid API key"):
        key_set(record, pepper=new_pepper()).verify(presented)


def test_an_expired_key_is_refused_as_expired() -> None:
    issued = datetime(2026, 1, 1, tzinfo=UTC)
    presented, record = generate_key("old", "viewer", [], timedelta(hours=1), pepper=PEPPER, now=issued)
    keys = key_set(record)
    assert keys.verify(presented, now=issued + timedelta(minutes=59)) == record
    with pytest.raises(KeyRejectedError, match="expired"):
        keys.verify(presented, now=issued + timedelta(hours=1))
    with pytest.raises(KeyRejectedError, match="expired"):
        keys.verify(presented)  # today


def test_unknown_ids_and_wrong_secrets_take_the_same_constant_time_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both compute the HMAC and compare it with hmac.compare_digest against a digest of the
    same length: whether an id exists is not visible in the timing."""
    presented, record = generate_key("op", "operator", [], DAY, pepper=PEPPER)
    keys = key_set(record)
    compared: list[tuple[str, str]] = []
    original = hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        compared.append((a, b))
        return original(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)  # the module apikeys calls through
    secret = presented.split("_", 2)[2]
    for attempt in (f"its_op_{secret}x", f"its_nobody_{secret}"):
        with pytest.raises(KeyRejectedError, match="invalid API key"):
            keys.verify(attempt)
    assert len(compared) == 2
    assert all(len(a) == len(b) == 64 for a, b in compared)
    keys.verify(presented)
    assert len(compared) == 3 and compared[2][0] == compared[2][1] == record.hash


def test_vault_holds_no_plaintext_key() -> None:
    presented, record = generate_key("op", "operator", [], DAY, pepper=PEPPER)
    stored = dump_records([record])
    secret = presented.split("_", 2)[2]
    assert secret not in stored and presented not in stored
    assert PEPPER not in stored
    (entry,) = json.loads(stored)
    assert set(entry) == {"id", "role", "expires_at", "cameras", "hash"}
    assert entry["hash"] == hmac.new(PEPPER.encode(), secret.encode(), "sha256").hexdigest()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"role": "camera", "cameras": ()}, "bound to no camera"),
        ({"role": "viewer", "cameras": ("local-cam-1",)}, "may not be bound"),
        ({"role": "camera", "cameras": ("Not A Camera",)}, "not a camera id"),
        ({"role": "admin"}, "role"),
        ({"expires_at": datetime(2030, 1, 1)}, "timezone"),  # naive: the point of the case
        ({"id": "has_underscore"}, "id"),
        ({"hash": "not-hex"}, "hash"),
    ],
)
def test_a_malformed_record_is_refused(fields: dict[str, object], message: str) -> None:
    base: dict[str, object] = {
        "id": "k",
        "role": "operator",
        "expires_at": datetime(2030, 1, 1, tzinfo=UTC),
        "cameras": (),
        "hash": "0" * 64,
    }
    with pytest.raises(ValidationError, match=message):
        ApiKeyRecord.model_validate({**base, **fields})


def test_a_key_set_refuses_duplicate_ids_and_an_empty_pepper() -> None:
    _, first = generate_key("op", "operator", [], DAY, pepper=PEPPER)
    _, second = generate_key("op", "viewer", [], DAY, pepper=PEPPER)
    with pytest.raises(ValueError, match="share an id"):
        KeySet.from_vault(dump_records([first, second]), PEPPER)
    with pytest.raises(ValueError, match="pepper"):
        KeySet.from_vault(dump_records([first]), "")


def test_parse_splits_id_and_secret_at_the_first_underscores() -> None:
    assert parse("its_local-cam-1_abc_def-ghi") == ("local-cam-1", "abc_def-ghi")
    assert parse("its_local-cam-1") is None


def test_credentials_file_is_written_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "api-credentials.json"
    credentials = ApiCredentials(operator="its_op_x", viewer="its_v_y", cameras={"local-cam-1": "its_c_z"})
    credentials.write(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert ApiCredentials.load(path) == credentials
