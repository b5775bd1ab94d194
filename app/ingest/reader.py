"""One camera's stream reader: a thread of its own runs PyAV's demuxer and FFmpeg's decoder (both
block, so never on the event loop), samples the decoded frames at the camera's rate, encodes each
sample as JPEG and hands it to the event loop (`deliver`).

Faults: a packet or frame that does not decode is counted and dropped, and the reader goes on; a
stream that ends, stalls for `read_timeout` or cannot be opened is reopened after a capped
exponential backoff with jitter; only `stop()` ends the reader.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

import av
import av.error

from app.common.frames import Frame
from app.ingest import metrics
from app.ingest.backoff import Backoff
from app.ingest.sampling import RateWindow, Sampler, slot_start_ms

log = logging.getLogger("app.ingest")


@dataclass(frozen=True)
class StreamSource:
    """A camera's stream as the cameras table holds it."""

    camera_id: str
    url: str  # without credentials
    secret: str | None  # the Vault path of its credentials
    sample_fps: float


@dataclass(frozen=True)
class SampledFrame:
    camera_id: str
    slot_start_ms: int
    decoded_at: float  # epoch seconds
    jpeg: bytes
    frame: Frame


@dataclass(frozen=True)
class ReaderConfig:
    read_timeout: float
    reconnect_min: float
    reconnect_max: float
    jpeg_quality: int
    decoder_threads: int = 1


def with_credentials(url: str, username: str, password: str) -> str:
    """The URL FFmpeg opens: the stored one with the credentials from Vault (never logged)."""
    parts = urlsplit(url)
    login = f"{quote(username, safe='')}:{quote(password, safe='')}@"
    return urlunsplit(parts._replace(netloc=login + parts.netloc))


def open_options(url: str) -> dict[str, str]:
    """FFmpeg's options: RTSP over TCP (no lost UDP packets on a loaded link), a short probe
    (the SDP names the codec; FFmpeg's default probe waits seconds), and only the protocols a
    camera stream needs (no redirect or playlist can make FFmpeg read a file or another scheme)."""
    options = {
        "analyzeduration": "1000000",
        "probesize": "500000",
        "protocol_whitelist": "rtsp,rtsps,rtp,srtp,udp,tcp,tls,http,https,httpproxy",
    }
    if url.startswith(("rtsp://", "rtsps://")):
        options["rtsp_transport"] = "tcp"
    return options


class StreamReader:
    def __init__(
        self,
        source: StreamSource,
        config: ReaderConfig,
        credentials: Callable[[str], tuple[str, str]],
        deliver: Callable[[SampledFrame], bool],
    ) -> None:
        self.source = source
        self.config = config
        self._credentials = credentials
        self._deliver = deliver
        self.sampler = Sampler(source.sample_fps)
        self.recorded = RateWindow()
        self.started_at = time.time()
        self.last_frame_at: float | None = None  # the latest recorded frame (set by the service)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"reader-{source.camera_id}", daemon=True)
        metrics.RECONNECTS.labels(source.camera_id)  # exported from 0
        metrics.DECODE_ERRORS.labels(source.camera_id)
        metrics.FRAMES_READ.labels(source.camera_id)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Asks the thread to end: it does after the packet it waits for (at most read_timeout)."""
        self._stop.set()

    def join(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        backoff = Backoff(self.config.reconnect_min, self.config.reconnect_max)
        camera = self.source.camera_id
        while not self._stop.is_set():
            url = self.source.url
            try:
                url = self._url()
                self._read(url, backoff)
                reason = "the stream ended"
            except Exception as error:
                # FFmpeg's messages quote the URL it opened: never log its credentials.
                reason = f"{type(error).__name__}: {error}".replace(url, self.source.url)
            if self._stop.is_set():
                break
            delay = backoff.next_delay()
            metrics.RECONNECTS.labels(camera).inc()
            log.warning(
                "stream dropped, reconnecting", extra={"camera_id": camera, "error": reason, "delay": delay}
            )
            self._stop.wait(delay)
        log.info("reader stopped", extra={"camera_id": camera})

    def _url(self) -> str:
        if self.source.secret is None:
            return self.source.url
        username, password = self._credentials(self.source.secret)
        return with_credentials(self.source.url, username, password)

    def _read(self, url: str, backoff: Backoff) -> None:
        camera = self.source.camera_id
        timeout = self.config.read_timeout
        with av.open(url, options=open_options(url), timeout=(timeout, timeout)) as container:
            stream = container.streams.video[0]
            stream.codec_context.thread_count = self.config.decoder_threads
            log.info("stream open", extra={"camera_id": camera, "codec": stream.codec_context.name})
            for packet in container.demux(stream):
                if self._stop.is_set():
                    return
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError:
                    metrics.DECODE_ERRORS.labels(camera).inc()
                    continue
                for frame in frames:
                    metrics.FRAMES_READ.labels(camera).inc()
                    if frame.is_corrupt:
                        metrics.DECODE_ERRORS.labels(camera).inc()
                        continue
                    backoff.reset()
                    self._sample(frame)

    def _sample(self, frame: av.VideoFrame) -> None:
        at = time.time()
        slot = self.sampler.take(at)
        if slot is None:
            return
        buffer = io.BytesIO()
        frame.to_image().save(buffer, "JPEG", quality=self.config.jpeg_quality)  # type: ignore[no-untyped-call]
        sampled = SampledFrame(
            self.source.camera_id,
            slot_start_ms(slot, self.source.sample_fps),
            at,
            buffer.getvalue(),
            Frame("image/jpeg", "jpg", frame.width, frame.height),
        )
        if not self._deliver(sampled):
            metrics.FRAMES_SAMPLED.labels(self.source.camera_id, "busy").inc()
