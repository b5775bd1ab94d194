"""/healthz (the process answers), /readyz (every dependency answers), /metrics."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.api.deps import State
from app.common.contracts import FRAMES_BUCKET, FRAMES_TOPIC

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)
CheckState = Literal["ok", "failed"]


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _check(name: str, probe: Any) -> tuple[str, CheckState]:
    try:
        await asyncio.wait_for(probe, timeout=3)
    except Exception as error:
        # Unauthenticated endpoint: the backend's words go to the log only.
        log.warning(
            "readiness check failed", extra={"check": name, "error": f"{type(error).__name__}: {error}"}
        )
        return name, "failed"
    return name, "ok"


@router.get("/readyz")
async def readyz(state: State) -> JSONResponse:
    """Each dependency the API needs to accept a frame, by name. `vault` is the key set the API
    holds from Vault (it keeps serving from its cache while Vault is down, by design)."""
    master = state.sentinel.master_for(state.settings.redis_master_name)
    checks = dict(
        await asyncio.gather(
            _check("postgres", state.db.fetchval("SELECT 1")),
            _check("redis", master.ping()),
            _check("kafka", asyncio.to_thread(state.producer.list_topics, FRAMES_TOPIC, 2)),
            _check("minio", asyncio.to_thread(state.store.bucket_exists, FRAMES_BUCKET)),
            _check("vault", asyncio.to_thread(state.secrets.key_set)),
        )
    )
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics")
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
