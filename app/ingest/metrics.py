"""The ingest's Prometheus metrics (names used by infrastructure/prometheus rules and the
chart's autoscaler), served with /healthz by app.common.metrics_server. Per-camera series carry
the camera id: one series set per streaming camera, on the replica that reads it."""

from __future__ import annotations

import contextlib

from prometheus_client import Counter, Gauge

from app.common.cameras import STREAM_STATES, StreamState

FRAMES_READ = Counter("its_ingest_frames_read_total", "Frames decoded from camera streams", ["camera_id"])
FRAMES_SAMPLED = Counter(
    "its_ingest_frames_sampled_total",
    "Frames sampled at the camera's rate, by what became of them",
    ["camera_id", "outcome"],  # recorded, replayed (recorded before), failed, busy (dropped)
)
DECODE_ERRORS = Counter(
    "its_ingest_decode_errors_total",
    "Packets or frames that did not decode (the frame is dropped)",
    ["camera_id"],
)
RECONNECTS = Counter(
    "its_ingest_reconnects_total", "Stream (re)connections after a drop or a failure", ["camera_id"]
)
CAMERA_STATE = Gauge(
    "its_ingest_camera_state",
    "1 for the camera's current state (online, degraded, offline)",
    ["camera_id", "state"],
)
CAMERAS = Gauge("its_ingest_cameras", "Cameras this replica reads")
REPLICAS = Gauge("its_ingest_replicas", "Live ingest replicas this replica sees")


def set_state(camera_id: str, state: StreamState) -> None:
    for each in STREAM_STATES:
        CAMERA_STATE.labels(camera_id, each).set(1 if each == state else 0)


def forget(camera_id: str) -> None:
    """A camera this replica no longer reads: its state is reported by its new reader."""
    for each in STREAM_STATES:
        with contextlib.suppress(KeyError):
            CAMERA_STATE.remove(camera_id, each)
