"""Frames: accept an image, store it, record it, publish its event; 202 only once Kafka has it.

Idempotency without overwrite: the frame id is uuid5(camera, Idempotency-Key). When that frame
is already recorded, nothing is stored: its event is published again (which completes an
acceptance whose publish failed; the worker counts a frame once) and the answer is the first
frame's. Otherwise the object key carries a hash of the bytes, so a concurrent replay with other
bytes writes another object and can never overwrite the first; the frames row decides which
object is the frame, and the request that lost the insert removes its own object.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request, status
from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import UploadFile

from app.api.deps import State, frame_poster, require_camera
from app.api.images import Frame, FrameLimits, FrameRejectedError, check_frame
from app.api.metrics import FRAMES_ACCEPTED
from app.api.state import AppState
from app.common.apikeys import ApiKeyRecord
from app.common.contracts import FRAMES_BUCKET, FRAMES_TOPIC, FrameEvent, frame_id_for, frame_object_key

router = APIRouter(prefix="/v1/cameras/{camera_id}/frames", tags=["frames"])
log = logging.getLogger(__name__)
TIMESTAMP = TypeAdapter(datetime)
# The form is read by the route, after the caller is authorised (a File() parameter would make
# FastAPI read it before any dependency runs), with Starlette's multipart limits set tight.
FORM_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "JPEG or PNG"},
                        "captured_at": {"type": "string", "format": "date-time"},
                    },
                }
            }
        },
    }
}


@router.post("", status_code=status.HTTP_202_ACCEPTED, openapi_extra=FORM_SCHEMA)
async def post_frame(
    key: Annotated[ApiKeyRecord, Depends(frame_poster)],
    camera_id: str,
    request: Request,
    state: State,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> dict[str, Any]:
    await require_camera(state, camera_id)
    data, captured_at = await _read_form(request, state.settings.max_frame_bytes)
    try:
        frame = await check_frame(data, FrameLimits.from_settings(state.settings))
    except FrameRejectedError as error:
        raise HTTPException(error.status, error.reason) from error
    frame_id = frame_id_for(camera_id, idempotency_key)
    extra = {"camera_id": camera_id, "frame_id": str(frame_id), "key_id": key.id}
    try:
        first = await _recorded(state, frame_id) if idempotency_key else None
        if first is None:
            event, replayed = await _store_once(state, camera_id, frame_id, data, frame, captured_at)
        else:
            event, replayed = first, True
        await state.producer.send(FRAMES_TOPIC, camera_id, event.model_dump_json().encode())
    except Exception as error:
        # Nothing is acknowledged: the client retries with the same Idempotency-Key. The reason
        # is for the log, not for the caller.
        log.error("frame not accepted", extra={**extra, "error": f"{type(error).__name__}: {error}"})
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "frame not accepted, retry") from error
    if replayed:
        log.info("frame replayed", extra={**extra, "object_key": event.object_key})
    else:
        FRAMES_ACCEPTED.inc()
        log.info("frame accepted", extra={**extra, "object_key": event.object_key})
    return {"frame_id": str(event.frame_id), "object_key": event.object_key, "replayed": replayed}


async def _read_form(request: Request, max_bytes: int) -> tuple[bytes, datetime | None]:
    async with request.form(max_files=1, max_fields=1, max_part_size=1024) as form:
        upload = form.get("file")
        # Starlette's UploadFile: what request.form() builds (FastAPI's is a subclass it never makes).
        if not isinstance(upload, UploadFile):
            raise HTTPException(422, "the frame is missing: send it as the multipart file field 'file'")
        data = await upload.read(max_bytes + 1)
        raw_captured = form.get("captured_at")
    if raw_captured is None or raw_captured == "":
        return data, None
    try:
        captured_at = TIMESTAMP.validate_python(raw_captured)
    except ValidationError as error:
        raise HTTPException(422, "captured_at is not an ISO 8601 date-time") from error
    if captured_at.tzinfo is None:
        raise HTTPException(422, "captured_at must carry a time zone (ISO 8601, e.g. ...Z)")
    return data, captured_at


async def _recorded(state: AppState, frame_id: uuid.UUID) -> FrameEvent | None:
    row = await state.db.fetchrow(
        "SELECT camera_id, captured_at, object_key, content_type FROM frames WHERE id = $1", frame_id
    )
    return None if row is None else FrameEvent(frame_id=frame_id, **dict(row))


async def _store_once(
    state: AppState,
    camera_id: str,
    frame_id: uuid.UUID,
    data: bytes,
    frame: Frame,
    captured_at: datetime | None,
) -> tuple[FrameEvent, bool]:
    """Store the object, then record the frame unless another request recorded it first.
    Returns the recorded frame's event and whether it was the other request's."""
    content_hash = hashlib.sha256(data).hexdigest()[:16]
    key = frame_object_key(camera_id, frame_id, content_hash, frame.extension)
    event = FrameEvent(
        frame_id=frame_id,
        camera_id=camera_id,
        object_key=key,
        captured_at=captured_at or datetime.now(UTC),
        content_type=frame.content_type,
    )
    await asyncio.to_thread(
        state.store.put_object, FRAMES_BUCKET, key, io.BytesIO(data), len(data), frame.content_type
    )
    stored = await state.db.fetchval(
        """INSERT INTO frames (id, camera_id, captured_at, object_key, content_type, size_bytes)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING RETURNING object_key""",
        frame_id,
        camera_id,
        event.captured_at,
        key,
        frame.content_type,
        len(data),
    )
    if stored is not None:
        return event, False
    first = await _recorded(state, frame_id)
    if first is None:
        raise RuntimeError(f"frame {frame_id} conflicted on insert but is not recorded")
    if first.object_key != key:
        await asyncio.to_thread(state.store.remove_object, FRAMES_BUCKET, key)
    return first, True
