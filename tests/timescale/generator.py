"""A fixed, reproducible set of detections: the same rows for every engine and every run.

Cameras see traffic that rises and falls over the hours, each class with its own share;
frames come every few seconds with jitter and carry zero to several vehicles. Some rows sit
exactly on a minute boundary and some a microsecond before one, so a bucketing difference
between the two storage paths would show as a different count.
"""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from app.common.settings import VEHICLE_CLASSES

SEED = 20261125
# A fixed day: no partition the platform's its_maintain() creates (yesterday onwards) holds
# it, so the rows land in the default partition and are deleted by camera id afterwards.
START = datetime(2025, 3, 3, 5, 0, tzinfo=UTC)
CLASS_WEIGHTS = dict(zip(VEHICLE_CLASSES, (0.62, 0.14, 0.05, 0.11, 0.08), strict=True))


@dataclass(frozen=True)
class DetectionSet:
    rows: list[tuple[datetime, str, uuid.UUID, str, float, float, float, float, float]]
    cameras: list[str]
    start: datetime
    end: datetime

    def expected_counts(
        self, bucket: timedelta = timedelta(minutes=1)
    ) -> dict[tuple[datetime, str, str], int]:
        """Per-bucket counts per camera and class, computed here without any database."""
        origin = datetime(2000, 1, 1, tzinfo=UTC)
        counts: dict[tuple[datetime, str, str], int] = {}
        for ts, camera, _, cls, *_ in self.rows:
            key = (origin + (ts - origin) // bucket * bucket, camera, cls)
            counts[key] = counts.get(key, 0) + 1
        return counts


def generate(
    *,
    seed: int = SEED,
    start: datetime = START,
    hours: int = 6,
    cameras: int = 24,
    camera_prefix: str = "parity-cam",
    mean_frame_gap_s: float = 8.0,
) -> DetectionSet:
    rng = random.Random(seed)
    end = start + timedelta(hours=hours)
    camera_ids = [f"{camera_prefix}-{n:02d}" for n in range(cameras)]
    classes, weights = list(CLASS_WEIGHTS), list(CLASS_WEIGHTS.values())
    rows: list[tuple[datetime, str, uuid.UUID, str, float, float, float, float, float]] = []
    for camera in camera_ids:
        busy = rng.uniform(0.5, 2.5)  # this camera's traffic level
        phase = rng.uniform(0, 2 * math.pi)
        ts = start + timedelta(seconds=rng.uniform(0, mean_frame_gap_s))
        while ts < end:
            hour = (ts - start).total_seconds() / 3600
            mean = busy * (1.2 + math.sin(phase + hour * math.pi / 3))  # rush hours come and go
            frame = uuid.UUID(int=rng.getrandbits(128), version=4)
            shot = ts
            edge = rng.random()
            if edge < 0.01:  # exactly on a minute boundary: belongs to the new minute
                shot = ts.replace(second=0, microsecond=0)
            elif edge < 0.02:  # the last microsecond of a minute: belongs to the old one
                shot = ts.replace(second=59, microsecond=999_999)
            for _ in range(_poisson(rng, mean)):
                x1, y1 = rng.uniform(0, 600), rng.uniform(0, 400)
                rows.append(
                    (
                        shot,
                        camera,
                        frame,
                        rng.choices(classes, weights)[0],
                        round(rng.uniform(0.25, 0.99), 4),
                        round(x1, 1),
                        round(y1, 1),
                        round(x1 + rng.uniform(20, 200), 1),
                        round(y1 + rng.uniform(20, 150), 1),
                    )
                )
            ts += timedelta(seconds=rng.expovariate(1 / mean_frame_gap_s) + 0.2)
    rows.sort(key=lambda row: (row[0], row[1]))
    return DetectionSet(rows=rows, cameras=camera_ids, start=start, end=end)


def _poisson(rng: random.Random, mean: float) -> int:
    threshold, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= threshold:
            return k
        k += 1
