"""infrastructure/database/timeseries.yaml: the time-series settings of the schema."""

from __future__ import annotations

from functools import cache

from infra.facts._load import Strict, load
from infra.facts.paths import INFRASTRUCTURE

TIMESERIES_FILE = INFRASTRUCTURE / "database" / "timeseries.yaml"


class DetectionsSettings(Strict):
    chunk_interval: str
    compress_after: str
    retention: str


class CountsSettings(Strict):
    bucket: str
    retention: str
    refresh_start_offset: str
    refresh_end_offset: str
    refresh_schedule: str


class FramesSettings(Strict):
    retention: str


class Timeseries(Strict):
    detections: DetectionsSettings
    vehicle_counts_1m: CountsSettings
    frames: FramesSettings


@cache
def timeseries() -> Timeseries:
    return load(Timeseries, TIMESERIES_FILE)
