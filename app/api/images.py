"""Frame validation: what the API accepts as a camera frame, and why it refuses the rest."""

from __future__ import annotations

import io

from PIL import Image, UnidentifiedImageError

FORMATS = {b"\xff\xd8\xff": ("image/jpeg", "jpg"), b"\x89PNG\r\n\x1a\n": ("image/png", "png")}


class FrameRejectedError(ValueError):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def validate_frame(data: bytes, max_bytes: int) -> tuple[str, str]:
    """Return (content type, extension) of a JPEG or PNG frame, or raise FrameRejectedError."""
    if not data:
        raise FrameRejectedError(422, "the frame is empty")
    if len(data) > max_bytes:
        raise FrameRejectedError(413, f"the frame is larger than {max_bytes} bytes")
    kind = next((k for magic, k in FORMATS.items() if data.startswith(magic)), None)
    if kind is None:
        raise FrameRejectedError(415, "the frame is not a JPEG or PNG image")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise FrameRejectedError(415, f"the frame does not decode as {kind[0]}: {error}") from error
    return kind
