"""Every bad input gets a 4xx that names the reason, and nothing accepted before is lost.

Hostile input against the running API: uploads refused before they are read, undecodable and
oversized images, keys used beyond their rights, an expired key, a replay with other bytes.
None of it may produce a 5xx.
"""

from __future__ import annotations

import io
import json
import select
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest
from PIL import Image

from app.common.apikeys import generate_key
from app.common.settings import Settings
from infra.facts.buckets import buckets
from infra.facts.redis import redis_settings
from infra.facts.vault import vault_layout
from infra.local.stacks import Minio, Vault
from tests.app.test_images import png_bomb
from tests.conftest import RunningPlatform

pytestmark = pytest.mark.platform


def _image(fmt: str, size: tuple[int, int] = (32, 32), colour: tuple[int, int, int] = (200, 10, 10)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, fmt)
    return buffer.getvalue()


def _png() -> bytes:
    return _image("PNG")


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
    operator, viewer = local_platform.operator_key, local_platform.viewer_key
    cam1 = local_platform.camera_keys["local-cam-1"]
    cases = {
        "not an image": (_post(api, camera, operator, b"GIF89a not really"), 415, "not a JPEG or PNG"),
        "a real gif": (_post(api, camera, operator, _image("GIF"), "f.gif"), 415, "not a JPEG or PNG"),
        "corrupt jpeg": (
            _post(api, camera, operator, b"\xff\xd8\xff" + b"\x00" * 100),
            415,
            "does not decode",
        ),
        "truncated jpeg": (
            _post(api, camera, operator, _image("JPEG", (640, 480))[:4000]),
            415,
            "truncated or corrupt",
        ),
        "png bomb 30000x30000": (_post(api, camera, operator, png_bomb(), "bomb.png"), 422, "limit of"),
        "too many pixels on a side": (
            _post(api, camera, operator, _image("PNG", (9000, 8)), "wide.png"),
            422,
            "at most 8192",
        ),
        "too large": (
            _post(api, camera, operator, b"\xff\xd8\xff" + b"0" * (5 * 1024 * 1024 + 10)),
            413,
            "larger than",
        ),
        "empty": (_post(api, camera, operator, b""), 422, "empty"),
        "unknown camera": (_post(api, "no-such-camera", operator, _png(), "f.png"), 404, "unknown camera"),
        "missing key": (_post(api, camera, None, _png()), 401, "missing X-API-Key"),
        "bad key": (_post(api, camera, "not-a-key", _png()), 401, "malformed API key"),
        "wrong secret": (_post(api, camera, operator[:-2] + "xx", _png()), 401, "invalid API key"),
        "viewer posting": (_post(api, camera, viewer, _png()), 403, "may not post frames"),
        "camera key for another camera": (
            _post(api, "local-cam-2", cam1, _png(), "f.png"),
            403,
            "may not post frames for camera 'local-cam-2'",
        ),
        "camera key reading": (
            api.get("/v1/cameras/local-cam-1", headers={"X-API-Key": cam1}),
            403,
            "may not do this",
        ),
        "camera key registering": (
            api.post("/v1/cameras", json={"id": "cam-by-cam", "name": "x"}, headers={"X-API-Key": cam1}),
            403,
            "needs operator",
        ),
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
    # The refused frames were refused before anything was stored for them.
    with psycopg.connect(local_platform.database_dsn) as conn:
        stored = conn.execute("SELECT count(*) FROM frames WHERE camera_id = %s", (camera,)).fetchone()
    assert stored == (0,)


def test_bad_input_loses_nothing_accepted_before(
    api: httpx.Client, camera: str, local_platform: RunningPlatform
) -> None:
    accepted = _post(api, camera, local_platform.operator_key, _png(), "ok.png")
    assert accepted.status_code == 202
    for _ in range(5):
        assert _post(api, camera, local_platform.operator_key, b"junk").status_code == 415
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


@dataclass
class Upload:
    """What came of an upload the client kept sending until the server answered."""

    status: int
    detail: str
    headers: dict[str, str]
    sent: int
    seconds: float


def upload_until_answered(
    port: int, path: str, headers: dict[str, str], total: int, prefix: bytes = b"", chunked: bool = False
) -> Upload:
    """POST a body of `total` bytes over a raw socket, reading whenever the server has something
    to say: the answer is taken as soon as it arrives, with how many bytes had been sent by then."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    head = [f"POST {path} HTTP/1.1", "Host: its-test", *(f"{k}: {v}" for k, v in headers.items())]
    if chunked:
        head.append("Transfer-Encoding: chunked")
    else:
        head.append(f"Content-Length: {total}")
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    sock.setblocking(False)
    started, sent, response, pending = time.monotonic(), 0, b"", b""
    block = b"\0" * (256 * 1024)
    writing = True
    try:
        while time.monotonic() - started < 60 and not _complete(response):
            readable, writable, _ = select.select([sock], [sock] if writing else [], [], 1)
            if readable:
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    break
                if not data:
                    break
                response += data
                continue
            if writable:
                if not pending:
                    piece = prefix + block[: max(0, min(len(block), total - sent - len(prefix)))]
                    prefix = b""
                    if not piece:
                        pending, writing = (b"0\r\n\r\n" if chunked else b""), False
                    else:
                        pending = f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece
                try:
                    count = sock.send(pending)
                except (BrokenPipeError, ConnectionResetError):
                    writing = False  # the server closed its side: read what it said
                    continue
                pending, sent = pending[count:], sent + count
    finally:
        seconds = time.monotonic() - started
        sock.close()
    status_line, _, rest = response.partition(b"\r\n")
    raw_headers, _, body = rest.partition(b"\r\n\r\n")
    parsed = dict(line.decode().lower().split(": ", 1) for line in raw_headers.split(b"\r\n") if line)
    return Upload(int(status_line.split()[1]), json.loads(body)["detail"], parsed, sent, seconds)


def _complete(response: bytes) -> bool:
    head, found, body = response.partition(b"\r\n\r\n")
    if not found:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


SIXTY_FOUR_MB = 64 * 1024 * 1024
MULTIPART_START = (
    b"--its-boundary\r\nContent-Disposition: form-data; name=file; filename=big.jpg\r\n"
    b"Content-Type: image/jpeg\r\n\r\n\xff\xd8\xff"
)
MULTIPART = {"Content-Type": "multipart/form-data; boundary=its-boundary"}


def test_a_64mb_upload_without_a_key_is_refused_before_it_is_read(
    camera: str, local_platform: RunningPlatform
) -> None:
    answer = upload_until_answered(
        local_platform.cfg.ports.api,
        f"/v1/cameras/{camera}/frames",
        MULTIPART,
        SIXTY_FOUR_MB,
        MULTIPART_START,
    )
    assert (answer.status, answer.detail) == (401, "missing X-API-Key header")
    assert answer.sent < SIXTY_FOUR_MB // 8, f"{answer.sent} bytes went out before the answer"
    assert answer.seconds < 5
    assert answer.headers.get("connection") == "close"


def test_a_64mb_upload_with_a_key_is_refused_413_before_it_is_read(
    camera: str, local_platform: RunningPlatform
) -> None:
    headers = {**MULTIPART, "X-API-Key": local_platform.operator_key}
    answer = upload_until_answered(
        local_platform.cfg.ports.api, f"/v1/cameras/{camera}/frames", headers, SIXTY_FOUR_MB, MULTIPART_START
    )
    assert answer.status == 413 and "larger than" in answer.detail
    assert answer.sent < SIXTY_FOUR_MB // 8, f"{answer.sent} bytes went out before the answer"
    assert answer.seconds < 5


def test_a_chunked_upload_is_cut_off_at_the_request_limit(
    camera: str, local_platform: RunningPlatform
) -> None:
    """No Content-Length to refuse up front: the API reads up to its limit, then answers 413
    and closes the connection, whatever the client still meant to send."""
    headers = {**MULTIPART, "X-API-Key": local_platform.operator_key}
    answer = upload_until_answered(
        local_platform.cfg.ports.api,
        f"/v1/cameras/{camera}/frames",
        headers,
        SIXTY_FOUR_MB,
        MULTIPART_START,
        chunked=True,
    )
    assert answer.status == 413 and "larger than" in answer.detail
    assert answer.sent < SIXTY_FOUR_MB // 2, f"{answer.sent} bytes went out before the answer"
    assert answer.headers.get("connection") == "close"


def test_a_camera_key_posts_for_its_own_camera(api: httpx.Client, local_platform: RunningPlatform) -> None:
    response = _post(api, "local-cam-1", local_platform.camera_keys["local-cam-1"], _png(), "f.png")
    assert response.status_code == 202, response.text
    assert response.json()["replayed"] is False


def test_a_replay_with_other_bytes_never_overwrites_the_first_frame(
    api: httpx.Client, local_platform: RunningPlatform
) -> None:
    key = local_platform.camera_keys["local-cam-2"]
    idempotency = {"Idempotency-Key": f"replay-{uuid.uuid4().hex}"}
    first_bytes, other_bytes = _image("JPEG", colour=(250, 0, 0)), _image("JPEG", colour=(0, 0, 250))
    headers = {"X-API-Key": key, **idempotency}
    first = api.post(
        "/v1/cameras/local-cam-2/frames",
        files={"file": ("a.jpg", first_bytes, "image/jpeg")},
        headers=headers,
    )
    assert first.status_code == 202, first.text
    replay = api.post(
        "/v1/cameras/local-cam-2/frames",
        files={"file": ("b.jpg", other_bytes, "image/jpeg")},
        headers=headers,
    )
    assert replay.status_code == 202, replay.text
    assert first.json()["replayed"] is False and replay.json()["replayed"] is True
    assert replay.json()["frame_id"] == first.json()["frame_id"]
    assert replay.json()["object_key"] == first.json()["object_key"]
    frame_id = first.json()["frame_id"]
    with psycopg.connect(local_platform.database_dsn) as conn:
        rows = conn.execute("SELECT object_key, size_bytes FROM frames WHERE id = %s", (frame_id,)).fetchall()
    assert rows == [(first.json()["object_key"], len(first_bytes))]
    store = local_platform.platform.stack(Minio).root_client()
    frames_bucket = buckets().buckets.frames.name
    stored = store.get_object(frames_bucket, rows[0][0])
    try:
        assert stored.read() == first_bytes
    finally:
        stored.close()
        stored.release_conn()
    objects = [
        o.object_name for o in store.list_objects(frames_bucket, prefix=f"frames/local-cam-2/{frame_id}")
    ]
    assert objects == [rows[0][0]], "the replay stored an object of its own"


def test_an_expired_key_is_refused_as_expired(api: httpx.Client, local_platform: RunningPlatform) -> None:
    """A key record past its expiry, written to Vault beside the platform's own, is refused once
    the API has read it (restarted here; a running API re-reads Vault every 5 minutes)."""
    secrets = local_platform.platform.secrets
    presented, record = generate_key(
        "expired-test",
        "viewer",
        [],
        timedelta(hours=1),
        pepper=secrets["api_pepper"],
        now=datetime.now(UTC) - timedelta(days=1),
    )
    kv = local_platform.platform.stack(Vault).client(secrets["vault_init"]["root_token"])
    mount = vault_layout().kv_mount
    original = kv.secrets.kv.v2.read_secret_version(
        path="its/api/auth", mount_point=mount, raise_on_deleted_version=True
    )["data"]["data"]
    records = [*json.loads(original["api_keys"]), record.model_dump(mode="json")]
    # The local Vault's KV "v2" keeps v1 semantics: write the v2 envelope, as the provisioner does.
    kv.write_data(f"{mount}/data/its/api/auth", data={"data": {"api_keys": json.dumps(records)}})
    try:
        _restart_api(api, local_platform)
        response = api.get("/v1/cameras", headers={"X-API-Key": presented})
        assert (response.status_code, response.json()["detail"]) == (401, "API key expired")
        # The platform's own keys still work beside it.
        assert api.get("/v1/cameras", headers={"X-API-Key": local_platform.viewer_key}).status_code == 200
    finally:
        kv.write_data(f"{mount}/data/its/api/auth", data={"data": original})


def _restart_api(api: httpx.Client, local_platform: RunningPlatform) -> None:
    local_platform.supervisor.stop("api")
    local_platform.supervisor.start("api")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if api.get("/readyz").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail("the API did not come back ready within 90 s")


def test_readyz_names_each_check_and_no_error_text(api: httpx.Client) -> None:
    response = api.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"postgres": "ok", "redis": "ok", "kafka": "ok", "minio": "ok", "vault": "ok"},
    }
