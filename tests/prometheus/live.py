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
from infra.local.config import LocalPlatformConfig

RULES_DIR = INFRASTRUCTURE / "prometheus" / "rules"
DASHBOARDS_DIR = INFRASTRUCTURE / "helm" / "charts" / "its-monitoring" / "dashboards"
CLOUD_ONLY_FILE = INFRASTRUCTURE / "prometheus" / "cloud-only.yaml"
# Prometheus' scrape_timeout when the config leaves it out (capped at the scrape interval).
DEFAULT_SCRAPE_TIMEOUT_S = 10.0
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


def seconds(duration: str) -> float:
    """A Prometheus / Alertmanager duration ("1m", "30s", "1h30m") in seconds."""
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w|y)", duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise ValueError(f"not a duration: {duration!r}")
    return sum(int(number) * _UNITS[unit] for number, unit in parts)


@dataclass(frozen=True)
class Rule:
    file: str
    kind: str  # "alert" | "record"
    name: str
    expr: str
    for_s: float


def rules() -> list[Rule]:
    return [
        Rule(
            file=path.name,
            kind="alert" if "alert" in rule else "record",
            name=rule.get("alert") or rule["record"],
            expr=rule["expr"],
            for_s=seconds(rule["for"]) if "for" in rule else 0.0,
        )
        for path in sorted(RULES_DIR.glob("*.yaml"))
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def rule(name: str) -> Rule:
    return next(r for r in rules() if r.name == name)


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


@dataclass(frozen=True)
class Timings:
    """The local platform's alerting pipeline as rendered: Prometheus' scrape and evaluation
    intervals, and the timing of Alertmanager's root route (where tickets and pages group)."""

    scrape_interval: float
    scrape_timeout: float
    evaluation_interval: float
    group_wait: float
    group_interval: float

    @classmethod
    def of(cls, cfg: LocalPlatformConfig) -> Timings:
        prometheus = yaml.safe_load((cfg.conf_dir / "prometheus.yml").read_text())["global"]
        route = yaml.safe_load((cfg.conf_dir / "alertmanager.yml").read_text())["route"]
        interval = seconds(prometheus["scrape_interval"])
        timeout = seconds(prometheus["scrape_timeout"]) if "scrape_timeout" in prometheus else None
        return cls(
            scrape_interval=interval,
            scrape_timeout=min(timeout or DEFAULT_SCRAPE_TIMEOUT_S, interval),
            evaluation_interval=seconds(prometheus["evaluation_interval"]),
            group_wait=seconds(route["group_wait"]),
            group_interval=seconds(route["group_interval"]),
        )

    def first_notification_bound(self, for_s: float) -> float:
        """From a fault to its first notification: the failed scrape lands a sample (interval +
        timeout), the next evaluation sees it (pending), the alert fires at the first
        evaluation `for` later, and Alertmanager flushes a new group after group_wait."""
        return (
            self.scrape_interval
            + self.scrape_timeout
            + 2 * self.evaluation_interval
            + for_s
            + self.group_wait
        )

    def resolution_bound(self) -> float:
        """From the recovery to the resolved notification: the next scrape succeeds, the next
        evaluation resolves the alert, Alertmanager flushes the group at its next interval."""
        return self.scrape_interval + self.scrape_timeout + self.evaluation_interval + self.group_interval


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
