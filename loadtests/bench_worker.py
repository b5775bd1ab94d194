"""Benchmark: worker frames/s end to end against a bare YOLO predict loop, and API latency.

`python -m loadtests.bench_worker [--frames N]` against the running platform (`make up`):
1. baseline: the same detector, weights and images in a bare predict loop in this process,
   batched like the worker;
2. end to end: N frames posted through the API, timed until the worker has recorded them all;
prints both rates, their ratio, and p50/p95/p99 of the frame POST and the detections GET.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
from PIL import Image

from app.common.settings import Settings
from app.worker.detector import Detector, resolve_weights
from infra.local.config import LocalPlatformConfig
from infra.local.platform import Platform
from infra.local.stacks import App, Postgres

SAMPLES = sorted((Path(__file__).resolve().parents[1] / "app" / "worker" / "samples").glob("*.jpg"))


def percentiles(samples: list[float]) -> str:
    q = statistics.quantiles(samples, n=100, method="inclusive")
    return f"p50 {q[49] * 1000:.1f} ms, p95 {q[94] * 1000:.1f} ms, p99 {q[98] * 1000:.1f} ms"


def bare_predict_rate(frames: int, batch: int) -> float:
    settings = Settings()
    detector = Detector(
        resolve_weights(settings.model_uri, None, Path()),
        "cpu",
        settings.worker_confidence,
        settings.vehicle_classes,
    )
    images = [Image.open(SAMPLES[i % len(SAMPLES)]).convert("RGB") for i in range(frames)]
    detector.detect(images[:batch])  # warm-up, as the worker is warm
    started = time.perf_counter()
    for start in range(0, frames, batch):
        detector.detect(images[start : start + batch])
    return frames / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=120)
    args = parser.parse_args(argv)
    platform = Platform(LocalPlatformConfig.load())
    secrets = platform.secrets
    operator = secrets.api_credentials().operator
    api_url = platform.stack(App).api_url
    batch = Settings().worker_batch_size
    baseline = bare_predict_rate(args.frames, batch)

    camera = f"bench-{uuid.uuid4().hex[:6]}"
    posts: list[float] = []
    gets: list[float] = []
    with httpx.Client(base_url=api_url, timeout=30) as api:
        api.post(
            "/v1/cameras",
            json={"id": camera, "name": "bench"},
            headers={"X-API-Key": operator},
        )
        started = time.perf_counter()
        for index in range(args.frames):
            sample = SAMPLES[index % len(SAMPLES)]
            t0 = time.perf_counter()
            response = api.post(
                f"/v1/cameras/{camera}/frames",
                files={"file": (sample.name, sample.read_bytes(), "image/jpeg")},
                headers={"X-API-Key": operator},
            )
            posts.append(time.perf_counter() - t0)
            response.raise_for_status()
        with psycopg.connect(platform.stack(Postgres).superuser_dsn("its")) as conn:
            while True:
                row = conn.execute(
                    "SELECT count(*) FROM frames WHERE camera_id = %s AND processed_at IS NOT NULL", (camera,)
                ).fetchone()
                if row and row[0] >= args.frames:
                    break
                time.sleep(0.1)
        end_to_end = args.frames / (time.perf_counter() - started)
        now = datetime.now(UTC)
        window = {"start": (now - timedelta(hours=1)).isoformat(), "end": now.isoformat()}
        for _ in range(100):
            t0 = time.perf_counter()
            api.get(
                f"/v1/cameras/{camera}/detections",
                params=window,
                headers={"X-API-Key": operator},
            )
            gets.append(time.perf_counter() - t0)
    print(f"bare predict loop (batch {batch}, CPU): {baseline:.1f} frames/s")
    print(f"end to end (API -> Kafka -> worker -> PostgreSQL): {end_to_end:.1f} frames/s")
    print(f"ratio end-to-end / bare: {end_to_end / baseline:.2f}")
    print(f"POST frame latency: {percentiles(posts)}")
    print(f"GET detections latency: {percentiles(gets)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
