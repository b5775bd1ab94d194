"""/v1/cameras/{id}/detections: for viewers and operators, never for a camera key."""

from __future__ import annotations

from fastapi import FastAPI

from tests.app.asgi import call
from tests.app.routes.conftest import CAM1

PATH = "/v1/cameras/local-cam-1/detections"


def test_a_camera_key_may_not_read_detections_even_of_its_own_camera(api: FastAPI) -> None:
    answer = call(api, "GET", PATH, {"x-api-key": CAM1})
    assert answer.status == 403 and "needs viewer or operator" in answer.json()["detail"]


def test_a_malformed_key_is_refused_as_such(api: FastAPI) -> None:
    answer = call(api, "GET", PATH, {"x-api-key": "not-a-key"})
    assert answer.status == 401 and "malformed API key" in answer.json()["detail"]
