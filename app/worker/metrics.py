"""The worker's Prometheus metrics (names used by infrastructure/prometheus rules) and the
small HTTP server that serves them with /healthz."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import Counter, Gauge, Histogram, make_wsgi_app

from app.common.contracts import DEAD_LETTER_REASONS

FRAMES = Counter("its_worker_frames_total", "Frames handled", ["outcome"])
INFERENCE = Histogram(
    "its_worker_inference_seconds",
    "YOLO time per batch",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
BATCH = Histogram("its_worker_batch_size", "Frames per batch", buckets=(1, 2, 4, 8, 16, 32, 64))
LAG = Gauge("its_worker_consumer_lag", "Messages behind the end of the partition", ["topic", "partition"])
DETECTIONS = Counter("its_worker_detections_total", "Vehicles detected", ["class"])
ALERTS = Counter("its_worker_congestion_alerts_total", "Congestion alerts raised")
DEAD_LETTERS = Counter(
    "its_worker_dead_letters_total", "camera-events messages set aside on the dead-letter topic", ["reason"]
)
for _reason in DEAD_LETTER_REASONS:
    DEAD_LETTERS.labels(_reason)  # every reason exported from 0, so increase() sees the first one


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


def serve(host: str, port: int, heartbeat: Callable[[], float], max_silence: float = 120) -> None:
    """Serve /metrics and /healthz (healthy while the consume loop ticked recently)."""
    metrics_app = make_wsgi_app()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz":
            alive = time.monotonic() - heartbeat() < max_silence
            start_response("200 OK" if alive else "503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"ok\n" if alive else b"consume loop stalled\n"]
        result: Iterable[bytes] = metrics_app(environ, start_response)
        return result

    server = make_server(host, port, app, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, daemon=True, name="metrics").start()
