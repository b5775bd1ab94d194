"""What the API, the ingest and the worker agree on: the topics and buckets they use (named in
infrastructure/, read through infra.facts), the Redis keys, and every message they exchange.

Each imports this module; none imports another.
"""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from infra.facts.buckets import buckets
from infra.facts.topics import topics

# Topics, by the role each plays (infrastructure/kafka/topics.yaml).
FRAMES_TOPIC = topics().topics.camera_events.name
DETECTIONS_TOPIC = topics().topics.vehicle_detections.name
ALERTS_TOPIC = topics().topics.alerts.name
DEAD_LETTERS_TOPIC = topics().topics.dead_letters.name
# Buckets, likewise (infrastructure/minio/buckets.yaml).
FRAMES_BUCKET = buckets().buckets.frames.name
MODELS_BUCKET = buckets().buckets.models.name

FRAME_NAMESPACE = uuid.UUID("5b0f6c1e-8a4d-4c61-9a55-6f3f0c2d7e11")


def frame_id_for(camera_id: str, idempotency_key: str | None) -> uuid.UUID:
    """A retry with the same Idempotency-Key gets the same frame id, so it is a no-op."""
    if idempotency_key:
        return uuid.uuid5(FRAME_NAMESPACE, f"{camera_id}/{idempotency_key}")
    return uuid.uuid4()


def frame_object_key(camera_id: str, frame_id: uuid.UUID, content_hash: str, extension: str) -> str:
    """Where a frame's bytes go: the content hash in the name means two requests that share a
    frame id but not their bytes can never overwrite each other's object."""
    return f"frames/{camera_id}/{frame_id}-{content_hash}.{extension}"


def latest_counts_key(camera_id: str) -> str:
    """The Redis hash of a camera's latest per-class counts (written by the worker, read by the API)."""
    return f"its:counts:latest:{camera_id}"


def stream_health_key(camera_id: str) -> str:
    """The Redis hash of a streaming camera's health (written by the ingest, read by the API)."""
    return f"its:ingest:camera:{camera_id}"


# The ingest's replicas: a sorted set of replica ids scored by when each one's heartbeat expires.
INGEST_MEMBERS_KEY = "its:ingest:members"


def stream_frame_key(slot_start_ms: int) -> str:
    """The idempotency key of a frame sampled from a stream: its camera's sample slot, named by
    the slot's start in wall-clock milliseconds. Two readers of one camera (a handover, a
    reconnect) that sample the same slot make the same frame id, so it is recorded once."""
    return f"stream@{slot_start_ms}"


def rate_limit_key(key_digest: str, window: int) -> str:
    """The Redis counter of one API key's requests in one one-minute window."""
    return f"its:ratelimit:{key_digest}:{window}"


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FrameEvent(_Message):
    """camera-events: one accepted frame; everything the worker needs to fetch and place it."""

    frame_id: uuid.UUID
    camera_id: str
    object_key: str
    captured_at: datetime
    content_type: str


class Detection(_Message):
    cls: str
    confidence: float
    x1: float
    y1: float
    x2: float
    y2: float


class DetectionEvent(_Message):
    """vehicle-detections: what the worker found in one frame."""

    frame_id: uuid.UUID
    camera_id: str
    captured_at: datetime
    detections: list[Detection]


class AlertEvent(DetectionEvent):
    """alerts: a frame whose vehicle count reached its camera's congestion threshold."""

    kind: Literal["congestion"] = "congestion"
    vehicles: int = Field(ge=0)
    threshold: int = Field(ge=1)


# Why the worker can never process a camera-events message (each a label of
# its_worker_dead_letters_total and a section of docs/runbooks/dead-letters.md).
DeadLetterReason = Literal["undecodable_event", "object_missing", "undecodable_image"]
DEAD_LETTER_REASONS: tuple[DeadLetterReason, ...] = get_args(DeadLetterReason)
# A camera event is a few hundred bytes; whatever is larger is kept only up to this bound.
DEAD_LETTER_MAX_VALUE_BYTES = 64 * 1024
DEAD_LETTER_MAX_DETAIL_CHARS = 1000


class DeadLetterEvent(_Message):
    """camera-events-dead-letters: a message the worker set aside, with what is needed to inspect
    it and to replay it onto its topic once the cause is fixed."""

    topic: str
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)
    key: str | None  # the original key as text (the camera id, for events the API wrote)
    value_base64: str  # the original value, up to DEAD_LETTER_MAX_VALUE_BYTES
    value_size: int = Field(ge=0)  # the original value's size in bytes
    reason: DeadLetterReason
    detail: str = Field(max_length=DEAD_LETTER_MAX_DETAIL_CHARS)
    frame_id: uuid.UUID | None = None  # known once the event parsed
    camera_id: str | None = None
    object_key: str | None = None
    dead_lettered_at: datetime

    @property
    def value_truncated(self) -> bool:
        return self.value_size > len(self.original_value())

    def original_value(self) -> bytes:
        return base64.b64decode(self.value_base64)
