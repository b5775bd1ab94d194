"""The worker's Prometheus metrics (names used by infrastructure/prometheus rules); served with
/healthz by app.common.metrics_server."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
