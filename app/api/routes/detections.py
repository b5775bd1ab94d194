"""Detections of a camera in a time range."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from app.api.deps import Reader, State, require_camera
from app.api.routes.timerange import time_range

router = APIRouter(prefix="/v1/cameras/{camera_id}/detections", tags=["detections"])


@router.get("")
async def list_detections(
    _: Reader,
    camera_id: str,
    state: State,
    window: Annotated[tuple[datetime, datetime], Depends(time_range)],
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> dict[str, Any]:
    await require_camera(state, camera_id)
    rows = await state.db.fetch(
        """SELECT ts, frame_id, class, confidence, x1, y1, x2, y2 FROM detections
           WHERE camera_id = $1 AND ts >= $2 AND ts < $3 ORDER BY ts DESC LIMIT $4""",
        camera_id,
        window[0],
        window[1],
        limit,
    )
    return {"camera_id": camera_id, "detections": [dict(row) for row in rows]}
