"""The capacity plan (docs/capacity.md) as code, and a queueing simulation that checks it.

`python -m loadtests.capacity_sim --api-frames-per-cpu-s A --frames-insert-per-s I
--copy-rows-per-s C --kafka-records-per-s K --db-cores D --kafka-cores B --drain-ratio R
--gpu-ms-per-frame G` prints, for 100, 1,000 and 10,000 cameras at 1 and at 5 frames/s, the API
pods, worker GPUs, camera-events partitions, Kafka brokers and database cores the plan needs,
then simulates each case at the planned worker count (consumer lag must stay bounded) and at 80%
of it (lag must grow without bound wherever the plan's load model puts the busiest worker above
100%; cases sized by the three-worker minimum stay bounded there too, and the plan says so), and
prints each verdict; the exit code is 1 when a verdict disagrees.

Every input is a figure measured by a benchmark of this repository on this machine (the flags
name which), or the published GPU latency of the model family (YOLO11n, cited in
docs/capacity.md); nothing measured is written here. What is written here are the plan's
assumptions, each named and explained below (ASSUMPTIONS), and the simulation's bounds.

The simulation is pure Python, no servers, and bounded (a fixed number of time steps):
- cameras `camera-00001`.. each post frames at the planned rate; a camera's frames go to one
  camera-events partition (keyed by camera id, CRC32 as librdkafka's default partitioner), and
  each partition's arrivals per step are Poisson with its cameras' summed rate (burstier than
  cameras on a clock: conservative);
- the worker group splits the partitions as Kafka's assignors do (each worker floor or ceil of
  P/W partitions); a free worker takes up to `batch` frames from its partitions, waiting at most
  `batch_timeout` for a full batch (the worker's ITS_WORKER_BATCH_SIZE / _TIMEOUT_MS), and is
  busy for n x the planned per-frame service time;
- lag = frames arrived and not yet taken. Bounded: the lag's slope over the second half of the
  run is under 0.2% of the arrival rate and its last value under the bound (two full batches per
  worker plus one second of arrivals). Unbounded: otherwise (at 80% of a throughput-sized plan
  the lag climbs by hundreds of frames a second).
"""

from __future__ import annotations

import argparse
import math
import random
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CHART_VALUES = ROOT / "infrastructure" / "helm" / "charts" / "its-camera-ai" / "values.yaml"
CAMERAS = (100, 1_000, 10_000)
FRAMES_PER_S = (1.0, 5.0)


@dataclass(frozen=True)
class Assumptions:
    """What the plan assumes rather than measures; docs/capacity.md explains each."""

    # A GPU worker is planned to 85% busy at the most-loaded worker: the lag autoscaler
    # (KEDA) absorbs bursts above it; 80% of the planned workers then run above 100%.
    gpu_utilisation: float = 0.85
    # CPU services (API, PostgreSQL) planned to 70%: room for a burst and a replica lost.
    cpu_utilisation: float = 0.70
    # Kafka planned to 60%: with one broker of three down the other two carry its share.
    broker_utilisation: float = 0.60
    # The worker runs PyTorch, the published figure is TensorRT (FP16): half its speed, unmeasured.
    framework_factor: float = 0.5
    # Detections written per frame (the detections-write benchmark's default shape).
    detections_per_frame: int = 8
    # Messages per frame through the brokers: its camera-event and its vehicle-detections message.
    messages_per_frame: int = 2
    # The claim UPDATE of a frame costs what its INSERT costs.
    claim_per_insert: float = 1.0
    vcpus_per_broker: int = 4
    # Camera-events partitions per worker at the plan: scaling down to half keeps every worker
    # an equal share; partitions also a multiple of the three brokers (and zones).
    partitions_per_worker: int = 2
    brokers_minimum: int = 3
    workers_minimum: int = 3


@dataclass(frozen=True)
class Measured:
    """Figures the benchmarks printed (the flags say which benchmark)."""

    api_frames_per_cpu_s: float
    frames_insert_per_s: float
    copy_rows_per_s: float
    kafka_records_per_s: float
    db_cores: float
    kafka_cores: float
    drain_ratio: float
    gpu_ms_per_frame: float

    def gpu_frames_per_s(self, assumptions: Assumptions) -> float:
        """What one GPU worker is planned to process: the published model latency, as PyTorch,
        times the worker's measured pipeline efficiency (drain / bare loop)."""
        return 1000.0 / self.gpu_ms_per_frame * assumptions.framework_factor * self.drain_ratio


@dataclass(frozen=True)
class Case:
    cameras: int
    frames_per_camera_s: float

    @property
    def frames_per_s(self) -> float:
        return self.cameras * self.frames_per_camera_s


@dataclass(frozen=True)
class Plan:
    case: Case
    api_pods: int
    workers: int
    partitions: int
    brokers: int
    db_cores: int
    worst_worker_load: float


def pod_cpus(component: str) -> float:
    """A component's CPU limit in the its-camera-ai chart (<component>.resources.limits.cpu)."""
    values = yaml.safe_load(CHART_VALUES.read_text())
    raw = str(values[component]["resources"]["limits"]["cpu"])
    return float(raw[:-1]) / 1000 if raw.endswith("m") else float(raw)


def ingest_plan(
    case: Case, cameras_per_core: float, assumptions: Assumptions = Assumptions()
) -> tuple[int, int]:
    """(cameras per ingest pod at the CPU target, pods) for `case`: each camera costs its
    stream's decode and its samples' JPEG encoding, as bench_ingest_streams measured it at
    the case's sample rate (cameras one core holds)."""
    per_pod = math.floor(cameras_per_core * pod_cpus("ingest") * assumptions.cpu_utilisation)
    return per_pod, max(2, math.ceil(case.cameras / per_pod))


def camera_ids(count: int) -> list[str]:
    return [f"camera-{number:05d}" for number in range(1, count + 1)]


def partition_of(camera: str, partitions: int) -> int:
    return zlib.crc32(camera.encode()) % partitions


def partition_rates(case: Case, partitions: int) -> list[float]:
    rates = [0.0] * partitions
    for camera in camera_ids(case.cameras):
        rates[partition_of(camera, partitions)] += case.frames_per_camera_s
    return rates


def assignment(partitions: int, workers: int) -> list[list[int]]:
    """Partitions per worker as Kafka's assignors split them: floor or ceil of P/W each."""
    owned: list[list[int]] = [[] for _ in range(workers)]
    for partition in range(partitions):
        owned[partition % workers].append(partition)
    return owned


def worst_load(case: Case, partitions: int, workers: int, capacity: float) -> float:
    """The most-loaded worker's arrivals over its capacity."""
    rates = partition_rates(case, partitions)
    return max(sum(rates[p] for p in owned) for owned in assignment(partitions, workers)) / capacity


def round_up(value: float, multiple: int) -> int:
    return max(multiple, multiple * math.ceil(value / multiple))


def plan(case: Case, measured: Measured, assumptions: Assumptions = Assumptions()) -> Plan:
    a = assumptions
    capacity = measured.gpu_frames_per_s(a)
    workers = round_up(case.frames_per_s / (capacity * a.gpu_utilisation), a.brokers_minimum)
    workers = max(workers, a.workers_minimum)
    # Hashing spreads cameras unevenly: add workers (and their partitions) until the busiest
    # worker is within the target. Bounded: the partition count doubles at most a few times.
    while True:
        partitions = round_up(workers * a.partitions_per_worker, a.brokers_minimum)
        load = worst_load(case, partitions, workers, capacity)
        if load <= a.gpu_utilisation:
            break
        workers += a.brokers_minimum
    api = math.ceil(case.frames_per_s / (measured.api_frames_per_cpu_s * pod_cpus("api") * a.cpu_utilisation))
    # Per-core rates: the benchmark's rate over the cores the server had (shared, so low).
    insert_per_core = measured.frames_insert_per_s / measured.db_cores
    copy_per_core = measured.copy_rows_per_s / measured.db_cores
    db_seconds = case.frames_per_s * (1 + a.claim_per_insert) / insert_per_core
    db_seconds += case.frames_per_s * a.detections_per_frame / copy_per_core
    kafka_per_core = measured.kafka_records_per_s / measured.kafka_cores
    broker_cores = case.frames_per_s * a.messages_per_frame / (kafka_per_core * a.broker_utilisation)
    brokers = round_up(broker_cores / a.vcpus_per_broker, a.brokers_minimum)
    return Plan(
        case=case,
        api_pods=max(api, 2),
        workers=workers,
        partitions=partitions,
        brokers=brokers,
        db_cores=math.ceil(db_seconds / a.cpu_utilisation),
        worst_worker_load=load,
    )


@dataclass(frozen=True)
class SimResult:
    workers: int
    arrival_rate: float
    lag_end: float
    slope: float
    bound: float

    @property
    def bounded(self) -> bool:
        return self.slope < 0.002 * self.arrival_rate and self.lag_end <= self.bound


def poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method for small means, the normal approximation above 30."""
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def slope(samples: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (t, lag)."""
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_y = sum(y for _, y in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    return sum((t - mean_t) * (y - mean_y) for t, y in samples) / var if var else 0.0


def simulate(
    case: Case,
    partitions: int,
    workers: int,
    frame_seconds: float,
    *,
    batch: int,
    batch_timeout: float,
    seconds: float,
    step: float = 0.01,
    seed: int = 1,
) -> SimResult:
    rng = random.Random(seed)
    rates = partition_rates(case, partitions)
    owned = assignment(partitions, workers)
    queues = [0] * partitions
    busy_until = [0.0] * workers
    waiting_since: list[float | None] = [None] * workers
    samples: list[tuple[float, float]] = []
    steps = int(seconds / step)
    for number in range(steps):
        now = number * step
        for partition, rate in enumerate(rates):
            if rate:
                queues[partition] += poisson(rng, rate * step)
        for worker, mine in enumerate(owned):
            if busy_until[worker] > now:
                continue
            ready = sum(queues[p] for p in mine)
            if not ready:
                waiting_since[worker] = None
                continue
            since = waiting_since[worker]
            if since is None:
                waiting_since[worker] = since = now
            if ready < batch and now - since < batch_timeout:
                continue
            taken, want = 0, min(batch, ready)
            for p in mine:  # its partitions in turn, as a consumer's fetches come back
                take = min(queues[p], want - taken)
                queues[p] -= take
                taken += take
                if taken == want:
                    break
            busy_until[worker] = now + taken * frame_seconds
            waiting_since[worker] = None
        samples.append((now, float(sum(queues))))
    half = samples[len(samples) // 2 :]
    return SimResult(
        workers=workers,
        arrival_rate=case.frames_per_s,
        lag_end=samples[-1][1],
        slope=slope(half),
        bound=2 * batch * workers + case.frames_per_s,
    )


def parse(argv: list[str] | None) -> tuple[Measured, argparse.Namespace]:
    parser = argparse.ArgumentParser(prog="python -m loadtests.capacity_sim", description=__doc__)
    figures = {
        "api-frames-per-cpu-s": "bench_ingest: frames the API accepted per CPU-second of its process",
        "frames-insert-per-s": "bench_ingest: the frames INSERT direct step, per second",
        "copy-rows-per-s": "bench_detections_write: COPY rows per second",
        "kafka-records-per-s": "bench_kafka: kafka-producer-perf-test records/s (acks=all, RF 3)",
        "db-cores": "the cores PostgreSQL had during those runs (this machine's, shared)",
        "kafka-cores": "the cores the three brokers had during bench_kafka (this machine's, shared)",
        "drain-ratio": "bench_drain: worker drain / bare predict loop",
        "gpu-ms-per-frame": "published YOLO11n latency on a GPU, ms per frame (docs/capacity.md cites it)",
    }
    for flag, what in figures.items():
        parser.add_argument(f"--{flag}", type=float, required=True, help=what)
    parser.add_argument("--seconds", type=float, default=60.0, help="simulated seconds per case")
    parser.add_argument("--batch", type=int, default=16, help="the worker batch size in the GPU environments")
    parser.add_argument("--batch-timeout-ms", type=float, default=200.0)
    parser.add_argument("--max-cameras", type=int, default=max(CAMERAS))
    for fps in FRAMES_PER_S:
        parser.add_argument(
            f"--ingest-cameras-per-core-{fps:g}fps",
            type=float,
            help=f"bench_ingest_streams --sample-fps {fps:g}: cameras one core holds (optional)",
        )
    args = parser.parse_args(argv)
    values = {flag.replace("-", "_"): getattr(args, flag.replace("-", "_")) for flag in figures}
    if any(value <= 0 for value in values.values()):
        raise SystemExit("every measured figure must be positive")
    return Measured(**values), args


def main(argv: list[str] | None = None) -> int:
    measured, args = parse(argv)
    capacity = measured.gpu_frames_per_s(Assumptions())
    frame_seconds = 1 / capacity
    print(f"planned GPU worker: {capacity:,.0f} frames/s ({frame_seconds * 1000:.2f} ms a frame)")
    print("cameras  fps  frames/s  API pods  GPUs  partitions  brokers  DB cores  busiest GPU")
    plans = [plan(Case(c, f), measured) for c in CAMERAS if c <= args.max_cameras for f in FRAMES_PER_S]
    for p in plans:
        print(
            f"{p.case.cameras:>7,} {p.case.frames_per_camera_s:>4.0f} {p.case.frames_per_s:>9,.0f} "
            f"{p.api_pods:>9} {p.workers:>5} {p.partitions:>11} {p.brokers:>8} {p.db_cores:>9} "
            f"{p.worst_worker_load:>11.0%}"
        )
    ingest = {f: getattr(args, f"ingest_cameras_per_core_{f:g}fps") for f in FRAMES_PER_S}
    if all(ingest.values()):
        print(f"stream ingest ({pod_cpus('ingest'):g}-core pods at {Assumptions().cpu_utilisation:.0%} CPU):")
        print("cameras  fps  cameras/pod  pods")
        for p in plans:
            per_pod, pods = ingest_plan(p.case, ingest[p.case.frames_per_camera_s])
            print(f"{p.case.cameras:>7,} {p.case.frames_per_camera_s:>4.0f} {per_pod:>12} {pods:>5}")
    failures = 0
    for p in plans:
        below = max(1, math.floor(0.8 * p.workers))
        for workers in (p.workers, below):
            # What the plan's load model predicts: a worker above 100% busy never catches up.
            predicted = worst_load(p.case, p.partitions, workers, capacity) < 1
            result = simulate(
                p.case,
                p.partitions,
                workers,
                frame_seconds,
                batch=args.batch,
                batch_timeout=args.batch_timeout_ms / 1000,
                seconds=args.seconds,
            )
            ok = result.bounded == predicted and (workers != p.workers or result.bounded)
            failures += not ok
            print(
                f"{'PASS' if ok else 'FAIL'} {p.case.cameras:,} x {p.case.frames_per_camera_s:.0f} fps, "
                f"{workers} workers ({workers / p.workers:.0%} of plan): "
                f"lag {'bounded' if result.bounded else 'grows'} (end {result.lag_end:,.0f} frames, "
                f"slope {result.slope:,.1f} frames/s, bound {result.bound:,.0f}); "
                f"the plan predicts {'bounded' if predicted else 'growth'}"
            )
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
