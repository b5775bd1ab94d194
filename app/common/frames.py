"""The frame path every source shares: store a frame once, record it, publish its event.

The API (an uploaded frame) and the stream ingest (a frame sampled from a camera's stream) both
call `accept_frame`; each keeps its own concerns (HTTP, decoding) and neither calls the other.

Idempotency without overwrite: the frame id is uuid5(camera, key). When that frame is already
recorded, nothing is stored: its event is published again (which completes an acceptance whose
publish failed; the worker counts a frame once) and the answer is the first frame's. Otherwise
the object key carries a hash of the bytes, so a concurrent replay with other bytes writes
another object and can never overwrite the first; the frames row decides which object is the
frame, and the writer that lost the insert removes its own object.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from minio import Minio

from app.common.clients import AcknowledgedProducer
from app.common.contracts import FRAMES_BUCKET, FRAMES_TOPIC, FrameEvent, frame_object_key


@dataclass(frozen=True)
class Frame:
    """An image that decoded in full: its type and size."""

    content_type: str
    extension: str
    width: int
    height: int


@dataclass(frozen=True)
class FrameSinks:
    """Where an accepted frame goes: the object store, the frames table, camera-events."""

    db: asyncpg.Pool
    store: Minio
    producer: AcknowledgedProducer


@dataclass(frozen=True)
class IncomingFrame:
    """A frame to accept: its camera, its id (uuid5 of an idempotency key, or random), its bytes
    and what they decoded as, and when it was captured (None: now)."""

    camera_id: str
    frame_id: uuid.UUID
    data: bytes
    frame: Frame
    captured_at: datetime | None


@dataclass(frozen=True)
class Accepted:
    event: FrameEvent
    replayed: bool  # the frame id was recorded before: this call stored nothing


async def accept_frame(
    sinks: FrameSinks, incoming: IncomingFrame, *, maybe_recorded: bool = True
) -> Accepted:
    """Store and record the frame once, then publish its event and wait for Kafka's
    acknowledgement (acks=all). Raises when any step fails: nothing is acknowledged then, and
    the caller may retry with the same frame id. `maybe_recorded=False` (a random frame id)
    skips the lookup of an earlier recording."""
    first = await recorded(sinks.db, incoming.frame_id) if maybe_recorded else None
    accepted = Accepted(first, True) if first is not None else await _store_once(sinks, incoming)
    await sinks.producer.send(FRAMES_TOPIC, incoming.camera_id, accepted.event.model_dump_json().encode())
    return accepted


async def recorded(db: asyncpg.Pool, frame_id: uuid.UUID) -> FrameEvent | None:
    row = await db.fetchrow(
        "SELECT camera_id, captured_at, object_key, content_type FROM frames WHERE id = $1", frame_id
    )
    return None if row is None else FrameEvent(frame_id=frame_id, **dict(row))


async def _store_once(sinks: FrameSinks, incoming: IncomingFrame) -> Accepted:
    """Store the object, then record the frame unless another writer recorded it first."""
    camera_id, frame_id, data, frame = incoming.camera_id, incoming.frame_id, incoming.data, incoming.frame
    content_hash = hashlib.sha256(data).hexdigest()[:16]
    key = frame_object_key(camera_id, frame_id, content_hash, frame.extension)
    event = FrameEvent(
        frame_id=frame_id,
        camera_id=camera_id,
        object_key=key,
        captured_at=incoming.captured_at or datetime.now(UTC),
        content_type=frame.content_type,
    )
    await asyncio.to_thread(
        sinks.store.put_object, FRAMES_BUCKET, key, io.BytesIO(data), len(data), frame.content_type
    )
    stored = await sinks.db.fetchval(
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
        return Accepted(event, False)
    first = await recorded(sinks.db, frame_id)
    if first is None:
        raise RuntimeError(f"frame {frame_id} conflicted on insert but is not recorded")
    if first.object_key != key:
        await asyncio.to_thread(sinks.store.remove_object, FRAMES_BUCKET, key)
    return Accepted(first, True)
