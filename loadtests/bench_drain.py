"""Benchmark: the worker draining a backlog, against a bare YOLO predict loop in the same run.

`python -m loadtests.bench_drain [--frames N] [--rounds R]` against the running platform
(`make up`). The platform's own worker is stopped for the run and started again after it.

1. Staged as the API stages a frame (object in the frames bucket, its row, its camera-event,
   acks=all), but by the platform's admin and before any worker runs: N frames of the sample
   street scenes for a camera of the run's own.
2. Drain: the app's Worker, in this process, with the worker identity's settings (Vault,
   Kafka, PostgreSQL, MinIO, Redis as it runs), consumes the backlog; the rate counts the
   frames recorded after its first batch (the model's warm-up) over the time they took, read
   from the database it writes.
3. Baseline: the same detector, weights, images (decoded from the staged bytes), batch size and
   torch thread count in a bare predict loop.

Each round runs both, baseline first; the figures printed are the medians over the rounds and
the ratio drain / bare. With them, the CPU seconds each party used during the last drain (this
process, each supervised program of the platform with its children, and everything else on the
machine): the worker shares the box with the stores it writes to, and this says how much of
the two cores they took. Nothing is asserted: this prints what it measured.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil
import psycopg
import torch
from confluent_kafka import Producer
from PIL import Image

from app.common.contracts import FRAMES_BUCKET, FRAMES_TOPIC, FrameEvent, frame_id_for, frame_object_key
from app.common.settings import Settings
from app.worker import metrics
from app.worker.consumer import Worker
from app.worker.detector import Detector, resolve_weights
from infra.kernel.ports import free_port
from infra.local.config import LocalPlatformConfig
from infra.local.platform import Platform
from infra.local.stacks import App, Kafka, Minio, Postgres
from infra.local.stacks.app import WORKER_IDENTITY

SAMPLES = sorted((Path(__file__).resolve().parents[1] / "app" / "worker" / "samples").glob("*.jpg"))
DRAIN_TIMEOUT_S = 600


@dataclass(frozen=True)
class Staged:
    camera: str
    images: list[bytes]


def stage(platform: Platform, frames: int) -> Staged:
    """N frames of a new camera: objects, rows and camera-events, all acknowledged."""
    camera = f"drain-{uuid.uuid4().hex[:8]}"
    images = [SAMPLES[i % len(SAMPLES)].read_bytes() for i in range(frames)]
    store = platform.stack(Minio).root_client()
    producer = Producer({**platform.stack(Kafka).client_config(), "acks": "all", "linger.ms": 5})
    failures: list[str] = []
    with psycopg.connect(platform.stack(Postgres).superuser_dsn("its")) as conn:
        conn.execute("INSERT INTO cameras (id, name) VALUES (%s, %s)", (camera, "drain benchmark"))
        for index, data in enumerate(images):
            frame_id = frame_id_for(camera, f"drain-{index}")
            key = frame_object_key(camera, frame_id, f"{index:016x}", "jpg")
            store.put_object(FRAMES_BUCKET, key, io.BytesIO(data), len(data), "image/jpeg")
            event = FrameEvent(
                frame_id=frame_id,
                camera_id=camera,
                object_key=key,
                captured_at=datetime.now(UTC),
                content_type="image/jpeg",
            )
            conn.execute(
                """INSERT INTO frames (id, camera_id, captured_at, object_key, content_type, size_bytes)
                   VALUES (%s, %s, %s, %s, %s, %s)""",
                (frame_id, camera, event.captured_at, key, "image/jpeg", len(data)),
            )
            producer.produce(
                FRAMES_TOPIC,
                key=camera,
                value=event.model_dump_json().encode(),
                on_delivery=lambda error, _m: failures.append(str(error)) if error else None,
            )
            producer.poll(0)
        conn.commit()
    if producer.flush(30) or failures:
        raise SystemExit(f"staging: camera-events not acknowledged: {failures[:3]}")
    return Staged(camera, images)


def processed(dsn: str, camera: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM frames WHERE camera_id = %s AND processed_at IS NOT NULL", (camera,)
        ).fetchone()
    return int(row[0]) if row else 0


async def drain(settings: Settings, dsn: str, staged: Staged) -> tuple[float, int]:
    """Frames/s of the app's worker over the backlog after its first batch; and that batch's size."""
    worker = Worker(settings)
    running = asyncio.create_task(worker.run())
    total = len(staged.images)
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    first, first_at = 0, 0.0
    try:
        while True:
            done = await asyncio.to_thread(processed, dsn, staged.camera)
            now = time.monotonic()
            if done and not first:
                first, first_at = done, now
            if done >= total:
                break
            if now > deadline or running.done():
                raise SystemExit(f"drain: {done} of {total} frames recorded; worker ended: {running.done()}")
            await asyncio.sleep(0.02)
    finally:
        worker.stopping = True
        await running
    if total == first:
        raise SystemExit("drain: the first batch took the whole backlog; stage more frames (--frames)")
    return (total - first) / (now - first_at), first


def cpu_seconds(process: psutil.Process) -> float | None:
    """CPU seconds of a process and its children; None for one that is gone (not measured)."""
    try:
        family = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return None
    total = 0.0
    for member in family:
        try:
            times = member.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


class CpuShares:
    """CPU seconds per party over a span: this process, each platform program, the rest."""

    def __init__(self, platform: Platform) -> None:
        self.parties = {"this process (the worker)": psutil.Process()}
        for name, info in platform.supervisor.info().items():
            if info["pid"]:
                self.parties[name] = psutil.Process(info["pid"])

    def __enter__(self) -> CpuShares:
        self.before = {name: cpu_seconds(p) for name, p in self.parties.items()}
        self.machine_before = _machine_busy()
        self.started = time.monotonic()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.seconds = time.monotonic() - self.started
        after = {name: cpu_seconds(p) for name, p in self.parties.items()}
        # A program that stopped or restarted meanwhile has no measured share: named, not counted.
        self.unmeasured = sorted(n for n in after if after[n] is None or self.before[n] is None)
        self.used = {
            name: used - start
            for name, used in after.items()
            if used is not None and (start := self.before[name]) is not None
        }
        self.machine = _machine_busy() - self.machine_before

    def report(self) -> str:
        ranked = sorted(self.used.items(), key=lambda item: -item[1])
        others = self.machine - sum(self.used.values())
        lines = [f"CPU seconds during the last drain ({self.seconds:.1f} s wall, 2 cores):"]
        lines += [f"  {name}: {used:.1f}" for name, used in ranked if used >= 0.1]
        lines.append(f"  everything else on the machine: {max(others, 0.0):.1f}")
        if self.unmeasured:
            gone = ", ".join(self.unmeasured)
            lines.append(f"  not measured (stopped or restarted during the drain): {gone}")
        return "\n".join(lines)


def _machine_busy() -> float:
    times = psutil.cpu_times()
    return float(times.user + times.nice + times.system + times.irq + times.softirq)


def bare_rate(detector: Detector, images: list[Image.Image], batch: int) -> tuple[float, float]:
    """Frames/s of the bare loop, and its mean seconds per batch."""
    detector.detect(images[:batch])  # warm, as the worker is after its first batch
    started = time.perf_counter()
    batches = 0
    for start in range(0, len(images), batch):
        detector.detect(images[start : start + batch])
        batches += 1
    elapsed = time.perf_counter() - started
    return len(images) / elapsed, elapsed / batches


def inference_totals() -> tuple[float, float]:
    """The worker's own record of inference (its histogram in this process): seconds, batches."""
    samples = {s.name: s.value for metric in metrics.INFERENCE.collect() for s in metric.samples}
    return samples["its_worker_inference_seconds_sum"], samples["its_worker_inference_seconds_count"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=240)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    platform = Platform(LocalPlatformConfig.load(), log=lambda _line: None)
    os.environ.update(platform.stack(App).environment(WORKER_IDENTITY))
    settings = Settings()
    dsn = platform.stack(Postgres).superuser_dsn("its")
    detector = Detector(
        resolve_weights(settings.model_uri, None, Path()),
        settings.device,
        settings.worker_confidence,
        settings.vehicle_classes,
    )
    bare_rates: list[float] = []
    drain_rates: list[float] = []
    platform.supervisor.stop("worker")
    try:
        for round_number in range(1, args.rounds + 1):
            staged = stage(platform, args.frames)
            decoded = [Image.open(io.BytesIO(data)).convert("RGB") for data in staged.images]
            bare, bare_batch_s = bare_rate(detector, decoded, settings.worker_batch_size)
            bare_rates.append(bare)
            # Each round's worker serves its metrics on a port of its own (a server never stops).
            os.environ["ITS_WORKER_METRICS_PORT"] = str(free_port())
            seconds_before, batches_before = inference_totals()
            with CpuShares(platform) as shares:
                rate, first = asyncio.run(drain(Settings(), dsn, staged))
            seconds, batches = inference_totals()
            worker_batch_s = (seconds - seconds_before) / (batches - batches_before)
            drain_rates.append(rate)
            print(
                f"round {round_number}: bare {bare_rates[-1]:.1f} frames/s, drain {rate:.1f} frames/s "
                f"({args.frames - first} frames after a first batch of {first})",
                flush=True,
            )
    finally:
        platform.supervisor.start("worker")
    bare, drained = statistics.median(bare_rates), statistics.median(drain_rates)
    print(
        f"batch {settings.worker_batch_size}, device {settings.device}, "
        f"torch threads {torch.get_num_threads()}"
    )
    print(f"bare predict loop: {bare:.1f} frames/s (median of {args.rounds})")
    print(f"worker drain (Kafka -> MinIO -> YOLO -> PostgreSQL, Kafka, Redis): {drained:.1f} frames/s")
    print(f"ratio drain / bare: {drained / bare:.2f} (goal >= 0.9)")
    print(
        f"inference per batch in the last round: bare loop {bare_batch_s * 1000:.0f} ms, "
        f"in the worker {worker_batch_s * 1000:.0f} ms (its first batch included)"
    )
    print(shares.report())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
