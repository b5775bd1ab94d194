"""The API: `uvicorn app.api.main:app`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from app.api import metrics
from app.api.routes import cameras, counts, detections, frames, health
from app.api.state import AppState
from app.common import clients
from app.common.logging import configure
from app.common.secrets import API_KAFKA, API_REDIS, VaultSecrets
from app.common.settings import get_settings

log = logging.getLogger("app.api")
API_SECRETS = (*VaultSecrets.PATHS, "its/api/auth", API_KAFKA, API_REDIS)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    configure(settings.log_level)
    secrets = await asyncio.to_thread(VaultSecrets, settings, API_SECRETS)
    stop_refresh = secrets.start_background_refresh()
    state = AppState(
        settings=settings,
        secrets=secrets,
        db=await clients.database_pool(settings, secrets),
        sentinel=clients.redis_sentinel(settings, secrets.redis_credentials(API_REDIS)),
        store=clients.object_store(settings, secrets),
        producer=clients.kafka_producer(settings, secrets.credentials(API_KAFKA)),
    )
    app.state.its = state
    log.info("api ready")
    try:
        yield
    finally:
        stop_refresh.set()
        state.producer.flush(5)
        await state.db.close()


def create_app() -> FastAPI:
    app = FastAPI(title="ITS Camera AI API", version="0.1.0", lifespan=lifespan)
    app.middleware("http")(metrics.record)
    for module in (health, cameras, frames, detections, counts):
        app.include_router(module.router)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        reasons = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()]
        return JSONResponse({"detail": "; ".join(reasons)}, status_code=422)

    @app.exception_handler(Exception)
    async def server_fault(request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"path": request.url.path})
        return JSONResponse({"detail": f"internal error: {type(error).__name__}"}, status_code=500)

    return app


app = create_app()
