"""Cameras: register, list, get."""

from __future__ import annotations

import logging

import asyncpg
from fastapi import APIRouter, HTTPException, status

from app.api.deps import Operator, Reader, State
from app.common.cameras import Camera, CameraIn

router = APIRouter(prefix="/v1/cameras", tags=["cameras"])
log = logging.getLogger(__name__)


@router.post("", status_code=status.HTTP_201_CREATED)
async def register_camera(key: Operator, camera: CameraIn, state: State) -> Camera:
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
    state.cameras.add(camera.id)
    log.info("camera registered", extra={"camera_id": camera.id, "key_id": key.id})
    return Camera.model_validate(dict(row))


@router.get("")
async def list_cameras(_: Reader, state: State) -> list[Camera]:
    rows = await state.db.fetch("SELECT * FROM cameras ORDER BY id LIMIT 1000")
    return [Camera.model_validate(dict(row)) for row in rows]


@router.get("/{camera_id}")
async def get_camera(_: Reader, camera_id: str, state: State) -> Camera:
    row = await state.db.fetchrow("SELECT * FROM cameras WHERE id = $1", camera_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown camera {camera_id!r}")
    state.cameras.add(camera_id)
    return Camera.model_validate(dict(row))
