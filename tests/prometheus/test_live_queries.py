"""Every alert expression, recording rule and dashboard query, evaluated on the live local
Prometheus: a recording rule or a panel returns a non-empty vector, an alert expression
evaluates and every metric it names has series, unless a metric it names is listed cloud-only
(infrastructure/prometheus/cloud-only.yaml, with the reason). A query that is neither fails."""

from __future__ import annotations

import pytest

from app.smoke import run_smoke
from tests.conftest import RunningPlatform
from tests.prometheus.live import (
    PanelQuery,
    Prometheus,
    Rule,
    Timings,
    cloud_only,
    metric_names,
    panel_queries,
    rules,
)

pytestmark = pytest.mark.platform


@pytest.fixture(scope="module")
def prometheus(local_platform: RunningPlatform) -> Prometheus:
    """The live Prometheus once the app has served a frame end to end (the app's metrics exist
    from then on) and the 5-minute rates and recording rules have seen it."""
    run_smoke(local_platform.api_url, local_platform.operator_key)
    prom = Prometheus(local_platform.cfg)
    timings = Timings.of(local_platform.cfg)
    # A frame's worker metrics are scraped within an interval, recorded within an evaluation.
    prom.wait_for(
        "job:its_worker_inference:p95_5m > 0",
        timeout=2 * (timings.scrape_interval + timings.evaluation_interval),
        what="the worker's inference recorded",
    )
    return prom


def _cloud_only_names(expr: str) -> set[str]:
    return metric_names(expr) & set(cloud_only())


def test_the_cloud_only_listing_is_not_stale(prometheus: Prometheus) -> None:
    present = {name for name in cloud_only() if prometheus.has_series(name)}
    assert not present, f"listed cloud-only but exported locally: {sorted(present)}"
    used = {name for r in rules() for name in metric_names(r.expr)} | {
        name for q in panel_queries() for name in metric_names(q.expr)
    }
    assert set(cloud_only()) <= used, f"listed but used by no query: {sorted(set(cloud_only()) - used)}"


@pytest.mark.parametrize("rule", [r for r in rules() if r.kind == "record"], ids=lambda r: r.name)
def test_each_recording_rule_has_a_value(prometheus: Prometheus, rule: Rule) -> None:
    if _cloud_only_names(rule.expr):
        # Cloud-only in part (one exporter's name or the other's): the local half must answer.
        assert prometheus.query(rule.name), f"{rule.name}: no value from the local half"
        return
    assert prometheus.query(rule.expr), f"{rule.name}: {rule.expr} is empty"
    assert prometheus.query(rule.name), f"{rule.name} is not recorded"


@pytest.mark.parametrize("rule", [r for r in rules() if r.kind == "alert"], ids=lambda r: r.name)
def test_each_alert_expression_evaluates_on_metrics_that_exist(prometheus: Prometheus, rule: Rule) -> None:
    prometheus.query(rule.expr)  # raises with Prometheus' own message on an invalid expression
    loaded = prometheus.loaded_rule(rule.name)
    assert loaded["health"] == "ok", f"{rule.name}: {loaded.get('lastError')}"
    names = metric_names(rule.expr)
    assert names, f"{rule.name}: no metric found in {rule.expr}"
    missing = {name for name in names - set(cloud_only()) if not prometheus.has_series(name)}
    assert not missing, f"{rule.name}: no series locally for {sorted(missing)} (nor listed cloud-only)"


@pytest.mark.parametrize("panel", panel_queries(), ids=lambda q: f"{q.dashboard}:{q.panel}:{q.expr}"[:120])
def test_each_dashboard_query_returns_a_result(prometheus: Prometheus, panel: PanelQuery) -> None:
    samples = prometheus.query(panel.expr)
    if listed := _cloud_only_names(panel.expr):
        assert not samples, f"{panel.panel}: answers locally although {sorted(listed)} is listed cloud-only"
        return
    assert samples, f"{panel.dashboard} / {panel.panel}: {panel.expr} is empty on the live Prometheus"
