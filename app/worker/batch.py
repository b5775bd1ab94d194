"""One batch of camera-events, split into the frames the worker can process and the messages it
never can (dead letters), message by message. Pure: no broker, database or store of its own;
the consumer hands in the batch's messages and a callable that fetches a frame object.

A failure is permanent when it lies in the message itself: redelivering it fails the same way
forever. Those become dead letters. Anything else (the store unreachable or answering 5xx, a
broken connection mid-read) propagates, and the consumer retries the whole batch.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from confluent_kafka import Message
from minio.error import S3Error
from minio.helpers import check_object_name
from PIL import Image
from pydantic import ValidationError

from app.common.contracts import (
    DEAD_LETTER_MAX_DETAIL_CHARS,
    DEAD_LETTER_MAX_VALUE_BYTES,
    DeadLetterEvent,
    DeadLetterReason,
    FrameEvent,
)

Fetch = Callable[[str], bytes]  # object key in the frames bucket -> the object's bytes
# The store's answers that describe the object, not the store: asking again cannot help.
MISSING_OBJECT_CODES = frozenset({"NoSuchKey"})
# PIL's default decompression-bomb bound, pinned here: PIL's own is a global any library may lift.
MAX_FRAME_PIXELS = 89_478_485


class PermanentFailure(Exception):
    def __init__(self, reason: DeadLetterReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class DecodedFrame:
    event: FrameEvent
    image: Image.Image  # RGB, fully decoded


class Split(NamedTuple):
    frames: list[DecodedFrame]
    dead_letters: list[DeadLetterEvent]


def split_batch(messages: Iterable[Message], fetch: Fetch, now: datetime | None = None) -> Split:
    """Parse, fetch and decode each message; a permanent failure dead-letters that message only.

    Raises whatever transient fault `fetch` raises (the batch is then retried as a whole).
    """
    frames: list[DecodedFrame] = []
    dead_letters: list[DeadLetterEvent] = []
    for message in messages:
        event: FrameEvent | None = None
        try:
            event = parse_event(message.value())
            check_key(event)
            frames.append(DecodedFrame(event, decode_image(fetch_object(fetch, event.object_key))))
        except PermanentFailure as failure:
            dead_letters.append(dead_letter(message, failure, event, now or datetime.now(UTC)))
    return Split(frames, dead_letters)


def parse_event(value: bytes | str | None) -> FrameEvent:
    try:
        return FrameEvent.model_validate_json(value or b"")
    except ValidationError as error:
        raise PermanentFailure("undecodable_event", f"not a FrameEvent: {error}") from error


def check_key(event: FrameEvent) -> None:
    """Refuse an object key the store client refuses (empty, a "." or ".." segment), by its own rule."""
    try:
        check_object_name(event.object_key)
    except ValueError as error:
        raise PermanentFailure("undecodable_event", f"object key {event.object_key!r}: {error}") from error


def fetch_object(fetch: Fetch, object_key: str) -> bytes:
    try:
        return fetch(object_key)
    except S3Error as error:
        if error.code in MISSING_OBJECT_CODES:
            detail = f"{object_key}: {error.code}: {error.message}"
            raise PermanentFailure("object_missing", detail) from error
        raise  # AccessDenied, 5xx, ...: the store's state, not the message's


def decode_image(data: bytes) -> Image.Image:
    """Decode the whole image now (load), so a bad one fails here, alone, not in a batch's inference.

    Decoding depends on the bytes alone: whatever it raises, it raises on every redelivery.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            # Image.open reads the header only; refuse a decompression bomb before load() allocates
            # it (PIL itself only warns between its bound and twice its bound).
            if image.width * image.height > MAX_FRAME_PIXELS:
                size = f"{image.width}x{image.height}"
                raise Image.DecompressionBombError(f"{size} pixels exceed {MAX_FRAME_PIXELS}")
            image.load()
            return image.convert("RGB")
    except MemoryError:
        raise  # the worker's state, not the image's (bombs are refused above)
    except Exception as error:  # any decoder error is the image's
        raise PermanentFailure("undecodable_image", f"{type(error).__name__}: {error}") from error


def dead_letter(
    message: Message, failure: PermanentFailure, event: FrameEvent | None, now: datetime
) -> DeadLetterEvent:
    value = _as_bytes(message.value())
    key = message.key()
    return DeadLetterEvent(
        topic=message.topic() or "",
        partition=message.partition() or 0,
        offset=message.offset() or 0,
        key=None if key is None else _as_bytes(key).decode("utf-8", errors="backslashreplace"),
        value_base64=base64.b64encode(value[:DEAD_LETTER_MAX_VALUE_BYTES]).decode("ascii"),
        value_size=len(value),
        reason=failure.reason,
        detail=failure.detail[:DEAD_LETTER_MAX_DETAIL_CHARS],
        frame_id=event.frame_id if event else None,
        camera_id=event.camera_id if event else None,
        object_key=event.object_key if event else None,
        dead_lettered_at=now,
    )


def _as_bytes(value: bytes | str | None) -> bytes:
    if value is None:
        return b""
    return value.encode() if isinstance(value, str) else value
