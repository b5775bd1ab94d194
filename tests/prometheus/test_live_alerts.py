"""Alerts proven on the running platform: a real fault fires its alert on the live Prometheus,
Alertmanager delivers it to the local receiver within the bound the rendered configs imply, and
the recovery is delivered as resolved; the new alerts' metrics measure what they claim."""

from __future__ import annotations

import os
import re
import time
import uuid
from typing import Any

import httpx
import psycopg
import pytest
from confluent_kafka import KafkaError, Message, Producer

from app.common.contracts import FRAMES_TOPIC
from app.smoke import SAMPLE, run_smoke
from infra.local.alerts import AlertReceiver
from infra.local.stacks.monitoring import STATE_VOLUME, mount_point
from tests.conftest import RunningPlatform
from tests.prometheus.live import Prometheus, Timings, rule

pytestmark = pytest.mark.platform


@pytest.fixture(scope="module")
def prometheus(local_platform: RunningPlatform) -> Prometheus:
    return Prometheus(local_platform.cfg)


@pytest.fixture(scope="module")
def timings(local_platform: RunningPlatform) -> Timings:
    return Timings.of(local_platform.cfg)


@pytest.fixture(scope="module")
def receiver(local_platform: RunningPlatform) -> AlertReceiver:
    return AlertReceiver.of(local_platform.cfg)


def _epoch(local_platform: RunningPlatform, query: str, key: str) -> float:
    """A timestamp the database recorded, as epoch seconds (one row by its id)."""
    with psycopg.connect(local_platform.database_dsn) as conn:
        row = conn.execute(query, (key,)).fetchone()
    assert row is not None, (query, key)
    return float(row[0])


def test_a_stopped_scrape_target_is_ticketed_then_resolved(
    local_platform: RunningPlatform, prometheus: Prometheus, timings: Timings, receiver: AlertReceiver
) -> None:
    """node-exporter stopped: ScrapeTargetDown (for: 1m) fires on Prometheus, reaches the
    `tickets` receiver within scrape + for + evaluation + group_wait, and once it runs again the
    resolution arrives within scrape + evaluation + group_interval."""
    down = rule("ScrapeTargetDown")
    labels = {"job": "node"}
    assert not prometheus.firing(down.name, labels), "node-exporter was already down before the fault"
    fault = receiver.now()
    local_platform.supervisor.stop("node-exporter")
    try:
        fired = receiver.wait_for(
            down.name,
            "firing",
            timeout=timings.first_notification_bound(down.for_s),
            since=fault,
            labels=labels,
        )
        assert prometheus.firing(down.name, labels), "delivered but not firing on Prometheus"
        assert prometheus.query(f'ALERTS{{alertname="{down.name}", job="node", alertstate="firing"}}')
    finally:
        local_platform.supervisor.start("node-exporter")
    recovery = receiver.now()
    assert fired.receiver == "tickets"
    resolved = receiver.wait_for(
        down.name, "resolved", timeout=timings.resolution_bound(), since=recovery, labels=labels
    )
    assert resolved.receiver == "tickets"
    assert not prometheus.firing(down.name, labels)
    print(
        f"ScrapeTargetDown: delivered {fired.received_at - fault:.1f}s after the fault "
        f"(bound {timings.first_notification_bound(down.for_s):.0f}s), resolved "
        f"{resolved.received_at - recovery:.1f}s after the recovery (bound {timings.resolution_bound():.0f}s)"
    )


def _inject(kafka: dict[str, Any], value: bytes) -> None:
    failures: list[KafkaError] = []

    def delivered(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            failures.append(error)

    producer = Producer({**kafka, "acks": "all"})
    producer.produce(FRAMES_TOPIC, key=b"alerts-test", value=value, on_delivery=delivered)
    assert producer.flush(15) == 0 and not failures, failures


def test_a_dead_letter_is_ticketed(
    local_platform: RunningPlatform, prometheus: Prometheus, timings: Timings, receiver: AlertReceiver
) -> None:
    """A camera event that is not JSON: the worker dead-letters it, WorkerDeadLetters (no `for`)
    fires for its reason and reaches `tickets` (within the bound unless it already fired for an
    earlier dead letter in the rule's window: then that delivery is in the receiver's record)."""
    dead = rule("WorkerDeadLetters")
    labels = {"reason": "undecodable_event"}
    already = bool(prometheus.firing(dead.name, labels))
    injected = receiver.now()
    _inject(local_platform.kafka_config(), b"this is not a camera event")
    bound = timings.first_notification_bound(dead.for_s)
    notification = receiver.wait_for(
        dead.name, "firing", timeout=bound, since=0.0 if already else injected, labels=labels
    )
    assert notification.receiver == "tickets"
    assert prometheus.firing(dead.name, labels)
    if not already:
        assert notification.received_at - injected <= bound


def _register_camera(local_platform: RunningPlatform) -> str:
    camera = f"alerts-{uuid.uuid4().hex[:8]}"
    response = httpx.post(
        f"{local_platform.api_url}/v1/cameras",
        json={"id": camera, "name": "Alert test camera"},
        headers={"X-API-Key": local_platform.operator_key},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return camera


def _seconds_at_scrape(
    prometheus: Prometheus, camera: str, after: float, timeout: float
) -> tuple[float, float]:
    """(value, scrape time) of the camera's newest sample scraped after `after`, from each
    member's exporter alike (the lowest, as the recording rule takes it)."""
    selector = f'its_camera_seconds_since_frame{{camera_id="{camera}"}}'
    deadline = time.monotonic() + timeout
    while True:
        samples = prometheus.query(f"timestamp({selector}) > {after}")
        if samples:
            values = prometheus.query(selector)
            scraped = min(float(s["value"][1]) for s in samples)
            return min(float(s["value"][1]) for s in values), scraped
        assert time.monotonic() < deadline, (
            f"{selector}: no sample scraped after {after} within {timeout:.0f}s"
        )
        time.sleep(1)


def test_camera_silence_is_measured_from_registration_then_from_the_latest_frame(
    local_platform: RunningPlatform, prometheus: Prometheus, timings: Timings
) -> None:
    """CameraSilent's metric: a new camera's seconds count from its registration; once it sends
    a frame, from that frame's arrival (the database's own timestamps, read back)."""
    window = 2 * (timings.scrape_interval + timings.scrape_timeout)
    camera = _register_camera(local_platform)
    registered = _epoch(
        local_platform, "SELECT extract(epoch FROM created_at) FROM cameras WHERE id = %s", camera
    )
    value, scraped = _seconds_at_scrape(prometheus, camera, registered, window)
    # The exporter runs its query while Prometheus scrapes: now() lies within the scrape's timeout.
    assert scraped - registered <= value <= scraped - registered + timings.scrape_timeout

    posted = httpx.post(
        f"{local_platform.api_url}/v1/cameras/{camera}/frames",
        files={"file": (SAMPLE.name, SAMPLE.read_bytes(), "image/jpeg")},
        headers={"X-API-Key": local_platform.operator_key},
        timeout=15,
    )
    assert posted.status_code == 202, posted.text
    frame = posted.json()["frame_id"]
    received = _epoch(
        local_platform, "SELECT extract(epoch FROM received_at) FROM frames WHERE id = %s", frame
    )
    value, scraped = _seconds_at_scrape(prometheus, camera, received, window)
    assert scraped - received <= value <= scraped - received + timings.scrape_timeout
    recorded = prometheus.wait_for(
        f'camera:its_seconds_since_frame:min{{camera_id="{camera}"}} <= {value}',
        timeout=window,
        what="the recording rule over the frame's seconds",
    )
    assert recorded
    # The alert's threshold is far above a camera that just sent: it is not pending or firing.
    assert not prometheus.query(f'ALERTS{{alertname="CameraSilent", camera_id="{camera}"}}')


def _exporters_watching(local_platform: RunningPlatform, camera: str) -> list[int]:
    """The PostgreSQL exporters (one per member) whose CameraSilent query lists the camera: each
    runs the query when it is scraped, so this reads the query's answer now."""
    # The exporter adds its own `server` label beside the query's camera_id.
    series = re.compile(rf'^its_camera_seconds_since_frame{{[^}}]*camera_id="{re.escape(camera)}"', re.M)
    return [
        port
        for port in local_platform.cfg.ports.many("postgres_exporter")
        if series.search(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text)
    ]


def test_a_retired_camera_is_not_watched_and_a_returned_one_is(local_platform: RunningPlatform) -> None:
    """An operator disables a camera (PATCH enabled: false): CameraSilent's query drops it on every
    member (a replica once it has replayed the change); enabled again, it is watched again."""
    camera = _register_camera(local_platform)
    members = local_platform.cfg.ports.many("postgres_exporter")
    headers = {"X-API-Key": local_platform.operator_key}
    deadline = time.monotonic() + 10
    while _exporters_watching(local_platform, camera) != members:
        assert time.monotonic() < deadline, "the registered camera is not on every exporter"
        time.sleep(0.5)
    for enabled, expected in ((False, []), (True, members)):
        changed = httpx.patch(
            f"{local_platform.api_url}/v1/cameras/{camera}",
            json={"enabled": enabled},
            headers=headers,
            timeout=10,
        )
        assert changed.status_code == 200 and changed.json()["enabled"] is enabled, changed.text
        deadline = time.monotonic() + 10
        while (watching := _exporters_watching(local_platform, camera)) != expected:
            assert time.monotonic() < deadline, f"enabled={enabled}: exporters {watching} list it"
            time.sleep(0.5)


def test_the_state_directory_filesystem_is_the_local_data_volume(
    local_platform: RunningPlatform, prometheus: Prometheus
) -> None:
    """LocalStateDiskFillingUp's series: node-exporter's filesystem of the state directory, and
    only it, labelled volume="its-state"; its size is what the kernel says (statvfs)."""
    samples = prometheus.query(f'node_filesystem_size_bytes{{volume="{STATE_VOLUME}"}}')
    assert [s["metric"]["mountpoint"] for s in samples] == [mount_point(local_platform.cfg.state_dir)]
    stat = os.statvfs(local_platform.cfg.state_dir)
    assert float(samples[0]["value"][1]) == stat.f_blocks * stat.f_frsize
    volume = f'{{volume="{STATE_VOLUME}"}}'
    ratio = prometheus.value(f"node_filesystem_avail_bytes{volume} / node_filesystem_size_bytes{volume}")
    assert 0 < ratio <= 1


def test_inference_latency_is_recorded_from_the_worker(
    local_platform: RunningPlatform, prometheus: Prometheus, timings: Timings
) -> None:
    """InferenceLatencyHigh's input: after a frame is processed the recorded p95 exists, and the
    live Prometheus evaluates the alert over it without error, with the rule's `for`."""
    run_smoke(local_platform.api_url, local_platform.operator_key)
    prometheus.wait_for(
        "job:its_worker_inference:p95_5m > 0",
        timeout=2 * (timings.scrape_interval + timings.evaluation_interval),
        what="the worker's inference p95",
    )
    alert = rule("InferenceLatencyHigh")
    # Evaluated at least once since the p95 exists.
    time.sleep(timings.evaluation_interval)
    loaded = prometheus.loaded_rule(alert.name)
    assert loaded["health"] == "ok", loaded.get("lastError")
    assert loaded["duration"] == alert.for_s
