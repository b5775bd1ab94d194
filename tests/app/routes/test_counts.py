"""/v1/cameras/{id}/counts and /counts/latest: for viewers and operators only."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from tests.app.asgi import call
from tests.app.routes.conftest import CAM1


@pytest.mark.parametrize("path", ["/v1/cameras/local-cam-1/counts", "/v1/cameras/local-cam-1/counts/latest"])
def test_a_camera_key_may_not_read_counts(api: FastAPI, path: str) -> None:
    answer = call(api, "GET", path, {"x-api-key": CAM1})
    assert answer.status == 403 and "needs viewer or operator" in answer.json()["detail"]
