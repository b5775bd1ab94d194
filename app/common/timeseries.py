"""The time-series settings of the schema (infrastructure/database/timeseries.yaml), typed."""

from __future__ import annotations

from functools import cache

import yaml
from pydantic import BaseModel, ConfigDict, Field

from app.common.paths import INFRASTRUCTURE

TIMESERIES_FILE = INFRASTRUCTURE / "database" / "timeseries.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DetectionsSettings(_Strict):
    chunk_interval: str
    compress_after: str
    retention: str


class CountsSettings(_Strict):
    bucket: str
    retention: str
    refresh_start_offset: str
    refresh_end_offset: str
    refresh_schedule: str


class FramesSettings(_Strict):
    retention: str


class Timeseries(_Strict):
    detections: DetectionsSettings
    vehicle_counts_1m: CountsSettings = Field(alias="vehicle_counts_1m")
    frames: FramesSettings


@cache
def load_timeseries() -> Timeseries:
    return Timeseries.model_validate(yaml.safe_load(TIMESERIES_FILE.read_text()))


TIMESERIES = load_timeseries()
