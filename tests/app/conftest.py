"""Fixtures of the app's end-to-end tests: an HTTP client of the running platform's API and a
camera of the test module's own (so modules never share one)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import RunningPlatform


@pytest.fixture(scope="module")
def api(local_platform: RunningPlatform) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=local_platform.api_url, timeout=15) as client:
        yield client


@pytest.fixture(scope="module")
def camera(api: httpx.Client, local_platform: RunningPlatform, request: pytest.FixtureRequest) -> str:
    """A camera registered by the operator for this module, named after it."""
    module = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").replace("_", "-")
    camera_id = f"{module[:20]}-{uuid.uuid4().hex[:6]}"
    response = api.post(
        "/v1/cameras",
        json={"id": camera_id, "name": f"{module} tests"},
        headers={"X-API-Key": local_platform.operator_key},
    )
    assert response.status_code == 201, response.text
    return camera_id
