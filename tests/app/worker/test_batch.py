"""The worker's batch logic, with no servers: real Kafka messages, real event bytes and real
images. Each message that can never be processed becomes a dead letter with its reason, the
good frames of the same batch come through, and a transient fault raises (the batch is retried)."""

from __future__ import annotations

import io
import struct
import uuid
import zlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
import urllib3
from confluent_kafka import Message
from minio.error import S3Error
from PIL import Image

from app.common.contracts import (
    DEAD_LETTER_MAX_VALUE_BYTES,
    FRAMES_TOPIC,
    DeadLetterEvent,
    FrameEvent,
    frame_object_key,
)
from app.worker.batch import split_batch

SAMPLE = Path(__file__).resolve().parents[3] / "app" / "worker" / "samples" / "street-0.jpg"
CAMERA = "cam-1"
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _event(object_key: str | None = None) -> FrameEvent:
    frame_id = uuid.uuid4()
    return FrameEvent(
        frame_id=frame_id,
        camera_id=CAMERA,
        object_key=object_key or frame_object_key(CAMERA, frame_id, "0" * 16, "jpg"),
        captured_at=NOW,
        content_type="image/jpeg",
    )


def _message(value: bytes | None, offset: int, key: bytes | None = CAMERA.encode()) -> Message:
    return Message(topic=FRAMES_TOPIC, partition=2, offset=offset, key=key, value=value)


def _encode(image: Image.Image, kind: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, kind)
    return buffer.getvalue()


def _truncated_jpeg() -> bytes:
    """A real JPEG cut in half: its header opens, its scan data ends early."""
    whole = SAMPLE.read_bytes()
    return whole[: len(whole) // 2]


def _png_bomb(side: int = 30000) -> bytes:
    """A valid 1-bit PNG of side x side pixels, all black: ~110 KB that decode to 900 Mpixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def _s3_error(code: str, status: int) -> S3Error:
    return S3Error(
        urllib3.HTTPResponse(status=status),
        code,
        f"{code} from the store",
        "/its-video/frames/x.jpg",
        "request-1",
        "host-1",
        bucket_name="its-video",
        object_name="frames/x.jpg",
    )


class Store:
    """The frames bucket's contents as the fetch callable sees them (a dict, no server)."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put(self, event: FrameEvent, data: bytes) -> FrameEvent:
        self.objects[event.object_key] = data
        return event

    def fetch(self, key: str) -> bytes:
        if key not in self.objects:
            raise _s3_error("NoSuchKey", 404)
        return self.objects[key]


# PIL warns on opening an image past its pixel bound, before the worker refuses it.
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_each_poison_message_is_dead_lettered_with_its_reason_and_the_good_frames_come_through() -> None:
    store = Store()
    good_jpeg = store.put(_event(), SAMPLE.read_bytes())
    truncated = store.put(_event(), _truncated_jpeg())
    not_image = store.put(_event(), b"GIF89a this is no image at all")
    bomb = store.put(_event(), _png_bomb())
    # Between PIL's bound and twice it, PIL only warns: refused all the same.
    warned_bomb = store.put(_event(), _png_bomb(10000))
    good_png = store.put(_event(), _encode(Image.new("RGBA", (64, 48), (10, 200, 10, 128)), "PNG"))
    missing = _event()  # its object was never stored
    dotted = _event(object_key="frames/../secrets.jpg")  # a key the store client refuses
    messages = [
        _message(good_jpeg.model_dump_json().encode(), 10),
        _message(truncated.model_dump_json().encode(), 11),
        _message(b'{"frame_id": "not-a-uuid"}', 12),
        _message(not_image.model_dump_json().encode(), 13),
        _message(b"\xff\xfe\x00 not json", 14, key=b"\xffbinary-key"),
        _message(bomb.model_dump_json().encode(), 15),
        _message(missing.model_dump_json().encode(), 16),
        _message(None, 17, key=None),  # a tombstone
        _message(dotted.model_dump_json().encode(), 18),
        _message(good_png.model_dump_json().encode(), 19),
        _message(warned_bomb.model_dump_json().encode(), 20),
    ]

    frames, dead_letters = split_batch(messages, store.fetch, now=NOW)

    assert [f.event for f in frames] == [good_jpeg, good_png]
    assert [f.image.mode for f in frames] == ["RGB", "RGB"]
    assert frames[1].image.size == (64, 48)
    by_offset = {d.offset: d for d in dead_letters}
    assert {offset: d.reason for offset, d in by_offset.items()} == {
        11: "undecodable_image",
        12: "undecodable_event",
        13: "undecodable_image",
        14: "undecodable_event",
        15: "undecodable_image",
        16: "object_missing",
        17: "undecodable_event",
        18: "undecodable_event",
        20: "undecodable_image",
    }
    assert "truncated" in by_offset[11].detail
    assert "UnidentifiedImageError" in by_offset[13].detail
    assert "DecompressionBomb" in by_offset[15].detail and "900000000 pixels" in by_offset[15].detail
    assert "DecompressionBomb" in by_offset[20].detail and "10000x10000" in by_offset[20].detail
    assert "NoSuchKey" in by_offset[16].detail and missing.object_key in by_offset[16].detail
    # What is known of each is kept: the ids once the event parsed, the key and the raw value always.
    known = ((11, truncated), (13, not_image), (15, bomb), (16, missing), (18, dotted), (20, warned_bomb))
    for offset, event in known:
        letter = by_offset[offset]
        assert (letter.frame_id, letter.camera_id, letter.object_key) == (
            event.frame_id,
            CAMERA,
            event.object_key,
        )
    assert by_offset[12].frame_id is None and by_offset[12].camera_id is None
    for message in messages:
        if (offset := message.offset() or 0) not in by_offset:
            continue
        letter = by_offset[offset]
        assert (letter.topic, letter.partition, letter.offset) == (FRAMES_TOPIC, 2, message.offset())
        assert letter.original_value() == (message.value() or b"")
        assert not letter.value_truncated
        assert letter.dead_lettered_at == NOW
    assert by_offset[11].key == CAMERA and by_offset[17].key is None
    assert by_offset[14].key == "\\xffbinary-key"
    # A dead letter survives its trip through Kafka as JSON.
    for letter in dead_letters:
        assert DeadLetterEvent.model_validate_json(letter.model_dump_json()) == letter


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_a_bomb_is_refused_even_when_a_library_lifted_pils_own_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # what some libraries do on import
    store = Store()
    bomb = store.put(_event(), _png_bomb())
    frames, (letter,) = split_batch([_message(bomb.model_dump_json().encode(), 3)], store.fetch, now=NOW)
    assert frames == [] and letter.reason == "undecodable_image"
    assert "30000x30000" in letter.detail


def test_a_huge_malformed_value_is_kept_up_to_the_bound() -> None:
    value = b"x" * (3 * DEAD_LETTER_MAX_VALUE_BYTES)
    frames, (letter,) = split_batch([_message(value, 5)], Store().fetch, now=NOW)
    assert frames == []
    assert letter.reason == "undecodable_event"
    assert letter.value_size == len(value) and letter.value_truncated
    assert letter.original_value() == value[:DEAD_LETTER_MAX_VALUE_BYTES]


@pytest.mark.parametrize(
    "fault",
    [
        ConnectionRefusedError(111, "Connection refused"),
        urllib3.exceptions.MaxRetryError(None, "/its-video/frames/x.jpg", reason=None),  # type: ignore[arg-type]
        _s3_error("InternalError", 500),
        _s3_error("SlowDown", 503),
        _s3_error("AccessDenied", 403),
        _s3_error("NoSuchBucket", 404),
    ],
    ids=["refused", "retries-exhausted", "500", "503", "access-denied", "no-bucket"],
)
def test_a_transient_store_fault_raises_so_the_batch_is_retried(fault: Exception) -> None:
    store = Store()
    good = store.put(_event(), SAMPLE.read_bytes())
    flaky = _event()

    def fetch(key: str) -> bytes:
        if key == flaky.object_key:
            raise fault
        return store.fetch(key)

    messages = [_message(good.model_dump_json().encode(), 1), _message(flaky.model_dump_json().encode(), 2)]
    with pytest.raises(type(fault)):
        split_batch(messages, fetch, now=NOW)
