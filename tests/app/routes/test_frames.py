"""POST /v1/cameras/{id}/frames: who may post, decided before the upload is read."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import Message

from app.api.routes.frames import _read_form
from tests.app.asgi import call
from tests.app.routes.conftest import CAM1, OPERATOR, VIEWER

MULTIPART = "multipart/form-data; boundary=frame"
Files = dict[str, tuple[str, bytes, str]]


def upload(chunks: int = 40) -> Iterator[bytes]:
    yield b"--frame\r\nContent-Disposition: form-data; name=file; filename=f.jpg\r\n\r\n"
    for _ in range(chunks):
        yield b"\xff" * 65536


def post(api: FastAPI, camera: str, key: str | None) -> tuple[int, str, int]:
    headers = {"content-type": MULTIPART, "content-length": str(40 * 65536 + 80)}
    if key:
        headers["x-api-key"] = key
    answer = call(api, "POST", f"/v1/cameras/{camera}/frames", headers, upload())
    return answer.status, answer.json()["detail"], answer.chunks_read


def test_a_camera_key_may_not_post_for_another_camera(api: FastAPI) -> None:
    status, detail, read = post(api, "local-cam-2", CAM1)
    assert status == 403
    assert "'local-cam-2'" in detail and "bound to local-cam-1" in detail
    assert read == 0  # refused before the upload was read


def test_a_viewer_may_not_post_frames(api: FastAPI) -> None:
    status, detail, read = post(api, "local-cam-1", VIEWER)
    assert status == 403 and "role 'viewer' may not post frames" in detail and read == 0


def test_no_key_no_upload(api: FastAPI) -> None:
    status, detail, read = post(api, "local-cam-1", None)
    assert (status, detail, read) == (401, "missing X-API-Key header", 0)


def test_the_bound_camera_key_and_the_operator_get_past_authorisation(api: FastAPI) -> None:
    """Without a database behind the app the next step fails (500): what matters here is that
    it is not a 401 or 403, and that the 500 says nothing of the error."""
    for camera, key in (("local-cam-1", CAM1), ("local-cam-2", OPERATOR)):
        headers = {"content-type": MULTIPART, "x-api-key": key}
        answer = call(
            api, "POST", f"/v1/cameras/{camera}/frames", headers, upload(1), raise_app_exceptions=False
        )
        assert answer.status == 500
        assert answer.json() == {"detail": "internal error"}


def _form_request(files: Files, data: dict[str, str]) -> Request:
    built = httpx.Request("POST", "http://api/", files=files, data=data)
    body = built.read()
    delivered = False

    async def receive() -> Message:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    headers = [(k.lower().encode(), v.encode()) for k, v in built.headers.items()]
    # "app" as in a served request: Starlette then turns multipart errors into 400s.
    scope: dict[str, object] = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    scope.update(query_string=b"", app=None)
    return Request(scope, receive)


def read_form(files: Files, data: dict[str, str]) -> tuple[bytes, datetime | None]:
    async def run() -> tuple[bytes, datetime | None]:
        return await _read_form(_form_request(files, data), max_bytes=1000)

    return asyncio.run(run())


def test_the_frame_form_yields_the_file_and_an_aware_capture_time() -> None:
    frame = {"file": ("f.jpg", b"\xff\xd8\xffjpeg", "image/jpeg")}
    data, captured = read_form(frame, {"captured_at": "2026-01-01T08:00:00Z"})
    assert data == b"\xff\xd8\xffjpeg"
    assert captured == datetime(2026, 1, 1, 8, tzinfo=UTC)
    assert read_form({"file": ("f.jpg", b"x", "image/jpeg")}, {}) == (b"x", None)


@pytest.mark.parametrize(
    ("files", "data", "status", "reason"),
    [
        ({}, {"captured_at": "2026-01-01T08:00:00Z"}, 422, "the frame is missing"),
        ({"file": ("f.jpg", b"x", "image/jpeg")}, {"captured_at": "2026-01-01T08:00:00"}, 422, "time zone"),
        ({"file": ("f.jpg", b"x", "image/jpeg")}, {"captured_at": "yesterday"}, 422, "ISO 8601"),
        ({"file": ("f.jpg", b"x", "image/jpeg"), "other": ("g.jpg", b"y", "image/jpeg")}, {}, 400, "files"),
    ],
)
def test_a_bad_frame_form_is_refused_with_the_reason(
    files: Files, data: dict[str, str], status: int, reason: str
) -> None:
    with pytest.raises(HTTPException) as refused:
        read_form(files, data)
    assert refused.value.status_code == status and reason in str(refused.value.detail)
