"""Calling an ASGI app directly, to see what it reads: how many body chunks it pulled through
`receive` before it answered, not only what it answered."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message


@dataclass
class Exchange:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    chunks_read: int = 0
    bytes_read: int = 0

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    app: ASGIApp,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    chunks: Iterable[bytes] = (),
    client: str = "192.0.2.10",
    raise_app_exceptions: bool = True,
) -> Exchange:
    """One HTTP request. `chunks` are handed out one per `receive` call, lazily: a chunk the app
    never asked for is never produced. With raise_app_exceptions=False, an exception the app
    re-raises after answering (as Starlette does after a 500) is dropped, and the answer kept."""
    exchange = Exchange()
    source: Iterator[bytes] = iter(chunks)
    pending: list[bytes] = []

    def next_chunk() -> bytes | None:
        if pending:
            return pending.pop()
        return next(source, None)

    async def receive() -> Message:
        chunk = next_chunk()
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        exchange.chunks_read += 1
        exchange.bytes_read += len(chunk)
        following = next_chunk()
        if following is not None:
            pending.append(following)
        return {"type": "http.request", "body": chunk, "more_body": following is not None}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            exchange.status = message["status"]
            exchange.headers = {k.decode().lower(): v.decode() for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body":
            exchange.body += message.get("body", b"")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": (client, 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }

    async def run() -> None:
        try:
            await app(scope, receive, send)
        except Exception:
            if raise_app_exceptions or not exchange.status:
                raise

    asyncio.run(run())
    return exchange
