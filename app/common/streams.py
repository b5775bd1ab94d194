"""A streaming camera's health: online, degraded (recording below its rate) or offline (no frame
recorded for `offline_after` seconds). The ingest classifies and reports it each tick (a Redis
hash per camera); the API takes a report only while it is fresh, so a camera whose reader died
(or whose report expired) reads offline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from app.common.cameras import STREAM_STATES, StreamState, StreamStatus

# Below this share of its configured rate (over the ingest's window) a camera is degraded.
DEGRADED_BELOW = 0.7


def classify(
    now: float,
    last_frame_at: float | None,
    since: float,
    sampled_fps: float,
    sample_fps: float,
    offline_after: float,
) -> StreamState:
    """Epoch seconds: `now`, the latest recorded frame's time and `since`, when the reader
    started (a reader that took a camera over is not offline for the seconds it has not run)."""
    if now - (last_frame_at or since) > offline_after:
        return "offline"
    if sampled_fps < DEGRADED_BELOW * sample_fps:
        return "degraded"
    return "online"


@dataclass(frozen=True)
class HealthReport:
    """What the ingest writes for one camera, each tick."""

    state: StreamState
    sampled_fps: float
    last_frame_at: float | None
    reported_at: float
    reader: str

    def to_redis(self) -> dict[str, str]:
        return {
            "state": self.state,
            "sampled_fps": f"{self.sampled_fps:.3f}",
            "last_frame_at": "" if self.last_frame_at is None else f"{self.last_frame_at:.3f}",
            "reported_at": f"{self.reported_at:.3f}",
            "reader": self.reader,
        }


def stream_status(fields: dict[str, str], now: float, offline_after: float) -> StreamStatus:
    """The API's view of a camera from the ingest's hash: its report while fresh; offline when
    nobody reported it for `offline_after` seconds (no reader, or a reader that died)."""
    last = float(fields["last_frame_at"]) if fields.get("last_frame_at") else None
    reported = float(fields["reported_at"]) if fields.get("reported_at") else None
    fps = float(fields.get("sampled_fps") or 0)
    fresh = reported is not None and now - reported <= offline_after and fields.get("state") in STREAM_STATES
    return StreamStatus(
        state=fields["state"] if fresh else "offline",  # type: ignore[arg-type]
        sampled_fps=fps,
        last_frame_at=_at(last),
        reported_at=_at(reported),
        reader=fields.get("reader") or None,
    )


def _at(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)
