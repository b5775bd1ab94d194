"""/healthz (the process answers), /readyz (every dependency answers), /metrics."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.api.deps import State
from app.common.contracts import FRAMES_BUCKET, FRAMES_TOPIC

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _check(name: str, probe: Any) -> tuple[str, str | None]:
    try:
        await asyncio.wait_for(probe, timeout=3)
    except Exception as error:
        return name, f"{type(error).__name__}: {error}"
    return name, None


@router.get("/readyz")
async def readyz(state: State) -> JSONResponse:
    master = state.sentinel.master_for(state.settings.redis_master_name)
    checks = await asyncio.gather(
        _check("postgres", state.db.fetchval("SELECT 1")),
        _check("redis", master.ping()),
        _check("kafka", asyncio.to_thread(state.producer.list_topics, FRAMES_TOPIC, 2)),
        _check("minio", asyncio.to_thread(state.store.bucket_exists, FRAMES_BUCKET)),
        _check("vault", asyncio.to_thread(state.secrets.api_keys)),
    )
    failed = {name: error for name, error in checks if error}
    return JSONResponse(
        {"status": "ready" if not failed else "not ready", "failed": failed},
        status_code=503 if failed else 200,
    )


@router.get("/metrics")
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
