"""The local alerting path without the platform: the Alertmanager config the monitoring stack
renders (only the receivers and the root timing differ from the shared file; amtool accepts it)
and the webhook receiver, run as its own process, read back through the typed reader."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from infra.kernel.layout import HOST
from infra.kernel.ports import free_port
from infra.local.alerts import AlertReceiver
from infra.local.config import LocalPlatformConfig
from infra.local.stacks.monitoring import ALERTMANAGER_CONFIG, local_alertmanager_config

TIMING_KEYS = ("group_wait", "group_interval")


TOKEN = "the-receivers-token"


def test_the_local_config_changes_only_the_receivers_and_the_root_timing(tmp_path: Path) -> None:
    shared = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    alerting = LocalPlatformConfig.load().file.alerting
    token_file = tmp_path / "alert-receiver.token"
    token_file.write_text(TOKEN)
    local = local_alertmanager_config(shared, "http://127.0.0.1:1", token_file, alerting)
    assert local["inhibit_rules"] == shared["inhibit_rules"]
    strip = {key: value for key, value in local["route"].items() if key not in TIMING_KEYS}
    assert strip == {key: value for key, value in shared["route"].items() if key not in TIMING_KEYS}
    assert (local["route"]["group_wait"], local["route"]["group_interval"]) == (
        alerting.group_wait,
        alerting.group_interval,
    )
    assert [r["name"] for r in local["receivers"]] == [r["name"] for r in shared["receivers"]]
    for receiver in local["receivers"]:
        assert receiver["webhook_configs"] == [
            {
                "url": f"http://127.0.0.1:1/{receiver['name']}",
                "send_resolved": True,
                "http_config": {"authorization": {"type": "Bearer", "credentials_file": str(token_file)}},
            }
        ]
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(local))
    result = subprocess.run(["amtool", "check-config", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _start(port: int, journal: Path) -> subprocess.Popen[bytes]:
    token_file = journal.parent / "token"
    token_file.parent.mkdir(parents=True, exist_ok=True)
    token_file.write_text(TOKEN + "\n")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "infra.local.alert_receiver",
            f"--port={port}",
            f"--log={journal}",
            f"--token-file={token_file}",
        ]
    )
    deadline = time.monotonic() + 15
    while True:
        try:
            if httpx.get(f"http://{HOST}:{port}/-/ready", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the receiver did not come up"
        time.sleep(0.1)


@pytest.fixture
def receiver_process(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    port, journal = free_port(), tmp_path / "alerts" / "notifications.jsonl"
    process = _start(port, journal)
    yield port, journal
    process.terminate()
    process.wait(10)


def _notification(status: str, alertname: str, **labels: str) -> dict[str, object]:
    """The shape of Alertmanager's webhook payload (version 4)."""
    return {
        "version": "4",
        "status": status,
        "receiver": "tickets",
        "groupLabels": {"alertname": alertname},
        "alerts": [
            {
                "status": status,
                "labels": {"alertname": alertname, **labels},
                "annotations": {"summary": "s"},
                "startsAt": "2025-01-01T00:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
            }
        ],
    }


def test_the_receiver_records_each_notification_and_the_reader_types_it(
    receiver_process: tuple[int, Path], tmp_path: Path
) -> None:
    port, journal = receiver_process
    url = f"http://{HOST}:{port}"
    reader = AlertReceiver(url, TOKEN)
    login = reader.headers
    before = reader.now()
    posted = httpx.post(
        f"{url}/tickets", json=_notification("firing", "ScrapeTargetDown", job="node"), headers=login
    )
    assert posted.status_code == 200
    middle = reader.now()
    httpx.post(
        f"{url}/tickets", json=_notification("resolved", "ScrapeTargetDown", job="node"), headers=login
    )

    got = reader.received(before)
    assert [(n.receiver, n.status) for n in got] == [("tickets", "firing"), ("tickets", "resolved")]
    assert got[0].alerts[0].name == "ScrapeTargetDown" and got[0].alerts[0].labels["job"] == "node"
    assert before <= got[0].received_at <= middle
    assert [n.status for n in reader.received(middle)] == ["resolved"]
    resolved = reader.wait_for(
        "ScrapeTargetDown", "resolved", timeout=1, since=before, labels={"job": "node"}
    )
    assert resolved.status == "resolved"
    with pytest.raises(TimeoutError, match="ScrapeTargetDown firing"):
        reader.wait_for("ScrapeTargetDown", "firing", timeout=1, since=before, labels={"job": "redis"})
    # Refused: no receiver in the path, a body that is not JSON; nothing recorded for either.
    assert httpx.post(f"{url}/", json={}, headers=login).status_code == 400
    assert httpx.post(f"{url}/pages", content=b"not json", headers=login).status_code == 400
    assert len(journal.read_text().splitlines()) == 2


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": f"Basic {TOKEN}"}],
    ids=["none", "wrong-token", "no-scheme", "basic"],
)
def test_the_receiver_refuses_a_client_without_its_token(
    receiver_process: tuple[int, Path], headers: dict[str, str]
) -> None:
    port, journal = receiver_process
    url = f"http://{HOST}:{port}"
    posted = httpx.post(f"{url}/pages", json=_notification("firing", "PostgresNoPrimary"), headers=headers)
    assert posted.status_code == 401
    assert posted.headers["WWW-Authenticate"] == "Bearer"
    assert httpx.get(url, headers=headers).status_code == 401
    # Nothing was recorded, and the reader with the token sees the same.
    assert journal.read_text() == ""
    assert AlertReceiver(url, TOKEN).received() == []
    with pytest.raises(httpx.HTTPStatusError, match="401"):
        AlertReceiver(url, "wrong").received()
    # The readiness probe stays open: it tells nothing of what was received.
    assert httpx.get(f"{url}/-/ready").status_code == 200


def test_the_receiver_will_not_start_on_an_empty_token(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "infra.local.alert_receiver",
            f"--port={free_port()}",
            f"--log={tmp_path / 'journal.jsonl'}",
            f"--token-file={token_file}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert f"{token_file}: the alert receiver's token file is empty" in result.stderr


def test_what_was_received_survives_a_restart_of_the_receiver(tmp_path: Path) -> None:
    port, journal = free_port(), tmp_path / "notifications.jsonl"
    first = _start(port, journal)
    reader = AlertReceiver(f"http://{HOST}:{port}", TOKEN)
    httpx.post(
        f"http://{HOST}:{port}/pages",
        json=_notification("firing", "PostgresNoPrimary"),
        headers=reader.headers,
    )
    first.terminate()
    first.wait(10)
    second = _start(port, journal)
    try:
        got = reader.received()
        assert [(n.receiver, n.alerts[0].name) for n in got] == [("pages", "PostgresNoPrimary")]
    finally:
        second.terminate()
        second.wait(10)
