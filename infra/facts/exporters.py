"""infrastructure/prometheus/exporters.yaml: the cloud's exporters, the environments each runs
in, and the metric names each exports (the app's come from its own registry modules)."""

from __future__ import annotations

from functools import cache
from typing import Literal

from pydantic import Field, model_validator

from infra.facts._load import Strict, load
from infra.facts.paths import INFRASTRUCTURE

EXPORTERS_FILE = INFRASTRUCTURE / "prometheus" / "exporters.yaml"
Environment = Literal["dev", "staging", "prod"]


class Exporter(Strict):
    environments: list[Environment] = Field(min_length=1)
    source: str = Field(min_length=1)
    metrics: list[str] = Field(default_factory=list)
    # Modules whose prometheus_client metrics are this exporter's (the app's own /metrics).
    registry_modules: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _names_somewhere(self) -> Exporter:
        if not self.metrics and not self.registry_modules:
            raise ValueError("lists no metrics and no registry_modules")
        return self


class Exporters(Strict):
    exporters: dict[str, Exporter] = Field(min_length=1)

    def enabled_in(self, environment: str) -> dict[str, Exporter]:
        return {name: e for name, e in self.exporters.items() if environment in e.environments}


@cache
def exporters() -> Exporters:
    return load(Exporters, EXPORTERS_FILE)
