"""Cameras as the API registers and returns them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

CAMERA_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"


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
