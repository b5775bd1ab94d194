"""What the local Alertmanager delivered: a typed reader of the webhook receiver
(infra/local/alert_receiver.py), for tests and failover drills.

    from infra.local.alerts import AlertReceiver
    receiver = AlertReceiver.of_platform()            # ITS_PORT_BASE / ITS_STATE_DIR, as `make` sets
    mark = receiver.now()                              # before causing the fault
    ...
    got = receiver.wait_for("PostgresNoPrimary", "firing", timeout=120, since=mark)
    got.received_at - mark                             # seconds from the fault to the page
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from infra.kernel.layout import HOST
from infra.local.config import LocalPlatformConfig

Status = Literal["firing", "resolved"]


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
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    @classmethod
    def of(cls, cfg: LocalPlatformConfig) -> AlertReceiver:
        return cls(f"http://{HOST}:{cfg.ports.alert_receiver}")

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
        response = httpx.get(self.url, params={"since": repr(since)}, timeout=5)
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
