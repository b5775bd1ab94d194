"""Every bad input gets a 4xx that names the reason, and nothing accepted before is lost."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from PIL import Image

from app.common.settings import Settings
from infra.facts.redis import redis_settings
from tests.conftest import RunningPlatform

pytestmark = pytest.mark.platform


@pytest.fixture(scope="module")
def api(local_platform: RunningPlatform) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=local_platform.api_url, timeout=15) as client:
        yield client


@pytest.fixture(scope="module")
def camera(api: httpx.Client, local_platform: RunningPlatform) -> str:
    camera_id = f"bad-{uuid.uuid4().hex[:6]}"
    response = api.post(
        "/v1/cameras",
        json={"id": camera_id, "name": "bad input"},
        headers={"X-API-Key": local_platform.operator_key},
    )
    assert response.status_code == 201
    return camera_id


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 10, 10)).save(buffer, "PNG")
    return buffer.getvalue()


def _post(
    api: httpx.Client, camera: str, key: str | None, body: bytes, name: str = "f.jpg"
) -> httpx.Response:
    headers = {"X-API-Key": key} if key else {}
    return api.post(
        f"/v1/cameras/{camera}/frames", files={"file": (name, body, "image/jpeg")}, headers=headers
    )


def test_each_bad_input_gets_its_4xx_with_the_reason(
    api: httpx.Client, camera: str, local_platform: RunningPlatform
) -> None:
    cam_key, viewer = local_platform.camera_key, local_platform.viewer_key
    cases = {
        "not an image": (_post(api, camera, cam_key, b"GIF89a not really"), 415, "not a JPEG or PNG"),
        "corrupt jpeg": (
            _post(api, camera, cam_key, b"\xff\xd8\xff" + b"\x00" * 100),
            415,
            "does not decode",
        ),
        "too large": (
            _post(api, camera, cam_key, b"\xff\xd8\xff" + b"0" * (5 * 1024 * 1024 + 10)),
            413,
            "larger than",
        ),
        "empty": (_post(api, camera, cam_key, b""), 422, "empty"),
        "unknown camera": (_post(api, "no-such-camera", cam_key, _png(), "f.png"), 404, "unknown camera"),
        "missing key": (_post(api, camera, None, _png()), 401, "missing X-API-Key"),
        "bad key": (_post(api, camera, "not-a-key", _png()), 401, "unknown API key"),
        "wrong role": (_post(api, camera, viewer, _png()), 403, "may not"),
        "bad camera id": (
            api.post(
                "/v1/cameras",
                json={"id": "Bad Id!", "name": "x"},
                headers={"X-API-Key": local_platform.operator_key},
            ),
            422,
            "id",
        ),
        "duplicate camera": (
            api.post(
                "/v1/cameras",
                json={"id": camera, "name": "x"},
                headers={"X-API-Key": local_platform.operator_key},
            ),
            409,
            "already registered",
        ),
        "end before start": (
            api.get(
                f"/v1/cameras/{camera}/detections",
                params={"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
                headers={"X-API-Key": viewer},
            ),
            422,
            "end must be after start",
        ),
        "range too long": (
            api.get(
                f"/v1/cameras/{camera}/counts",
                params={"start": "2026-01-01T00:00:00Z", "end": "2026-01-20T00:00:00Z"},
                headers={"X-API-Key": viewer},
            ),
            422,
            "at most 7 days",
        ),
        "unparsable time": (
            api.get(
                f"/v1/cameras/{camera}/detections",
                params={"start": "yesterday", "end": "now"},
                headers={"X-API-Key": viewer},
            ),
            422,
            "start",
        ),
        "no time zone": (
            api.get(
                f"/v1/cameras/{camera}/detections",
                params={"start": "2026-01-01T00:00:00", "end": "2026-01-01T01:00:00"},
                headers={"X-API-Key": viewer},
            ),
            422,
            "time zone",
        ),
    }
    for name, (response, status, reason) in cases.items():
        assert response.status_code == status, f"{name}: {response.status_code} {response.text}"
        assert reason in response.json()["detail"], f"{name}: {response.json()}"


def test_bad_input_loses_nothing_accepted_before(
    api: httpx.Client, camera: str, local_platform: RunningPlatform
) -> None:
    accepted = _post(api, camera, local_platform.camera_key, _png(), "ok.png")
    assert accepted.status_code == 202
    for _ in range(5):
        assert _post(api, camera, local_platform.camera_key, b"junk").status_code == 415
    with psycopg.connect(local_platform.database_dsn) as conn:
        row = conn.execute(
            "SELECT camera_id FROM frames WHERE id = %s", (accepted.json()["frame_id"],)
        ).fetchone()
    assert row == (camera,)


@pytest.fixture
def clear_rate_limits(local_platform: RunningPlatform) -> Iterator[None]:
    """The limiter's windows are per key and last a minute: leave none behind for later tests."""
    yield
    master = local_platform.sentinel().master_for(redis_settings().master_name)  # type: ignore[no-untyped-call]
    for key in master.scan_iter("its:ratelimit:*"):
        master.delete(key)


@pytest.mark.usefixtures("clear_rate_limits")
def test_rate_limit_answers_429_with_retry_after(
    api: httpx.Client, camera: str, local_platform: RunningPlatform
) -> None:
    limit = Settings().rate_limit_per_minute  # the local platform runs the app's default
    headers = {"X-API-Key": local_platform.viewer_key}
    # Twice the limit: a minute boundary inside the loop resets the window once at most.
    for sent in range(2 * limit + 2):  # noqa: B007 - read after the loop
        response = api.get(f"/v1/cameras/{camera}", headers=headers)
        if response.status_code == 429:
            break
        assert response.status_code == 200, response.text
    else:
        pytest.fail(f"the limiter never refused after {2 * limit + 2} requests")
    assert sent >= limit // 2, f"refused after only {sent} requests"
    assert "rate limit" in response.json()["detail"]
    assert 0 < int(response.headers["Retry-After"]) <= 60
