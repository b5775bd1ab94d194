"""Frame in, detection out, through the running platform's API; and a streamed frame's.

`python -m app.smoke --api-url URL (--credentials FILE | --operator-key K) [--stream-camera ID]`
prints one line per check and exits non-zero on failure; `make up` runs it last. The smoke
camera is not one of the cameras a camera key is bound to, so the operator key registers it,
posts the frame and reads it back. A streaming camera (registered with a stream URL) needs no
post: the ingest samples its stream, and the check waits for a detection of a frame it recorded
after the check started.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from app.common.apikeys import ApiCredentials

SAMPLE = Path(__file__).resolve().parent / "worker" / "samples" / "street-0.jpg"
SMOKE_CAMERA = "smoke-cam"


@dataclass
class SmokeResult:
    frame_id: str
    accepted_seconds: float
    detected_seconds: float
    detections: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> str:
        classes: dict[str, int] = {}
        for d in self.detections:
            classes[d["class"]] = classes.get(d["class"], 0) + 1
        return (
            f"smoke OK: frame {self.frame_id} accepted in {self.accepted_seconds:.2f}s, "
            f"{len(self.detections)} detections ({classes}) out after {self.detected_seconds:.2f}s"
        )


class SmokeFailedError(RuntimeError):
    pass


def run_smoke(api_url: str, operator_key: str, timeout_s: float = 120) -> SmokeResult:
    with httpx.Client(base_url=api_url, timeout=15) as api:
        registered = api.post(
            "/v1/cameras",
            json={"id": SMOKE_CAMERA, "name": "Smoke check"},
            headers={"X-API-Key": operator_key},
        )
        if registered.status_code not in (201, 409):
            raise SmokeFailedError(f"registering the camera: {registered.status_code} {registered.text}")
        started = time.monotonic()
        captured = datetime.now(UTC)
        posted = api.post(
            f"/v1/cameras/{SMOKE_CAMERA}/frames",
            files={"file": (SAMPLE.name, SAMPLE.read_bytes(), "image/jpeg")},
            data={"captured_at": captured.isoformat()},
            headers={"X-API-Key": operator_key},
        )
        if posted.status_code != 202:
            raise SmokeFailedError(f"posting the frame: {posted.status_code} {posted.text}")
        frame_id = posted.json()["frame_id"]
        accepted = time.monotonic() - started
        window = {
            "start": (captured - timedelta(seconds=1)).isoformat(),
            "end": (captured + timedelta(seconds=1)).isoformat(),
        }
        while time.monotonic() - started < timeout_s:
            found = api.get(
                f"/v1/cameras/{SMOKE_CAMERA}/detections", params=window, headers={"X-API-Key": operator_key}
            )
            found.raise_for_status()
            mine = [d for d in found.json()["detections"] if d["frame_id"] == frame_id]
            if mine:
                return SmokeResult(frame_id, accepted, time.monotonic() - started, mine)
            time.sleep(0.5)
    raise SmokeFailedError(f"no detections for frame {frame_id} within {timeout_s:.0f}s")


@dataclass
class StreamSmokeResult:
    camera_id: str
    state: str
    detected_seconds: float
    detections: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> str:
        frames = {d["frame_id"] for d in self.detections}
        return (
            f"stream smoke OK: camera {self.camera_id} {self.state}, {len(self.detections)} detections "
            f"in {len(frames)} streamed frames out after {self.detected_seconds:.2f}s"
        )


def run_stream_smoke(
    api_url: str, operator_key: str, camera_id: str, timeout_s: float = 120
) -> StreamSmokeResult:
    """A frame the ingest sampled from `camera_id`'s stream after now, detected, read back."""
    headers = {"X-API-Key": operator_key}
    started, since = time.monotonic(), datetime.now(UTC)
    with httpx.Client(base_url=api_url, timeout=15, headers=headers) as api:
        camera = api.get(f"/v1/cameras/{camera_id}")
        if camera.status_code != 200 or camera.json().get("stream_url") is None:
            raise SmokeFailedError(
                f"{camera_id} is not a streaming camera: {camera.status_code} {camera.text}"
            )
        while time.monotonic() - started < timeout_s:
            window = {
                "start": since.isoformat(),
                "end": (datetime.now(UTC) + timedelta(seconds=5)).isoformat(),
            }
            found = api.get(f"/v1/cameras/{camera_id}/detections", params=window)
            found.raise_for_status()
            if detections := found.json()["detections"]:
                state = api.get(f"/v1/cameras/{camera_id}").json()["stream"]["state"]
                return StreamSmokeResult(camera_id, state, time.monotonic() - started, detections)
            time.sleep(1)
    raise SmokeFailedError(f"no detections of a frame streamed by {camera_id} within {timeout_s:.0f}s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--api-url", required=True)
    key = parser.add_mutually_exclusive_group(required=True)
    key.add_argument("--credentials", type=Path, help="api-credentials.json of the local platform")
    key.add_argument("--operator-key")
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--stream-camera", help="also check a streaming camera's frames")
    args = parser.parse_args(argv)
    operator_key = args.operator_key or ApiCredentials.load(args.credentials).operator
    try:
        print(run_smoke(args.api_url, operator_key, args.timeout).summary())
        if args.stream_camera:
            print(run_stream_smoke(args.api_url, operator_key, args.stream_camera, args.timeout).summary())
    except (SmokeFailedError, httpx.HTTPError) as error:
        print(f"smoke FAILED: {error}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
