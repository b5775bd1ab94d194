"""Cameras: register, change, list (optionally by stream state), get (with its stream's health).
There is no delete: frames and detections keep their camera (a foreign key), and the API's
known-camera cache relies on a registered camera staying registered."""

from __future__ import annotations

import logging
import time

import asyncpg
from fastapi import APIRouter, HTTPException, status
from redis.exceptions import RedisError

from app.api.deps import Operator, Reader, State
from app.api.state import AppState
from app.common.cameras import Camera, CameraIn, CameraUpdate, StreamState
from app.common.contracts import stream_health_key
from app.common.streams import stream_status

router = APIRouter(prefix="/v1/cameras", tags=["cameras"])
log = logging.getLogger(__name__)
LIST_LIMIT = 1000


@router.post("", status_code=status.HTTP_201_CREATED)
async def register_camera(key: Operator, camera: CameraIn, state: State) -> Camera:
    try:
        row = await state.db.fetchrow(
            """INSERT INTO cameras (id, name, location, latitude, longitude, congestion_threshold,
                                    stream_url, stream_secret, sample_fps, enabled)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING *""",
            camera.id,
            camera.name,
            camera.location,
            camera.latitude,
            camera.longitude,
            camera.congestion_threshold,
            camera.stream_url,
            camera.stream_secret,
            camera.sample_fps,
            camera.enabled,
        )
    except asyncpg.UniqueViolationError as error:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"camera {camera.id!r} is already registered"
        ) from error
    state.cameras.add(camera.id)
    log.info("camera registered", extra={"camera_id": camera.id, "key_id": key.id})
    return (await _with_streams(state, [row]))[0]


@router.patch("/{camera_id}")
async def update_camera(key: Operator, camera_id: str, update: CameraUpdate, state: State) -> Camera:
    """Change a camera: move or stop its stream, its sample rate, its name or threshold; retire
    it (`enabled: false`) or bring it back."""
    changes = update.changes()
    # Column names from the model's own fields only, never from the request's keys.
    assignments = ", ".join(f"{column} = ${number}" for number, column in enumerate(changes, start=2))
    try:
        row = await state.db.fetchrow(
            f"UPDATE cameras SET {assignments} WHERE id = $1 RETURNING *",  # noqa: S608 - model field names
            camera_id,
            *changes.values(),
        )
    except asyncpg.CheckViolationError as error:
        # What the request alone cannot show, the stored row does (the only CHECK the model does
        # not hold already): a secret given to a camera without a stream.
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"camera {camera_id!r}: stream_secret needs a stream_url ({error.constraint_name})",
        ) from error
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown camera {camera_id!r}")
    log.info("camera changed", extra={"camera_id": camera_id, "key_id": key.id, "fields": sorted(changes)})
    return (await _with_streams(state, [row]))[0]


@router.get("")
async def list_cameras(_: Reader, state: State, stream_state: StreamState | None = None) -> list[Camera]:
    """Every camera (up to 1000), or with `stream_state` only the streaming cameras in that state."""
    where = "" if stream_state is None else "WHERE stream_url IS NOT NULL AND enabled"
    rows = await state.db.fetch(f"SELECT * FROM cameras {where} ORDER BY id LIMIT {LIST_LIMIT}")  # noqa: S608 - constants only
    cameras = await _with_streams(state, rows)
    if stream_state is None:
        return cameras
    return [camera for camera in cameras if camera.stream is not None and camera.stream.state == stream_state]


@router.get("/{camera_id}")
async def get_camera(_: Reader, camera_id: str, state: State) -> Camera:
    row = await state.db.fetchrow("SELECT * FROM cameras WHERE id = $1", camera_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown camera {camera_id!r}")
    state.cameras.add(camera_id)
    return (await _with_streams(state, [row]))[0]


async def _with_streams(state: AppState, rows: list[asyncpg.Record]) -> list[Camera]:
    """The cameras of `rows`, each streaming one with what the ingest last reported of it (from
    a Redis replica, in one round trip). A disabled camera's stream is not read: no status."""
    streaming = [row["id"] for row in rows if row["stream_url"] is not None and row["enabled"]]
    reports: dict[str, dict[str, str]] = {}
    if streaming:
        try:
            replica = state.sentinel.slave_for(state.settings.redis_master_name)
            async with replica.pipeline(transaction=False) as pipe:
                for camera in streaming:
                    pipe.hgetall(stream_health_key(camera))
                raws = await pipe.execute()
        except RedisError as error:
            log.warning("stream health unavailable", extra={"error": str(error)})
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, "stream health unavailable, retry"
            ) from error
        reports = {
            camera: {k.decode(): v.decode() for k, v in raw.items()}
            for camera, raw in zip(streaming, raws, strict=True)
        }
    now, offline_after = time.time(), state.settings.stream_offline_after_seconds
    cameras = []
    for row in rows:
        camera = Camera.model_validate(dict(row))
        if camera.stream_url is not None and camera.enabled:
            camera.stream = stream_status(reports.get(camera.id, {}), now, offline_after)
        cameras.append(camera)
    return cameras
