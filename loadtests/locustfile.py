"""Locust scenarios for the API's SLOs: camera ingest at a steady frame rate, dashboards
reading counts and detections, and a burst.

Run headless through `make loadtest` (python -m loadtests.slo), which sets the SLO thresholds;
the `quitting` hook below turns a broken threshold into a non-zero exit code, as Locust
documents for CI use.

Keys come from the platform's api-credentials.json (--credentials, or ITS_API_CREDENTIALS):
each camera posts with the camera key bound to it, dashboards read with the viewer key.
"""

from __future__ import annotations

import functools
import os
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from locust import HttpUser, LoadTestShape, between, constant_pacing, events, task
from locust.env import Environment

from app.common.apikeys import ApiCredentials

SAMPLES = sorted((Path(__file__).resolve().parents[1] / "app" / "worker" / "samples").glob("*.jpg"))


@functools.cache
def _load(path: str) -> ApiCredentials:
    return ApiCredentials.load(Path(path))


def credentials(environment: Environment) -> ApiCredentials:
    options = environment.parsed_options
    assert options is not None and options.credentials, "--credentials (api-credentials.json) is required"
    return _load(options.credentials)


@events.init_command_line_parser.add_listener
def _slo_options(parser: Any) -> None:
    parser.add_argument("--credentials", default=os.environ.get("ITS_API_CREDENTIALS", ""))
    parser.add_argument("--slo-p95-ms", type=float, default=100.0)
    parser.add_argument("--slo-p99-ms", type=float, default=250.0)
    parser.add_argument("--slo-max-failure-ratio", type=float, default=0.001)
    parser.add_argument("--frames-per-second-per-camera", type=float, default=1.0)
    parser.add_argument("--burst", action="store_true", help="add a burst stage to the run")


@events.test_start.add_listener
def _register_cameras(environment: Environment, **_: Any) -> None:
    import httpx

    keys = credentials(environment)
    assert environment.host
    for camera in keys.cameras:
        response = httpx.post(
            f"{environment.host}/v1/cameras",
            json={"id": camera, "name": f"Load camera {camera}"},
            headers={"X-API-Key": keys.operator},
            timeout=10,
        )
        if response.status_code not in (200, 201, 409):
            raise RuntimeError(f"registering {camera}: {response.status_code} {response.text}")


@events.quitting.add_listener
def _enforce_slos(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    assert options is not None and environment.runner is not None
    total = environment.runner.stats.total
    p95, p99 = total.get_response_time_percentile(0.95), total.get_response_time_percentile(0.99)
    verdicts = {
        f"p95 {p95:.0f} ms <= {options.slo_p95_ms:.0f} ms": p95 <= options.slo_p95_ms,
        f"p99 {p99:.0f} ms <= {options.slo_p99_ms:.0f} ms": p99 <= options.slo_p99_ms,
        f"failure ratio {total.fail_ratio:.4f} <= {options.slo_max_failure_ratio}": (
            total.fail_ratio <= options.slo_max_failure_ratio
        ),
        f"requests {total.num_requests} > 0": total.num_requests > 0,
    }
    for verdict, ok in verdicts.items():
        print(f"SLO {'PASS' if ok else 'FAIL'}: {verdict}")
    environment.process_exit_code = 0 if all(verdicts.values()) else 1


class CameraIngest(HttpUser):
    """One camera uploading frames at a steady rate, with its own camera key."""

    weight = 3

    def wait_time(self) -> float:
        options = self.environment.parsed_options
        rate = options.frames_per_second_per_camera if options else 1.0
        return float(constant_pacing(1.0 / rate)(self))

    def on_start(self) -> None:
        self.camera, self.key = random.choice(sorted(credentials(self.environment).cameras.items()))

    @task
    def post_frame(self) -> None:
        sample = random.choice(SAMPLES)
        with sample.open("rb") as image:
            self.client.post(
                f"/v1/cameras/{self.camera}/frames",
                files={"file": (sample.name, image, "image/jpeg")},
                headers={"X-API-Key": self.key},
                name="/v1/cameras/{camera_id}/frames",
            )


class DashboardReader(HttpUser):
    """An operator dashboard polling latest counts, per-minute counts and detections."""

    weight = 1
    wait_time = between(0.5, 1.5)

    def on_start(self) -> None:
        keys = credentials(self.environment)
        self.key = keys.viewer
        self.cameras = sorted(keys.cameras)

    def _window(self) -> dict[str, str]:
        end = datetime.now(UTC)
        return {"start": (end - timedelta(minutes=15)).isoformat(), "end": end.isoformat()}

    @task(3)
    def latest_counts(self) -> None:
        camera = random.choice(self.cameras)
        self.client.get(
            f"/v1/cameras/{camera}/counts/latest",
            headers={"X-API-Key": self.key},
            name="/v1/cameras/{camera_id}/counts/latest",
        )

    @task(2)
    def counts(self) -> None:
        camera = random.choice(self.cameras)
        self.client.get(
            f"/v1/cameras/{camera}/counts",
            params=self._window(),
            headers={"X-API-Key": self.key},
            name="/v1/cameras/{camera_id}/counts",
        )

    @task(1)
    def detections(self) -> None:
        camera = random.choice(self.cameras)
        self.client.get(
            f"/v1/cameras/{camera}/detections",
            params={**self._window(), "limit": "100"},
            headers={"X-API-Key": self.key},
            name="/v1/cameras/{camera_id}/detections",
        )


class SteadyThenBurst(LoadTestShape):
    """Steady load for most of the run; with --burst, three times the users for a fifth of it."""

    use_common_options = True

    def tick(self) -> tuple[int, float] | None:
        options = self.runner.environment.parsed_options if self.runner else None
        if options is None:
            return None
        run_time, users = float(options.run_time or 30), int(options.num_users or 10)
        elapsed = self.get_run_time()
        if elapsed > run_time:
            return None
        burst = options.burst and 0.6 * run_time <= elapsed < 0.8 * run_time
        return (users * 3 if burst else users, float(options.spawn_rate or users))
