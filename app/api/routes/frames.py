"""Frames: accept an image, store it, record it, publish its event; 202 only once Kafka has it."""

from __future__ import annotations

import asyncio
import io
import logging
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Header, HTTPException, UploadFile, status

from app.api.deps import State, caller, require_camera
from app.api.images import FrameRejectedError, validate_frame
from app.api.metrics import FRAMES_ACCEPTED
from app.api.state import AppState
from app.common.clients import produce_and_wait
from app.common.contracts import FRAMES_BUCKET, FRAMES_TOPIC, FrameEvent, frame_id_for, frame_object_key
from app.common.secrets import ApiKey

router = APIRouter(prefix="/v1/cameras/{camera_id}/frames", tags=["frames"])
log = logging.getLogger(__name__)


@router.post("", status_code=status.HTTP_202_ACCEPTED)
async def post_frame(
    camera_id: str,
    state: State,
    _: Annotated[ApiKey, Depends(caller("operator", "camera"))],
    file: Annotated[UploadFile, File(description="the frame, JPEG or PNG")],
    captured_at: Annotated[datetime | None, Form()] = None,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> dict[str, Any]:
    data = await file.read(state.settings.max_frame_bytes + 1)
    try:
        content_type, extension = validate_frame(data, state.settings.max_frame_bytes)
    except FrameRejectedError as error:
        raise HTTPException(error.status, error.reason) from error
    if captured_at is not None and captured_at.tzinfo is None:
        raise HTTPException(422, "captured_at must carry a time zone (ISO 8601, e.g. ...Z)")
    await require_camera(state, camera_id)
    captured = captured_at or datetime.now(UTC)
    frame_id = frame_id_for(camera_id, idempotency_key)
    key = frame_object_key(camera_id, frame_id, extension)
    extra = {"camera_id": camera_id, "frame_id": str(frame_id)}
    try:
        await _store(state, key, data, content_type)
        await state.db.execute(
            """INSERT INTO frames (id, camera_id, captured_at, object_key, content_type, size_bytes)
               VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING""",
            frame_id,
            camera_id,
            captured,
            key,
            content_type,
            len(data),
        )
        event = FrameEvent(
            frame_id=frame_id,
            camera_id=camera_id,
            object_key=key,
            captured_at=captured,
            content_type=content_type,
        )
        await produce_and_wait(state.producer, FRAMES_TOPIC, camera_id, event.model_dump_json().encode())
    except Exception as error:
        # Nothing is acknowledged: the client retries with the same Idempotency-Key.
        log.error("frame not accepted", extra={**extra, "error": str(error)})
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"frame not accepted, retry: {error}"
        ) from error
    FRAMES_ACCEPTED.inc()
    log.info("frame accepted", extra=extra)
    return {"frame_id": str(frame_id), "object_key": key}


async def _store(state: AppState, key: str, data: bytes, content_type: str) -> None:
    await asyncio.to_thread(
        state.store.put_object, FRAMES_BUCKET, key, io.BytesIO(data), len(data), content_type
    )
