"""Frame validation: only whole JPEG and PNG images within the limits pass, and no input makes
anything but a FrameRejectedError (a 4xx)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import struct
import threading
import zlib

import pytest
from PIL import Image

from app.api import images
from app.api.images import FrameLimits, FrameRejectedError, check_frame, validate_frame
from app.api.main import create_app
from app.common.frames import Frame
from app.common.settings import Settings

LIMITS = FrameLimits(max_bytes=5 * 1024 * 1024, max_pixels=16_777_216, max_side=8192)


def encoded(fmt: str, size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (20, 120, 200)).save(buffer, fmt)
    return buffer.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int = 30_000, height: int = 30_000) -> bytes:
    """A valid 1-bit greyscale PNG of width x height pixels, all black: ~110 MB of raw scanlines
    that deflate to ~110 KB. Built row by row, never held decompressed."""
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed pixels
    deflate = zlib.compressobj(9)
    idat = b"".join(deflate.compress(row) for _ in range(height)) + deflate.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def rejected(data: bytes, limits: FrameLimits = LIMITS) -> FrameRejectedError:
    with pytest.raises(FrameRejectedError) as caught:
        validate_frame(data, limits)
    return caught.value


@pytest.mark.parametrize(("fmt", "content_type"), [("JPEG", "image/jpeg"), ("PNG", "image/png")])
def test_a_whole_jpeg_or_png_passes_with_its_size(fmt: str, content_type: str) -> None:
    frame = validate_frame(encoded(fmt), LIMITS)
    assert frame == Frame(content_type, "jpg" if fmt == "JPEG" else "png", 64, 48)


def test_a_truncated_jpeg_is_refused_though_verify_passes_it() -> None:
    whole = encoded("JPEG", (640, 480))
    truncated = whole[: len(whole) // 2]
    with Image.open(io.BytesIO(truncated)) as image:
        image.verify()  # what the API used to check: it passes
    error = rejected(truncated)
    assert error.status == 415
    assert "truncated or corrupt" in error.reason and "image/jpeg" in error.reason


def test_a_truncated_png_is_refused() -> None:
    whole = encoded("PNG", (640, 480))
    error = rejected(whole[: len(whole) - 40])
    assert error.status == 415 and "image/png" in error.reason


def test_a_png_bomb_is_refused_from_its_header_quickly() -> None:
    bomb = png_bomb()
    assert len(bomb) < 200_000
    error = rejected(bomb)
    # Refused for its declared size (the header), so nothing was decompressed.
    assert error.status == 422
    assert str(LIMITS.max_pixels) in error.reason or str(LIMITS.max_side) in error.reason


def test_pillow_s_own_bomb_guard_is_caught_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """When Pillow's process-wide bound is lower than ours (another library set it), a frame
    past twice it makes Image.open raise DecompressionBombError before our header check:
    still a 422 naming our limit, never a 5xx."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 64 * 64)
    error = rejected(encoded("PNG", (200, 200)))
    assert error.status == 422 and str(LIMITS.max_pixels) in error.reason


def test_the_api_leaves_pillow_s_process_wide_bound_alone() -> None:
    """The limits are the API's own: building the app and refusing a frame over them change
    nothing another module of the process (the worker's batch, a library) relies on."""
    before = Image.MAX_IMAGE_PIXELS
    create_app(Settings(max_frame_pixels=64 * 64))
    rejected(encoded("PNG", (64, 64)), FrameLimits(LIMITS.max_bytes, 32 * 32, 8192))
    assert before == Image.MAX_IMAGE_PIXELS


@pytest.mark.parametrize(
    ("size", "limits", "names"),
    [
        ((9000, 10), LIMITS, "at most 8192"),
        ((300, 300), FrameLimits(LIMITS.max_bytes, 200 * 200, 8192), f"limit of {200 * 200} pixels"),
    ],
)
def test_dimension_limits_name_themselves(size: tuple[int, int], limits: FrameLimits, names: str) -> None:
    error = rejected(encoded("PNG", size), limits)
    assert error.status == 422 and names in error.reason


@pytest.mark.parametrize(
    ("data", "status", "reason"),
    [
        (b"", 422, "empty"),
        (b"GIF89a" + b"\x00" * 64, 415, "not a JPEG or PNG"),
        (b"\xff\xd8\xff" + b"\x00" * 100, 415, "does not decode"),
        (b"\x89PNG\r\n\x1a\n" + b"\xff" * 100, 415, "does not decode"),
        (b"\xff\xd8\xff" + b"0" * (LIMITS.max_bytes + 10), 413, "larger than"),
    ],
)
def test_each_bad_frame_gets_its_status_and_reason(data: bytes, status: int, reason: str) -> None:
    error = rejected(data)
    assert (error.status, reason in error.reason) == (status, True), error.reason


def test_a_real_gif_is_refused() -> None:
    assert rejected(encoded("GIF")).status == 415


def test_no_byte_pattern_escapes_as_another_exception() -> None:
    """Fuzz the decoders with cut and corrupted images: FrameRejectedError or a Frame, never
    anything else (which would be a 500)."""
    samples = [encoded("JPEG", (128, 96)), encoded("PNG", (128, 96))]
    for sample in samples:
        for cut in range(8, len(sample), max(1, len(sample) // 40)):
            with contextlib.suppress(FrameRejectedError):
                validate_frame(sample[:cut], LIMITS)
        for offset in range(8, len(sample), max(1, len(sample) // 40)):
            corrupted = sample[:offset] + bytes([sample[offset] ^ 0xFF]) + sample[offset + 1 :]
            with contextlib.suppress(FrameRejectedError):
                validate_frame(corrupted, LIMITS)


def test_check_frame_decodes_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[int] = []
    original = images.validate_frame

    def recording(data: bytes, limits: FrameLimits) -> Frame:
        threads.append(threading.get_ident())
        return original(data, limits)

    monkeypatch.setattr(images, "validate_frame", recording)

    async def run() -> tuple[Frame, int]:
        return await check_frame(encoded("JPEG"), LIMITS), threading.get_ident()

    frame, loop_thread = asyncio.run(run())
    assert frame.width == 64 and threads and threads[0] != loop_thread
