"""The real API app (create_app) with a key set handed to its guard and no backend behind it:
what the routes refuse is decided before any backend is touched, so it is testable here; what
they accept needs the platform (tests/app/test_bad_input.py, test_pipeline.py)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI

from app.api.main import create_app
from app.common.apikeys import KeySet, dump_records, generate_key, new_pepper
from app.common.settings import Settings

PEPPER = new_pepper()
DAY = timedelta(days=1)
OPERATOR, _OPERATOR = generate_key("op", "operator", [], DAY, pepper=PEPPER)
VIEWER, _VIEWER = generate_key("viewer", "viewer", [], DAY, pepper=PEPPER)
CAM1, _CAM1 = generate_key("cam-1", "camera", ["local-cam-1"], DAY, pepper=PEPPER)
EXPIRED, _EXPIRED = generate_key(
    "old", "operator", [], DAY, pepper=PEPPER, now=datetime(2025, 1, 1, tzinfo=UTC)
)
KEYS = KeySet.from_vault(dump_records([_OPERATOR, _VIEWER, _CAM1, _EXPIRED]), PEPPER)


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def make_app() -> Callable[..., FastAPI]:
    def make(**settings: object) -> FastAPI:
        # Sentinels on a port nobody listens on: the per-key limiter keeps its window in process.
        values: dict[str, object] = {"redis_sentinels": f"127.0.0.1:{_unused_port()}", **settings}
        return create_app(Settings.model_validate(values), keys=lambda: KEYS)

    return make


@pytest.fixture
def api(make_app: Callable[..., FastAPI]) -> FastAPI:
    return make_app()
