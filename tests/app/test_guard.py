"""The guard in front of a tiny ASGI app that reads whatever body it is given: what is refused is
refused before a byte of the body is read, and what passes carries its verified key."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI, Request
from starlette.types import Receive, Scope, Send

from app.api import metrics
from app.api.guard import Guard, GuardPolicy
from app.api.ratelimit import FixedWindow, KeyRateLimiter
from app.common import clients
from app.common.apikeys import ApiKeyRecord, KeySet, dump_records, generate_key, new_pepper
from app.common.secrets import Credentials, RedisCredentials
from app.common.settings import Settings
from tests.app.asgi import Exchange, call

LIMIT = 1024 * 1024
HUGE = str(64 * 1024 * 1024)
PEPPER = new_pepper()
OPERATOR, OPERATOR_RECORD = generate_key("op", "operator", [], timedelta(days=1), pepper=PEPPER)
EXPIRED, EXPIRED_RECORD = generate_key(
    "old", "viewer", [], timedelta(hours=1), pepper=PEPPER, now=datetime(2025, 1, 1, tzinfo=UTC)
)
KEYS = KeySet.from_vault(dump_records([OPERATOR_RECORD, EXPIRED_RECORD]), PEPPER)


class Echo:
    """Reads the whole body, then answers 200 with its length and the key it was handed."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        size, more = 0, True
        while more:
            message = await receive()
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
        key = scope.get("auth")
        body = f"{size} {key.id if isinstance(key, ApiKeyRecord) else '-'}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})


class Unlimited:
    limit = 10**9

    async def hit(self, name: str) -> int | None:
        return None


def guard(
    app: Echo,
    *,
    failures: int = 5,
    per_key: KeyRateLimiter | FixedWindow | Unlimited | None = None,
    keys: KeySet | None = KEYS,
) -> Guard:
    return Guard(
        app,
        policy=GuardPolicy(max_request_bytes=LIMIT, open_paths=frozenset({"/healthz"})),
        keys=lambda: keys,
        failures=FixedWindow(failures),
        per_key=per_key or Unlimited(),
    )


def endless(chunk: int = 64 * 1024) -> Iterator[bytes]:
    while True:
        yield b"x" * chunk


def post(
    app: Guard | FastAPI, headers: dict[str, str], chunks: Iterable[bytes] = (), client: str = "192.0.2.10"
) -> Exchange:
    return call(app, "POST", "/v1/cameras/c/frames", headers, chunks, client)


def test_a_huge_body_without_a_key_is_refused_401_before_any_read() -> None:
    echo = Echo()
    answer = post(guard(echo), {"content-length": HUGE}, endless())
    assert answer.status == 401 and answer.json()["detail"] == "missing X-API-Key header"
    assert answer.chunks_read == 0 and echo.calls == 0
    assert answer.headers["connection"] == "close"


def test_a_huge_body_with_a_bad_key_is_refused_401_before_any_read() -> None:
    answer = post(guard(Echo()), {"content-length": HUGE, "x-api-key": OPERATOR + "x"}, endless())
    assert answer.status == 401 and answer.json()["detail"] == "invalid API key"
    assert answer.chunks_read == 0


def test_a_huge_content_length_with_a_key_is_refused_413_before_any_read() -> None:
    echo = Echo()
    answer = post(guard(echo), {"content-length": HUGE, "x-api-key": OPERATOR}, endless())
    assert answer.status == 413 and f"larger than {LIMIT} bytes" in answer.json()["detail"]
    assert answer.chunks_read == 0 and echo.calls == 0
    assert answer.headers["connection"] == "close"


def test_a_chunked_body_is_cut_off_at_the_limit() -> None:
    chunk = 64 * 1024
    answer = post(guard(Echo()), {"transfer-encoding": "chunked", "x-api-key": OPERATOR}, endless(chunk))
    assert answer.status == 413 and "larger than" in answer.json()["detail"]
    assert answer.chunks_read == LIMIT // chunk + 1  # the chunk that crossed the limit, no more
    assert answer.headers["connection"] == "close"


def test_a_body_within_the_limit_passes_with_the_verified_key_on_the_scope() -> None:
    chunks = [b"y" * 1000] * 10
    answer = post(guard(Echo()), {"content-length": "10000", "x-api-key": OPERATOR}, chunks)
    assert (answer.status, answer.body) == (200, b"10000 op")


def test_open_paths_need_no_key_but_keep_the_body_limit() -> None:
    echo = Echo()
    app = guard(echo)
    assert call(app, "GET", "/healthz").body == b"0 -"
    too_big = call(app, "POST", "/healthz", {"content-length": HUGE}, endless())
    assert too_big.status == 413 and too_big.chunks_read == 0
    assert call(app, "GET", "/docs").status == 401  # docs are open only when enabled


def test_an_expired_key_is_refused_401_expired() -> None:
    answer = post(guard(Echo()), {"x-api-key": EXPIRED})
    assert answer.status == 401 and answer.json()["detail"] == "API key expired"


def test_failed_authentications_are_limited_per_address_even_for_a_valid_key() -> None:
    app = guard(Echo(), failures=3)
    for _ in range(3):
        assert post(app, {"x-api-key": "its_op_guess"}).status == 401
    refused = post(app, {"x-api-key": OPERATOR, "content-length": HUGE}, endless())
    assert refused.status == 429 and "failed authentications" in refused.json()["detail"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60 and refused.chunks_read == 0
    # Another address is not affected.
    assert post(app, {"x-api-key": OPERATOR}, client="192.0.2.99").status == 200


def test_a_missing_key_counts_as_a_failure_too() -> None:
    app = guard(Echo(), failures=2)
    assert [post(app, {}).status for _ in range(3)] == [401, 401, 429]


def test_requests_per_key_are_limited() -> None:
    app = guard(Echo(), per_key=FixedWindow(2))
    statuses = [post(app, {"x-api-key": OPERATOR}).status for _ in range(3)]
    assert statuses == [200, 200, 429]
    refused = post(app, {"x-api-key": OPERATOR})
    assert "rate limit of 2 requests per minute" in refused.json()["detail"]
    assert "retry-after" in refused.headers


def test_no_key_set_yet_means_503_not_an_open_door() -> None:
    answer = post(guard(Echo(), keys=None), {"x-api-key": OPERATOR})
    assert answer.status == 503 and answer.chunks_read == 0


def test_an_invalid_content_length_is_a_400() -> None:
    assert post(guard(Echo()), {"content-length": "12abc", "x-api-key": OPERATOR}).status == 400


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_per_key_limit_holds_in_process_when_redis_is_unreachable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Sentinels on a port nobody listens on, reached as the API reaches them: the limiter does
    not fail open, and it does not make a request wait on Redis' retries either."""
    settings = Settings(redis_sentinels=f"127.0.0.1:{_closed_port()}")
    login = Credentials("its-api", "unused")
    limiter = KeyRateLimiter(3, lambda: clients.rate_limit_redis(settings, RedisCredentials(login, login)))
    app = guard(Echo(), per_key=limiter)
    with caplog.at_level(logging.WARNING, logger="app.api.ratelimit"):
        statuses = [post(app, {"x-api-key": OPERATOR}).status for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    assert any("redis unreachable" in r.getMessage() for r in caplog.records)


def test_through_httpx_the_refusal_arrives_without_the_body_being_sent() -> None:
    """The same over httpx's ASGI transport: a streamed upload without a key is answered 401
    after the guard pulled none of its chunks."""
    produced = 0

    async def upload() -> AsyncIterator[bytes]:
        nonlocal produced
        for _ in range(1024):
            produced += 1
            yield b"z" * 65536

    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=guard(Echo()))
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            return await client.post("/v1/cameras/c/frames", content=upload())

    response = asyncio.run(run())
    assert response.status_code == 401
    assert produced <= 1  # httpx may prime the generator; the guard read nothing


def test_a_chunked_body_is_cut_off_through_fastapi_and_its_middleware() -> None:
    """Behind the guard, the API's own middleware (the metrics one is a BaseHTTPMiddleware, which
    runs `receive` in a task group) and a route parsing the multipart form: still a 413 from the
    guard, never a 500 from an exception raised through them."""
    app = FastAPI()
    app.middleware("http")(metrics.record)

    @app.post("/v1/cameras/c/frames")
    async def read_form(request: Request) -> dict[str, int]:
        async with request.form(max_files=1, max_fields=1) as form:
            return {"fields": len(form)}

    app.add_middleware(
        Guard,
        policy=GuardPolicy(max_request_bytes=LIMIT, open_paths=frozenset()),
        keys=lambda: KEYS,
        failures=FixedWindow(5),
        per_key=Unlimited(),
    )

    def upload() -> Iterator[bytes]:
        yield b"--b\r\nContent-Disposition: form-data; name=file; filename=f.jpg\r\n\r\n"
        yield from endless()

    headers = {"x-api-key": OPERATOR, "content-type": "multipart/form-data; boundary=b"}
    answer = post(app, headers, upload())
    assert answer.status == 413 and "larger than" in answer.json()["detail"]
    assert answer.headers["connection"] == "close"
    assert answer.bytes_read <= LIMIT + 64 * 1024 + 100
