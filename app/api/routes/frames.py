"""Frames: accept an uploaded image and hand it to the shared frame path (app/common/frames.py:
stored once, recorded, its event published); 202 only once Kafka has it. This route keeps the
HTTP concerns: who may post, the form, the image check, the status codes.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request, status
from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import UploadFile

from app.api.deps import State, frame_poster, require_camera
from app.api.images import FrameLimits, FrameRejectedError, check_frame
from app.api.metrics import FRAMES_ACCEPTED
from app.common.apikeys import ApiKeyRecord
from app.common.contracts import frame_id_for
from app.common.frames import IncomingFrame, accept_frame

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
        incoming = IncomingFrame(camera_id, frame_id, data, frame, captured_at)
        accepted = await accept_frame(state.frame_sinks, incoming, maybe_recorded=bool(idempotency_key))
    except Exception as error:
        # Nothing is acknowledged: the client retries with the same Idempotency-Key. The reason
        # is for the log, not for the caller.
        log.error("frame not accepted", extra={**extra, "error": f"{type(error).__name__}: {error}"})
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "frame not accepted, retry") from error
    event = accepted.event
    if accepted.replayed:
        log.info("frame replayed", extra={**extra, "object_key": event.object_key})
    else:
        FRAMES_ACCEPTED.inc()
        log.info("frame accepted", extra={**extra, "object_key": event.object_key})
    return {"frame_id": str(event.frame_id), "object_key": event.object_key, "replayed": accepted.replayed}


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
