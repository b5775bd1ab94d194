"""The API: `uvicorn app.api.main:app`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from app.api import metrics
from app.api.guard import Guard, GuardPolicy
from app.api.ratelimit import FixedWindow, KeyRateLimiter
from app.api.routes import cameras, counts, detections, frames, health
from app.api.state import AppState
from app.common import clients
from app.common.apikeys import KeySet
from app.common.logging import configure
from app.common.secrets import VaultSecrets, api_paths
from app.common.settings import Settings, get_settings

log = logging.getLogger("app.api")
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})


def _lifespan(settings: Settings) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure(settings.log_level)
        secrets = await asyncio.to_thread(VaultSecrets, settings, api_paths(settings))
        stop_refresh = secrets.start_background_refresh()
        state = AppState(
            settings=settings,
            secrets=secrets,
            db=await clients.database_pool(settings, secrets),
            sentinel=clients.redis_sentinel(settings, secrets.redis_credentials()),
            store=clients.object_store(settings, secrets),
            producer=clients.AcknowledgedProducer(
                clients.kafka_producer(settings, secrets.kafka_credentials(), linger_ms=0)
            ),
        )
        app.state.its = state
        log.info("api ready", extra={"docs_enabled": settings.api_docs_enabled})
        try:
            yield
        finally:
            stop_refresh.set()
            state.producer.close(5)
            await state.db.close()

    return lifespan


def create_app(
    settings: Settings | None = None, *, keys: Callable[[], KeySet | None] | None = None
) -> FastAPI:
    """The API. `keys` is where the guard finds the key set; by default the one the lifespan
    reads from Vault (None until then, so early requests get 503)."""
    settings = settings or get_settings()
    docs = settings.api_docs_enabled
    app = FastAPI(
        title="ITS Camera AI API",
        version="0.1.0",
        lifespan=_lifespan(settings),
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.middleware("http")(metrics.record)
    for module in (health, cameras, frames, detections, counts):
        app.include_router(module.router)

    def current_keys() -> KeySet | None:
        state: AppState | None = getattr(app.state, "its", None)
        return None if state is None else state.secrets.key_set()

    def rate_limit_master() -> Redis:
        # Logged in as the API's own Redis user, which Vault gives only once the lifespan ran;
        # until then the limiter keeps its window in process.
        state: AppState | None = getattr(app.state, "its", None)
        if state is None:
            raise RedisConnectionError("no Redis credentials yet: Vault not read")
        return clients.rate_limit_redis(settings, state.secrets.redis_credentials())

    # Added last, so it is the outermost of the app's middleware: nothing before it reads a body.
    app.add_middleware(
        Guard,
        policy=GuardPolicy(
            max_request_bytes=settings.max_request_bytes,
            open_paths=OPEN_PATHS | DOCS_PATHS if docs else OPEN_PATHS,
        ),
        keys=keys or current_keys,
        failures=FixedWindow(settings.auth_failures_per_minute),
        per_key=KeyRateLimiter(settings.rate_limit_per_minute, rate_limit_master),
    )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        reasons = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()]
        return JSONResponse({"detail": "; ".join(reasons)}, status_code=422)

    @app.exception_handler(Exception)
    async def server_fault(request: Request, error: Exception) -> JSONResponse:
        # The exception's name and text are for the log only.
        log.exception("unhandled error", extra={"path": request.url.path})
        return JSONResponse({"detail": "internal error"}, status_code=500)

    return app


app = create_app()
