"""POST /v1/cameras/{id}/frames: who may post, decided before the upload is read."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import FastAPI

from tests.app.asgi import call
from tests.app.routes.conftest import CAM1, OPERATOR, VIEWER

MULTIPART = "multipart/form-data; boundary=frame"


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
