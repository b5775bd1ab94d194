"""Cameras as the API registers and returns them, with the stream a camera may carry."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from infra.facts.vault import vault_layout

CAMERA_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"
# Where a stream's credentials live in Vault (vault.yaml, stream_secrets): the ingest's policy
# reads that prefix (policies/its-ingest.hcl). The same bounds are CHECKs in SQL (migration 0003).
STREAM_SECRET_PREFIX = vault_layout().stream_secrets.prefix
STREAM_SECRET_PATTERN = rf"^{STREAM_SECRET_PREFIX}[a-z0-9][a-z0-9_-]{{0,62}}$"
STREAM_SCHEMES = ("rtsp", "rtsps", "http", "https")
STREAM_URL_MAX_LENGTH = 2048
MIN_SAMPLE_FPS = 0.1
MAX_SAMPLE_FPS = 10.0
StreamState = Literal["online", "degraded", "offline"]
STREAM_STATES: tuple[StreamState, ...] = ("online", "degraded", "offline")


def check_stream_url(url: str) -> str:
    """A stream URL the ingest may open: rtsp(s) or http(s) MJPEG, a host, no credentials (they
    are a Vault reference, `stream_secret`), nothing that is not printable ASCII."""
    if not url.isascii() or not url.isprintable() or " " in url:
        raise ValueError("stream_url must be printable ASCII without spaces")
    parts = urlsplit(url)
    if parts.scheme not in STREAM_SCHEMES:
        raise ValueError(f"stream_url must start with one of {', '.join(s + '://' for s in STREAM_SCHEMES)}")
    if "@" in parts.netloc:
        raise ValueError(
            "stream_url must not carry credentials (user:password@): write them to Vault under "
            f"{STREAM_SECRET_PREFIX}<name> and give that path as stream_secret"
        )
    try:
        port = parts.port
    except ValueError as error:
        raise ValueError(f"stream_url has an invalid port: {error}") from error
    if not parts.hostname or port == 0:
        raise ValueError("stream_url must name a host (and a port from 1 to 65535, if any)")
    return url


# Each field's bounds, once: a registration (CameraIn) and a change (CameraUpdate) take the same.
CameraName = Annotated[str, Field(min_length=1, max_length=200)]
Location = Annotated[str, Field(max_length=200)]
Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]
CongestionThreshold = Annotated[int, Field(gt=0, le=10_000)]
StreamUrl = Annotated[str, Field(max_length=STREAM_URL_MAX_LENGTH), AfterValidator(check_stream_url)]
StreamSecret = Annotated[str, Field(pattern=STREAM_SECRET_PATTERN)]
SampleFps = Annotated[float, Field(ge=MIN_SAMPLE_FPS, le=MAX_SAMPLE_FPS)]


class CameraIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=CAMERA_ID_PATTERN)
    name: CameraName
    location: Location | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    congestion_threshold: CongestionThreshold = 20
    # A camera that streams: the ingest reads this URL (its credentials from Vault, at
    # stream_secret) and samples sample_fps frames per second from it.
    stream_url: StreamUrl | None = None
    stream_secret: StreamSecret | None = None
    sample_fps: SampleFps = 1.0
    # A disabled (retired) camera stays registered with its frames, but its stream is not read
    # and CameraSilent does not watch it.
    enabled: bool = True

    @model_validator(mode="after")
    def _secret_needs_a_stream(self) -> CameraIn:
        if self.stream_secret is not None and self.stream_url is None:
            raise ValueError("stream_secret is given without a stream_url")
        return self


class CameraUpdate(BaseModel):
    """What an operator may change of a registered camera (its id never): only the fields the
    request names change. `stream_url: null` stops the camera streaming (and drops its
    `stream_secret`), `enabled: false` retires it; the ingest applies a change at its next read
    of the cameras."""

    model_config = ConfigDict(extra="forbid")
    name: CameraName | None = None
    location: Location | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    congestion_threshold: CongestionThreshold | None = None
    stream_url: StreamUrl | None = None
    stream_secret: StreamSecret | None = None
    sample_fps: SampleFps | None = None
    enabled: bool | None = None

    @model_validator(mode="after")
    def _a_change_that_can_be_stored(self) -> CameraUpdate:
        if not self.model_fields_set:
            raise ValueError("nothing to change: name at least one field")
        # Columns that are NOT NULL: null would mean "unset", which they cannot be.
        for name in ("name", "congestion_threshold", "sample_fps", "enabled"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        if "stream_url" in self.model_fields_set and self.stream_url is None and self.stream_secret:
            raise ValueError("stream_secret is given while stream_url is cleared")
        return self

    def changes(self) -> dict[str, object]:
        """The columns to set, by name (the stream's secret goes with a cleared stream)."""
        changed: dict[str, object] = {name: getattr(self, name) for name in sorted(self.model_fields_set)}
        if "stream_url" in changed and changed["stream_url"] is None:
            changed["stream_secret"] = None
        return changed


class StreamStatus(BaseModel):
    """What the ingest last reported of a camera's stream (offline when nobody reports)."""

    state: StreamState
    sampled_fps: float = Field(ge=0)  # over the ingest's recent window
    last_frame_at: datetime | None = None
    reported_at: datetime | None = None
    reader: str | None = None  # the ingest replica that reads it


class Camera(CameraIn):
    created_at: datetime
    stream: StreamStatus | None = None  # cameras with a stream_url only
