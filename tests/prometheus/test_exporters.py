"""The cloud's alerting can fire: every metric a rule, a recording rule or a dashboard deployed to
an environment names is exported there, by an exporter infrastructure/prometheus/exporters.yaml
lists for that environment (or recorded by another rule). The rules and dashboards are read as
the real Helm renders them for the environment (its-camera-ai and its-monitoring)."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from functools import cache

import prometheus_client
import pytest

from infra.facts.exporters import exporters
from tests.charts.helm import ENVIRONMENTS, env_render
from tests.prometheus.live import metric_names

RULE_CHARTS = ("its-camera-ai", "its-monitoring")
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created")}


def _registry_names(modules: list[str]) -> set[str]:
    """The series names the modules' prometheus_client metrics expose (a Counter its_x_total is
    the family its_x with the sample its_x_total; a Histogram its _bucket, _count and _sum)."""
    for module in modules:
        importlib.import_module(module)
    names: set[str] = set()
    for family in prometheus_client.REGISTRY.collect():
        suffixes = SUFFIXES.get(family.type, ("",))
        names |= {family.name + suffix for suffix in suffixes}
    return names


@cache
def exported(environment: str) -> frozenset[str]:
    names: set[str] = set()
    for exporter in exporters().enabled_in(environment).values():
        names |= set(exporter.metrics)
        if exporter.registry_modules:
            names |= _registry_names(exporter.registry_modules)
    return frozenset(names)


def deployed_queries(environment: str) -> Iterator[tuple[str, str]]:
    """(where, expression) of every rule and dashboard panel the environment deploys."""
    for chart in RULE_CHARTS:
        rendered = env_render(chart, environment)
        for rule in rendered.of_kind("PrometheusRule"):
            for group in rule["spec"]["groups"]:
                for item in group["rules"]:
                    name = item.get("alert") or item.get("record")
                    yield f"{chart}:{group['name']}:{name}", item["expr"]
        for config_map in rendered.of_kind("ConfigMap"):
            for key, text in config_map.get("data", {}).items():
                if key.endswith(".json"):
                    yield from _panel_queries(f"{chart}:{key}", json.loads(text).get("panels", []))


def _panel_queries(where: str, panels: list[dict[str, object]]) -> Iterator[tuple[str, str]]:
    for panel in panels:
        for target in panel.get("targets", []) or []:  # type: ignore[attr-defined]
            if target.get("expr"):
                yield f"{where}:{panel.get('title', '')}", target["expr"]
        yield from _panel_queries(where, panel.get("panels", []) or [])  # type: ignore[arg-type]


def recorded(environment: str) -> set[str]:
    return {
        item["record"]
        for chart in RULE_CHARTS
        for rule in env_render(chart, environment).of_kind("PrometheusRule")
        for group in rule["spec"]["groups"]
        for item in group["rules"]
        if "record" in item
    }


def unknown(environment: str, queries: list[tuple[str, str]]) -> list[tuple[str, str]]:
    known = exported(environment) | recorded(environment)
    return sorted(
        (where, name) for where, expr in queries for name in metric_names(expr) if name not in known
    )


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_deployed_rule_and_dashboard_names_only_exported_metrics(env: str) -> None:
    queries = list(deployed_queries(env))
    # The walk sees rules, recordings and panels (a walk that finds nothing proves nothing).
    wheres = " ".join(where for where, _ in queries)
    assert "PostgresNoPrimary" in wheres and "camera:its_seconds_since_frame:min" in wheres
    assert "data-stacks.json" in wheres and "ApiAvailabilityBudgetBurnFast" in wheres
    assert unknown(env, queries) == []


def test_the_check_reports_a_metric_no_exporter_of_the_environment_exports() -> None:
    queries = [
        ("probe", "sum(patroni_primary) < 1"),
        ("kafka", "max(kafka_server_replicamanager_underreplicatedpartitions)"),
    ]
    assert unknown("prod", queries) == [("probe", "patroni_primary")]


def test_the_local_platform_s_own_alerts_are_not_deployed() -> None:
    """local.yaml names what only the local platform exports (Patroni, Sentinels, the probe)."""
    names = {where.split(":")[1] for where, _ in deployed_queries("prod")}
    assert "its-stacks-local" not in names and "its-stacks-cloud" in names


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_listed_exporter_is_scraped_in_the_environment(env: str) -> None:
    """The list is not wishful: each exporter with rules on it has a scrape object rendered."""
    monitors = {
        (obj["kind"], obj["metadata"]["name"])
        for chart in ("its-databases", "its-monitoring")
        for obj in env_render(chart, env).objects
        if obj.get("kind") in ("PodMonitor", "ServiceMonitor")
    }
    kinds = {kind for kind, _ in monitors}
    assert "PodMonitor" in kinds, monitors
    names = {name for _, name in monitors}
    assert {"its-postgres", "its-kafka-brokers", "its-kafka-exporter"} <= names, names
