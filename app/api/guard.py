"""The API's front door: a pure ASGI middleware that decides before any body is read.

FastAPI reads (and parses) a request body before any dependency runs, so a key check in a
dependency comes too late: an upload without a key would be read in full first. This guard
runs outermost, on the headers alone:

1. a client address that failed authentication too often this minute -> 429 (in process, so
   it holds when Redis is down);
2. no X-API-Key, or one that does not verify -> 401 (counted against the address);
3. a Content-Length over the request limit -> 413; a chunked body is cut off at the limit
   (413) by wrapping `receive`;
4. the key's requests this minute over its limit -> 429.

What passes carries the verified key record in `scope["auth"]` (Starlette's `request.auth`),
so routes authorise without a second lookup. Refusals of a request that has a body say
`Connection: close`: the body is never read, so the connection cannot carry another request.
Open paths (health, metrics, docs when enabled) skip 1, 2 and 4, never 3.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.metrics import REQUESTS
from app.api.ratelimit import FixedWindow, RequestLimiter
from app.common.apikeys import KeyRejectedError, KeySet

log = logging.getLogger(__name__)
KEY_HEADER = b"x-api-key"


@dataclass(frozen=True)
class GuardPolicy:
    max_request_bytes: int
    open_paths: frozenset[str]


class Guard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        policy: GuardPolicy,
        keys: Callable[[], KeySet | None],
        failures: FixedWindow,
        per_key: RequestLimiter,
    ) -> None:
        self.app = app
        self.policy = policy
        self.keys = keys
        self.failures = failures
        self.per_key = per_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            # The API serves no websocket; refuse rather than pass one by the checks.
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        has_body = b"content-length" in headers or b"transfer-encoding" in headers
        try:
            length = _content_length(headers.get(b"content-length"))
        except ValueError:
            await self._refuse(scope, send, 400, "invalid Content-Length header", close=True)
            return

        if scope["path"] not in self.policy.open_paths:
            client = scope["client"][0] if scope.get("client") else "unknown"
            wait = self.failures.exhausted(client)
            if wait is not None:
                await self._refuse(
                    scope,
                    send,
                    429,
                    f"too many failed authentications from this address; retry in {wait} s",
                    close=has_body,
                    retry_after=wait,
                )
                return
            keys = self.keys()
            if keys is None:
                await self._refuse(scope, send, 503, "not ready, retry", close=has_body, retry_after=1)
                return
            presented = headers.get(KEY_HEADER)
            try:
                if not presented:
                    raise KeyRejectedError("missing X-API-Key header")
                record = keys.verify(presented.decode("latin-1"))
            except KeyRejectedError as refused:
                self.failures.add(client)
                log.warning("authentication refused", extra={"client": client, "reason": refused.reason})
                await self._refuse(scope, send, 401, refused.reason, close=has_body)
                return
            if length is not None and length > self.policy.max_request_bytes:
                await self._refuse(scope, send, 413, _too_large(self.policy.max_request_bytes), close=True)
                return
            wait = await self.per_key.hit(record.id)
            if wait is not None:
                await self._refuse(
                    scope,
                    send,
                    429,
                    f"rate limit of {self.per_key.limit} requests per minute exceeded for this key",
                    close=has_body,
                    retry_after=wait,
                )
                return
            scope = {**scope, "auth": record}
        elif length is not None and length > self.policy.max_request_bytes:
            await self._refuse(scope, send, 413, _too_large(self.policy.max_request_bytes), close=True)
            return
        await self._pass(scope, receive, send)

    async def _pass(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Call the app with `receive` capped at the request limit (a chunked body declares no
        length; a declared one is enforced by the server's framing, and capped all the same).

        At the limit the guard answers 413 itself and tells the app the client has gone, rather
        than raise through the app: middleware in between (Starlette's BaseHTTPMiddleware runs
        `receive` in a task group) would turn an exception into a 500."""
        limit = self.policy.max_request_bytes
        received = 0
        cut_off = answered = started = False

        async def capped_receive() -> Message:
            nonlocal received, cut_off, answered
            if cut_off:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    cut_off = True
                    if not started:
                        answered = True
                        await self._refuse(scope, send, 413, _too_large(limit), close=True)
                    return {"type": "http.disconnect"}
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if answered:
                return  # the guard has answered; the app's reply to a "gone" client goes nowhere
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, capped_receive, tracked_send)
        except Exception:
            if not answered:
                raise
            # The app failed on the body it was denied (ClientDisconnect and the like): already
            # answered 413, nothing more to say.
            log.info("request body over the limit: answered 413", extra={"path": scope["path"]})

    async def _refuse(
        self,
        scope: Scope,
        send: Send,
        status: int,
        reason: str,
        *,
        close: bool,
        retry_after: int | None = None,
    ) -> None:
        headers = {}
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        if close:
            headers["Connection"] = "close"
        REQUESTS.labels(scope["method"], "guard", str(status)).inc()
        response = JSONResponse({"detail": reason}, status_code=status, headers=headers)
        await response(scope, _no_body, send)


async def _no_body() -> Message:
    # A refusal never reads the request: whoever asks is told the client has gone.
    return {"type": "http.disconnect"}


def _content_length(raw: bytes | None) -> int | None:
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise ValueError(raw)
    return int(raw)


def _too_large(limit: int) -> str:
    return f"the request body is larger than {limit} bytes"
