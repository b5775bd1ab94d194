"""Frame validation: what the API accepts as a camera frame, and why it refuses the rest.

A frame is accepted only once it has been decoded in full: `verify()` alone passes a truncated
JPEG, which then fails in the worker. Size limits are checked from the header, before a pixel
is decoded, so a small file that claims huge dimensions (a decompression bomb) costs nothing.
No input can raise anything but FrameRejectedError: every refusal is a 4xx naming the reason.
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass

from PIL import Image

from app.common.frames import Frame
from app.common.settings import Settings

# Magic bytes -> (content type, extension, Pillow's format name).
FORMATS = {
    b"\xff\xd8\xff": ("image/jpeg", "jpg", "JPEG"),
    b"\x89PNG\r\n\x1a\n": ("image/png", "png", "PNG"),
}
PILLOW_FORMATS = tuple(pillow for _, _, pillow in FORMATS.values())


class FrameRejectedError(ValueError):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class FrameLimits:
    max_bytes: int
    max_pixels: int
    max_side: int

    @classmethod
    def from_settings(cls, settings: Settings) -> FrameLimits:
        return cls(settings.max_frame_bytes, settings.max_frame_pixels, settings.max_frame_side)


def validate_frame(data: bytes, limits: FrameLimits) -> Frame:
    """The frame's type and size, once it has decoded in full; FrameRejectedError otherwise.
    CPU-bound: call it off the event loop (`check_frame`)."""
    if not data:
        raise FrameRejectedError(422, "the frame is empty")
    if len(data) > limits.max_bytes:
        raise FrameRejectedError(413, f"the frame is larger than {limits.max_bytes} bytes")
    kind = next((k for magic, k in FORMATS.items() if data.startswith(magic)), None)
    if kind is None:
        raise FrameRejectedError(415, "the frame is not a JPEG or PNG image")
    content_type, extension, pillow_format = kind
    try:
        # formats=: only the JPEG and PNG decoders are ever tried, whatever the bytes claim.
        with Image.open(io.BytesIO(data), formats=PILLOW_FORMATS) as image:
            if image.format != pillow_format:
                raise FrameRejectedError(415, f"the frame does not decode as {content_type}")
            width, height = image.size
            _check_dimensions(width, height, limits)
            image.load()
    except FrameRejectedError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        # Pillow's process-wide guard (left as the process has it: this module never changes
        # it) can fire inside Image.open, before our own header check: the same refusal.
        raise FrameRejectedError(
            422, f"the frame has more than the limit of {limits.max_pixels} pixels"
        ) from error
    except Exception as error:
        # Pillow raises OSError, SyntaxError, ValueError, struct.error, ... for broken data; the
        # reason is ours, not the decoder's message.
        raise FrameRejectedError(
            415, f"the frame does not decode as {content_type}: truncated or corrupt image data"
        ) from error
    return Frame(content_type, extension, width, height)


def _check_dimensions(width: int, height: int, limits: FrameLimits) -> None:
    if width > limits.max_side or height > limits.max_side:
        raise FrameRejectedError(
            422, f"the frame is {width}x{height} pixels; each side may be at most {limits.max_side}"
        )
    if width * height > limits.max_pixels:
        raise FrameRejectedError(
            422, f"the frame is {width}x{height} pixels, over the limit of {limits.max_pixels} pixels"
        )


async def check_frame(data: bytes, limits: FrameLimits) -> Frame:
    """validate_frame in a worker thread: a decode never blocks the event loop."""
    return await asyncio.to_thread(validate_frame, data, limits)
