"""The chart tests' Helm engine: infra/charts.py (shared with the local platform's containers
mode, so what the tests validate is what the containers run with), with what only the tests
know: the `platform` values the Pulumi program writes into the root Application, taken from
its run under mocks (tests/pulumi), for the charts that receive them."""

from __future__ import annotations

import functools
from typing import Any

import yaml

from infra import charts as engine
from infra.charts import (
    CHARTS_DIR,
    DEFAULT_KUBE_VERSION,
    ENVIRONMENTS,
    GITOPS_DIR,
    OPTIONAL_APIS,
    HelmError,
    Manifest,
    Render,
    Rendered,
    bootstrap_values,
    charts,
    env_values_file,
    helm_binary,
    kube_version,
    run_helm,
    schema_version,
    template,
    workloads,
)

__all__ = [
    "CHARTS_DIR",
    "DEFAULT_KUBE_VERSION",
    "ENVIRONMENTS",
    "GITOPS_DIR",
    "OPTIONAL_APIS",
    "HelmError",
    "Manifest",
    "Render",
    "Rendered",
    "bootstrap_values",
    "charts",
    "env_render",
    "env_values_file",
    "helm_binary",
    "kube_version",
    "platform_values",
    "platform_values_yaml",
    "run_helm",
    "schema_version",
    "template",
    "workloads",
]


@functools.cache
def platform_values(env: str) -> dict[str, Any]:
    """What the Pulumi program writes as `platform` into the environment's root Application (its
    run under mocks, tests/pulumi): the values a chart with `platformValues: true` receives."""
    from infra.pulumi.gitops_root import ROOT_APPLICATION
    from tests.pulumi.stacks import stack_run

    run = stack_run(env)
    (root,) = [
        r
        for r in run.of_type("kubernetes:argoproj.io/v1alpha1:Application")
        if r.inputs["metadata"]["name"] == ROOT_APPLICATION
    ]
    (source,) = [
        s for s in root.inputs["spec"]["sources"] if s.get("path") == "infrastructure/gitops/bootstrap"
    ]
    return dict(source["helm"]["valuesObject"]["platform"])


def platform_values_yaml(chart: str, env: str) -> str:
    """The chart's valuesObject as the app of apps sets it: `platform` for a chart that takes it."""
    if not bootstrap_values(env)["charts"][chart].get("platformValues"):
        return ""
    return yaml.safe_dump({"platform": platform_values(env)})


def env_render(chart: str, env: str, api_versions: tuple[str, ...] = OPTIONAL_APIS) -> Rendered:
    """The chart as the environment's Application deploys it, the program's values included."""
    return engine.env_render(chart, env, api_versions, values_yaml=platform_values_yaml(chart, env))
