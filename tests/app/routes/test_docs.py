"""/docs, /redoc and /openapi.json follow ITS_API_DOCS_ENABLED: open when on, absent when off."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from tests.app.asgi import call
from tests.app.routes.conftest import OPERATOR


def test_docs_are_open_when_enabled_and_document_the_key_header(make_app: Callable[..., FastAPI]) -> None:
    api = make_app(api_docs_enabled=True)
    for path in ("/docs", "/redoc"):
        assert call(api, "GET", path).status == 200, path
    schema = call(api, "GET", "/openapi.json").json()
    assert schema["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"
    frames = schema["paths"]["/v1/cameras/{camera_id}/frames"]["post"]
    assert "multipart/form-data" in frames["requestBody"]["content"]


def test_docs_do_not_exist_when_disabled(make_app: Callable[..., FastAPI]) -> None:
    api = make_app(api_docs_enabled=False)
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert call(api, "GET", path).status == 401, path  # not an open path any more
        assert call(api, "GET", path, {"x-api-key": OPERATOR}).status == 404, path
