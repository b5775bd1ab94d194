"""The stream reader against streams served on loopback by this test: an HTTP MJPEG camera
(multipart/x-mixed-replace, as IP cameras serve it), one that closes at once and a port where
nothing listens. The RTSP path (the test cameras' GStreamer server) is tested end to end in
tests/ingest."""

from __future__ import annotations

import base64
import io
import itertools
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from PIL import Image
from prometheus_client import Counter

from app.ingest import metrics
from app.ingest.reader import ReaderConfig, SampledFrame, StreamReader, StreamSource, with_credentials
from app.smoke import SAMPLE

BOUNDARY = "its-frame"
CONFIG = ReaderConfig(read_timeout=2, reconnect_min=0.2, reconnect_max=1, jpeg_quality=80)


class MjpegCamera(BaseHTTPRequestHandler):
    """/mjpg: behind HTTP basic authentication (user u, password p), the sample scene turned a
    little each frame, at 10 frames/s for 20 s. /close: answers and closes at once."""

    protocol_version = "HTTP/1.0"
    logins: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        if self.path != "/mjpg":
            self.send_response(200)
            self.end_headers()
            return
        login = self.headers.get("Authorization")
        MjpegCamera.logins.append(login)
        if login != "Basic " + base64.b64encode(b"u:p").decode():
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="camera"')
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.end_headers()
        scene = Image.open(SAMPLE).convert("RGB")
        try:
            for index in range(200):
                buffer = io.BytesIO()
                scene.rotate(index % 10).save(buffer, "JPEG", quality=80)
                part = buffer.getvalue()
                head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(part)}\r\n\r\n"
                self.wfile.write(head.encode() + part + b"\r\n")
                self.wfile.flush()
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            return

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture(scope="module")
def camera_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), MjpegCamera)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def read(
    source: StreamSource, seconds: float, credentials: tuple[str, str] = ("u", "p")
) -> list[SampledFrame]:
    sampled: list[SampledFrame] = []

    def deliver(frame: SampledFrame) -> bool:
        sampled.append(frame)
        return True

    reader = StreamReader(source, CONFIG, lambda _path: credentials, deliver)
    reader.start()
    time.sleep(seconds)
    reader.stop()
    assert reader.join(CONFIG.read_timeout + 2), "the reader did not stop"
    return sampled


def counter(metric: Counter, camera: str) -> float:
    return float(metric.labels(camera)._value.get())


def test_an_http_mjpeg_camera_is_sampled_at_its_rate_with_its_login(camera_url: str) -> None:
    MjpegCamera.logins.clear()
    source = StreamSource("mjpeg-cam", f"{camera_url}/mjpg", "its/streams/mjpeg", sample_fps=2.0)
    sampled = read(source, 4)
    # 10 frames/s read for ~4 s, 2 slots a second kept (the first slot may be partial).
    assert 5 <= len(sampled) <= 9, len(sampled)
    assert counter(metrics.FRAMES_READ, "mjpeg-cam") >= 2 * len(sampled)
    slots = [frame.slot_start_ms for frame in sampled]
    assert slots == sorted(set(slots)) and all(b - a >= 500 for a, b in itertools.pairwise(slots))
    with Image.open(io.BytesIO(sampled[0].jpeg)) as image:
        assert image.format == "JPEG" and image.size == (sampled[0].frame.width, sampled[0].frame.height)
    assert sampled[0].frame.content_type == "image/jpeg"
    # The login from Vault answered the camera's challenge (HTTP basic); the stored URL has none.
    assert (
        MjpegCamera.logins[0] is None
        and MjpegCamera.logins[-1] == "Basic " + base64.b64encode(b"u:p").decode()
    )


def test_a_stream_that_ends_is_reconnected_with_backoff(camera_url: str) -> None:
    source = StreamSource("closing-cam", f"{camera_url}/close", None, sample_fps=1.0)
    before = counter(metrics.RECONNECTS, "closing-cam")
    assert read(source, 3) == []
    # 0.2 s doubling to a 1 s cap, jittered: a few reconnects in 3 s, not a tight loop.
    assert 2 <= counter(metrics.RECONNECTS, "closing-cam") - before <= 12


def test_an_unreachable_camera_is_retried_and_the_reader_stops_when_asked() -> None:
    source = StreamSource("dark-cam", "rtsp://127.0.0.1:9/none", None, sample_fps=1.0)
    before = counter(metrics.RECONNECTS, "dark-cam")
    assert read(source, 2) == []
    assert counter(metrics.RECONNECTS, "dark-cam") > before


def test_credentials_are_quoted_into_the_url_and_never_stored() -> None:
    url = with_credentials("rtsp://10.1.2.3:554/Streaming/Channels/101", "viewer", "p@ss:w/rd")
    assert url == "rtsp://viewer:p%40ss%3Aw%2Frd@10.1.2.3:554/Streaming/Channels/101"
