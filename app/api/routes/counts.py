"""Vehicle counts: per class per minute from vehicle_counts_1m, latest from Redis."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status
from redis.exceptions import RedisError

from app.api.deps import Reader, State, require_camera
from app.api.routes.timerange import time_range
from app.common.contracts import latest_counts_key

router = APIRouter(prefix="/v1/cameras/{camera_id}/counts", tags=["counts"])
log = logging.getLogger(__name__)


@router.get("")
async def per_minute_counts(
    _: Reader,
    camera_id: str,
    state: State,
    window: Annotated[tuple[datetime, datetime], Depends(time_range)],
) -> dict[str, Any]:
    await require_camera(state, camera_id)
    rows = await state.db.fetch(
        """SELECT bucket, class, vehicles FROM vehicle_counts_1m
           WHERE camera_id = $1 AND bucket >= $2 AND bucket < $3 ORDER BY bucket, class""",
        camera_id,
        window[0],
        window[1],
    )
    return {"camera_id": camera_id, "counts": [dict(row) for row in rows]}


@router.get("/latest")
async def latest_counts(_: Reader, camera_id: str, state: State) -> dict[str, Any]:
    await require_camera(state, camera_id)
    try:
        replica = state.sentinel.slave_for(state.settings.redis_master_name)
        raw = await replica.hgetall(latest_counts_key(camera_id))
    except RedisError as error:
        # The reason goes to the log; the caller learns only that it may retry.
        log.warning("latest counts unavailable", extra={"camera_id": camera_id, "error": str(error)})
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "latest counts unavailable, retry"
        ) from error
    fields = {k.decode(): v.decode() for k, v in raw.items()}
    frame = fields.pop("frame_id", None)
    at = fields.pop("captured_at", None)
    return {
        "camera_id": camera_id,
        "frame_id": frame,
        "captured_at": at,
        "counts": {k: int(v) for k, v in fields.items()},
    }
