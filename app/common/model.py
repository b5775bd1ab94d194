"""The data model shared by the API and the worker."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

CAMERA_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"
FRAME_NAMESPACE = uuid.UUID("5b0f6c1e-8a4d-4c61-9a55-6f3f0c2d7e11")


def frame_id_for(camera_id: str, idempotency_key: str | None) -> uuid.UUID:
    """A retry with the same Idempotency-Key gets the same frame id, so it is a no-op."""
    if idempotency_key:
        return uuid.uuid5(FRAME_NAMESPACE, f"{camera_id}/{idempotency_key}")
    return uuid.uuid4()


class CameraIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=CAMERA_ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    location: str | None = Field(default=None, max_length=200)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    congestion_threshold: int = Field(default=20, gt=0, le=10_000)


class Camera(CameraIn):
    created_at: datetime


class FrameEvent(BaseModel):
    """The camera-events message: everything the worker needs to fetch and place a frame."""

    frame_id: uuid.UUID
    camera_id: str
    object_key: str
    captured_at: datetime
    content_type: str
