"""What the local Alertmanager delivered: a typed reader of the webhook receiver
(infra/local/alert_receiver.py), for tests and failover drills.

    from infra.local.alerts import AlertReceiver
    receiver = AlertReceiver.of_platform()            # ITS_PORT_BASE / ITS_STATE_DIR, as `make` sets
    mark = receiver.now()                              # before causing the fault
    ...
    got = receiver.wait_for("PostgresNoPrimary", "firing", timeout=120, since=mark)
    got.received_at - mark                             # seconds from the fault to the page

Also the rules as the repository defines them and the timings of the configs the platform
rendered, so a bound on a delivery is computed from what runs, and when Prometheus itself
turned an alert firing (its ALERTS series).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import yaml

from infra.facts.paths import INFRASTRUCTURE
from infra.kernel.layout import HOST
from infra.local.config import LocalPlatformConfig

Status = Literal["firing", "resolved"]
RULES_DIR = INFRASTRUCTURE / "prometheus" / "rules"
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

    @property
    def lookback_s(self) -> float:
        """The longest range its expression looks back over ([1m] -> 60): an alert on a change
        within a window stays firing that long after the change, whatever happens meanwhile."""
        ranges = re.findall(r"\[(\w+)(?::\w*)?\]", self.expr)
        return max((seconds(r) for r in ranges), default=0.0)


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


def fired_at(
    cfg: LocalPlatformConfig, alertname: str, since: float, labels: Mapping[str, str] | None = None
) -> float | None:
    """When Prometheus first evaluated `alertname` (with `labels`) as firing at or after `since`
    (epoch seconds): the timestamp of its first ALERTS sample in that state, as Prometheus wrote
    it; None when it has not fired since."""
    matchers = {"alertname": alertname, "alertstate": "firing", **(labels or {})}
    selector = ",".join(f'{key}="{value}"' for key, value in matchers.items())
    window = max(1, int(time.time() - since) + 1)
    response = httpx.get(
        f"http://{HOST}:{cfg.ports.prometheus}/api/v1/query",
        params={"query": f"ALERTS{{{selector}}}[{window}s]"},
        timeout=15,
    )
    response.raise_for_status()
    moments = [
        float(moment)
        for series in response.json()["data"]["result"]
        for moment, _ in series["values"]
        if float(moment) >= since
    ]
    return min(moments, default=None)


@dataclass(frozen=True)
class Alert:
    """One alert of a notification, as Alertmanager's webhook payload carries it."""

    name: str
    status: Status
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: str
    ends_at: str

    @classmethod
    def from_payload(cls, alert: Mapping[str, Any]) -> Alert:
        labels = dict(alert.get("labels", {}))
        return cls(
            name=labels.get("alertname", ""),
            status=alert["status"],
            labels=labels,
            annotations=dict(alert.get("annotations", {})),
            starts_at=alert.get("startsAt", ""),
            ends_at=alert.get("endsAt", ""),
        )


@dataclass(frozen=True)
class Notification:
    """One webhook call: which receiver (`pages`, `tickets`), when it arrived (seconds since the
    epoch, the receiver's clock, the same machine's), the group's status and its alerts."""

    receiver: str
    received_at: float
    status: Status
    group_labels: Mapping[str, str]
    alerts: tuple[Alert, ...]

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Notification:
        payload = record["notification"]
        return cls(
            receiver=record["receiver"],
            received_at=float(record["received_at"]),
            status=payload["status"],
            group_labels=dict(payload.get("groupLabels", {})),
            alerts=tuple(Alert.from_payload(alert) for alert in payload.get("alerts", [])),
        )

    def matching(self, alertname: str, status: Status, labels: Mapping[str, str]) -> list[Alert]:
        """Its alerts named `alertname` in `status` whose labels include `labels`."""
        return [
            alert
            for alert in self.alerts
            if alert.name == alertname
            and alert.status == status
            and all(alert.labels.get(key) == value for key, value in labels.items())
        ]


class AlertReceiver:
    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"}

    @classmethod
    def of(cls, cfg: LocalPlatformConfig) -> AlertReceiver:
        """The platform's receiver, logged in with the token the platform generated for it."""
        token = cfg.alert_receiver_token_file.read_text().strip()
        return cls(f"http://{HOST}:{cfg.ports.alert_receiver}", token)

    @classmethod
    def of_platform(cls) -> AlertReceiver:
        """The receiver of the platform ITS_PORT_BASE names (platform.yaml's base otherwise)."""
        return cls.of(LocalPlatformConfig.load())

    @staticmethod
    def now() -> float:
        """A mark to pass as `since`: the receiver stamps arrivals with the same clock."""
        return time.time()

    def received(self, since: float = 0.0) -> list[Notification]:
        """Every notification received at or after `since` (seconds since the epoch), oldest first."""
        response = httpx.get(self.url, params={"since": repr(since)}, headers=self.headers, timeout=5)
        response.raise_for_status()
        return [Notification.from_record(record) for record in response.json()]

    def wait_for(
        self,
        alertname: str,
        status: Status = "firing",
        timeout: float = 120,
        since: float = 0.0,
        labels: Mapping[str, str] | None = None,
    ) -> Notification:
        """The first notification since `since` carrying `alertname` in `status` (with `labels`,
        when given); TimeoutError naming what did arrive when none does within `timeout`."""
        wanted = dict(labels or {})
        deadline = time.monotonic() + timeout
        while True:
            notifications = self.received(since)
            for notification in notifications:
                if notification.matching(alertname, status, wanted):
                    return notification
            if time.monotonic() > deadline:
                seen = sorted({(a.name, a.status) for n in notifications for a in n.alerts})
                raise TimeoutError(
                    f"{alertname} {status} {wanted or ''} not received within {timeout:.0f}s; received {seen}"
                )
            time.sleep(1)
