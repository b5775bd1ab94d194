"""What the live tests read: the running platform's Prometheus through its HTTP API, the rules
and dashboards as the repository defines them, and the timings of the configs the platform
rendered (so every bound is computed from what actually runs)."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

import httpx
import yaml

from infra.facts.paths import INFRASTRUCTURE
from infra.kernel.layout import HOST

# The rules and the rendered timings are read where the failover drills read them too.
from infra.local.alerts import RULES_DIR as RULES_DIR
from infra.local.alerts import Rule as Rule
from infra.local.alerts import Timings as Timings
from infra.local.alerts import rule as rule
from infra.local.alerts import rules as rules
from infra.local.alerts import seconds as seconds
from infra.local.config import LocalPlatformConfig

DASHBOARDS_DIR = INFRASTRUCTURE / "helm" / "charts" / "its-monitoring" / "dashboards"
CLOUD_ONLY_FILE = INFRASTRUCTURE / "prometheus" / "cloud-only.yaml"


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    panel: str
    expr: str


def _panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every panel, rows' nested panels included."""
    return [found for panel in panels for found in [panel, *_panels(panel.get("panels", []))]]


def panel_queries() -> list[PanelQuery]:
    return [
        PanelQuery(path.name, panel.get("title", ""), target["expr"])
        for path in sorted(DASHBOARDS_DIR.glob("*.json"))
        for panel in _panels(json.loads(path.read_text()).get("panels", []))
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


class Prometheus:
    def __init__(self, cfg: LocalPlatformConfig) -> None:
        self.url = f"http://{HOST}:{cfg.ports.prometheus}"

    def _get(self, path: str, **params: str) -> Any:
        response = httpx.get(f"{self.url}{path}", params=params, timeout=15)
        body = response.json()
        if body.get("status") != "success":
            raise PrometheusQueryError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query; its samples (a scalar comes back as one sample without labels)."""
        data = self._get("/api/v1/query", query=expr)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def value(self, expr: str) -> float:
        samples = self.query(expr)
        assert len(samples) == 1, f"{expr}: {len(samples)} samples"
        return float(samples[0]["value"][1])

    def has_series(self, metric: str) -> bool:
        data = self._get("/api/v1/series", **{"match[]": f'{{__name__="{metric}"}}'})
        return bool(data)

    def loaded_rule(self, name: str) -> dict[str, Any]:
        """The rule as Prometheus loaded and last evaluated it (health, lastError, duration)."""
        groups = self._get("/api/v1/rules")["groups"]
        found = [r for g in groups for r in g["rules"] if r["name"] == name]
        assert len(found) == 1, f"{name}: loaded {len(found)} times"
        return dict(found[0])

    def firing(self, alertname: str, labels: dict[str, str]) -> list[dict[str, Any]]:
        """The alert's firing instances on the alerts API that carry `labels`."""
        alerts = self._get("/api/v1/alerts")["alerts"]
        return [
            alert
            for alert in alerts
            if alert["labels"].get("alertname") == alertname
            and alert["state"] == "firing"
            and all(alert["labels"].get(k) == v for k, v in labels.items())
        ]

    def wait_for(self, expr: str, timeout: float, what: str) -> list[dict[str, Any]]:
        """The first non-empty result of `expr` within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            samples = self.query(expr)
            if samples:
                return samples
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: {expr} still empty after {timeout:.0f}s")
            time.sleep(1)


class PrometheusQueryError(RuntimeError):
    """Prometheus refused a query (a parse or execution error); the message is its own."""


# Words of PromQL that look like metric names to the scan below.
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: label matchers, strings, ranges and
    grouping clauses removed, then every identifier that is not a function call or keyword."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = re.findall(r"(?<![\w:.])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()", text)
    return {name for name in names if name.lower() not in _KEYWORDS}


def cloud_only() -> dict[str, str]:
    """Metric name -> why only a cluster has it (infrastructure/prometheus/cloud-only.yaml)."""
    listed: dict[str, str] = yaml.safe_load(CLOUD_ONLY_FILE.read_text())["metrics"]
    return listed
