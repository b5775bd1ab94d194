"""Cameras: register, list, get."""

from __future__ import annotations

from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, status

from app.api.deps import State, caller, require_camera
from app.common.cameras import Camera, CameraIn
from app.common.secrets import ApiKey

router = APIRouter(prefix="/v1/cameras", tags=["cameras"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def register_camera(
    camera: CameraIn, state: State, _: Annotated[ApiKey, Depends(caller("operator"))]
) -> Camera:
    try:
        row = await state.db.fetchrow(
            """INSERT INTO cameras (id, name, location, latitude, longitude, congestion_threshold)
               VALUES ($1, $2, $3, $4, $5, $6) RETURNING *""",
            camera.id,
            camera.name,
            camera.location,
            camera.latitude,
            camera.longitude,
            camera.congestion_threshold,
        )
    except asyncpg.UniqueViolationError as error:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"camera {camera.id!r} is already registered"
        ) from error
    return Camera.model_validate(dict(row))


@router.get("")
async def list_cameras(state: State, _: Annotated[ApiKey, Depends(caller())]) -> list[Camera]:
    rows = await state.db.fetch("SELECT * FROM cameras ORDER BY id LIMIT 1000")
    return [Camera.model_validate(dict(row)) for row in rows]


@router.get("/{camera_id}")
async def get_camera(camera_id: str, state: State, _: Annotated[ApiKey, Depends(caller())]) -> dict[str, Any]:
    return await require_camera(state, camera_id)
