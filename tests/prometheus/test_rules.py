"""The rules Prometheus loads are valid, unit-tested by promtool, and each alert has a runbook."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from infra.facts.paths import REPO_ROOT

PROMETHEUS = REPO_ROOT / "infrastructure" / "prometheus"
RUNBOOK_PREFIX = "https://github.com/its-camera-ai/its-camera-ai/blob/main/"
SECTIONS = ("## Meaning", "## Confirm", "## Fix", "## Verify")


# The rules the local platform loads (rules/) and the cluster's versions of the platform-specific
# alerts (rules-cloud/, deployed by the its-monitoring chart).
RULE_DIRS = ("rules", "rules-cloud")


def _rule_files() -> list[Path]:
    return sorted(path for directory in RULE_DIRS for path in (PROMETHEUS / directory).glob("*.yaml"))


def _alerts_of(paths: list[Path]) -> list[dict[str, Any]]:
    return [
        rule
        for path in paths
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def _alerts() -> list[dict[str, Any]]:
    return _alerts_of(_rule_files())


def test_promtool_accepts_every_rule_file() -> None:
    files = [str(p) for p in _rule_files()]
    assert any("rules-cloud" in f for f in files)
    assert files
    result = subprocess.run(["promtool", "check", "rules", *files], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass() -> None:
    files = sorted(str(p) for p in (PROMETHEUS / "tests").glob("*.yaml"))
    result = subprocess.run(["promtool", "test", "rules", *files], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_labelled_and_has_a_runbook_with_the_four_sections() -> None:
    for alert in _alerts():
        name = alert["alert"]
        assert alert["labels"]["severity"] in {"page", "ticket"}, name
        annotations = alert["annotations"]
        assert annotations["summary"] and annotations["description"], name
        url = annotations["runbook_url"]
        assert url.startswith(RUNBOOK_PREFIX), name
        runbook = REPO_ROOT / url.removeprefix(RUNBOOK_PREFIX)
        assert runbook.is_file(), f"{name}: {runbook} missing"
        text = runbook.read_text()
        assert all(section in text for section in SECTIONS), f"{name}: {runbook.name} lacks a section"
        assert name in (REPO_ROOT / "docs" / "runbooks" / "README.md").read_text(), f"{name} not indexed"


def test_every_alert_has_a_promtool_case_that_fires_it_and_one_that_does_not() -> None:
    """Per test file, on the rule files it loads: an alert of the same name in the local and the
    cloud file is shown firing and quiet in each file's own cases."""
    covered: set[Path] = set()
    for path in (PROMETHEUS / "tests").glob("*.yaml"):
        document = yaml.safe_load(path.read_text())
        rule_files = [(path.parent / f).resolve() for f in document["rule_files"]]
        covered |= set(rule_files)
        fires: set[str] = set()
        quiet: set[str] = set()
        for case in document["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check["exp_alerts"] else quiet).add(check["alertname"])
        names = {alert["alert"] for alert in _alerts_of(rule_files)}
        assert names - fires == set(), f"{path.name}: alerts never shown firing"
        assert names - quiet == set(), f"{path.name}: alerts never shown quiet"
    assert {p.resolve() for p in _rule_files()} <= covered, "a rule file no promtool test loads"


def test_alertmanager_config_is_valid() -> None:
    result = subprocess.run(
        ["amtool", "check-config", str(PROMETHEUS / "alertmanager.yaml")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_kafka_jmx_config_exports_what_the_rules_use() -> None:
    config = yaml.safe_load((REPO_ROOT / "infrastructure" / "kafka" / "jmx-exporter.yaml").read_text())
    names = " ".join(rule["name"] for rule in config["rules"])
    rules_text = " ".join(p.read_text() for p in _rule_files())
    assert "kafka_server_replicamanager_underreplicatedpartitions" in rules_text
    assert "kafka_server_replicamanager_$1" in names
