"""/v1/cameras: registering and changing are for operators, reading for viewers and operators."""

from __future__ import annotations

import json

from fastapi import FastAPI

from tests.app.asgi import call
from tests.app.routes.conftest import CAM1, EXPIRED, VIEWER


def test_a_viewer_may_not_register_a_camera(api: FastAPI) -> None:
    body = json.dumps({"id": "cam-x", "name": "x"}).encode()
    headers = {"x-api-key": VIEWER, "content-type": "application/json", "content-length": str(len(body))}
    answer = call(api, "POST", "/v1/cameras", headers, [body])
    assert answer.status == 403
    assert answer.json()["detail"] == "role 'viewer' may not do this (needs operator)"


def test_only_an_operator_may_change_a_camera(api: FastAPI) -> None:
    body = json.dumps({"stream_url": None}).encode()
    for key, role in ((VIEWER, "viewer"), (CAM1, "camera")):
        headers = {"x-api-key": key, "content-type": "application/json", "content-length": str(len(body))}
        answer = call(api, "PATCH", "/v1/cameras/local-cam-1", headers, [body])
        assert answer.status == 403, role
        assert answer.json()["detail"] == f"role {role!r} may not do this (needs operator)"


def test_a_camera_key_may_not_read_cameras(api: FastAPI) -> None:
    for path in ("/v1/cameras", "/v1/cameras/local-cam-1"):
        answer = call(api, "GET", path, {"x-api-key": CAM1})
        assert answer.status == 403, path
        assert "role 'camera' may not do this" in answer.json()["detail"]


def test_reading_needs_a_live_key(api: FastAPI) -> None:
    assert call(api, "GET", "/v1/cameras").json()["detail"] == "missing X-API-Key header"
    expired = call(api, "GET", "/v1/cameras", {"x-api-key": EXPIRED})
    assert (expired.status, expired.json()["detail"]) == (401, "API key expired")
