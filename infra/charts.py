"""The real Helm engine, found and called the way the tests and the local platform need it,
with renders cached: the chart tests validate these renders, and the app's containers mode
(infra/local/stacks/app.py) runs the API and worker with what the dev render gives them.

Helm is the installer's pinned build (HELM_VERSION in tools/versions.env, under the cache
dir), or ITS_HELM; either way its reported version must be the pin. A render is keyed by
everything that changes its output, so each chart is rendered once per environment and
capability set in a test session.
"""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from infra.facts.compatibility import compatibility
from infra.facts.paths import INFRASTRUCTURE
from infra.facts.versions import versions
from infra.kernel.layout import CACHE_DIR

CHARTS_DIR = INFRASTRUCTURE / "helm" / "charts"
GITOPS_DIR = INFRASTRUCTURE / "gitops"
ENVIRONMENTS = ("dev", "staging", "prod")
# API groups whose objects the charts render only when the cluster serves them.
OPTIONAL_APIS = (
    "monitoring.coreos.com/v1",
    "keda.sh/v1alpha1",
    "postgresql.cnpg.io/v1",
    "kafka.strimzi.io/v1beta2",
    "traefik.io/v1alpha1",
    "barmancloud.cnpg.io/v1",
)
# Every stack runs the compatibility table's minor (infrastructure/cloud/compatibility.yaml).
DEFAULT_KUBE_VERSION = compatibility().minor

Manifest = dict[str, Any]


class HelmError(RuntimeError):
    """helm exited non-zero (the message is its stderr), or is missing or not the pin."""


@functools.cache
def helm_binary() -> Path:
    """The pinned Helm build (ITS_HELM may point at another binary of the same version). A Helm
    of another version on PATH is never picked up: its renders would not be the pinned engine's."""
    pinned = versions()["HELM_VERSION"]
    helm = Path(os.environ.get("ITS_HELM") or CACHE_DIR / "helm" / pinned / "bin" / "helm")
    if not (helm.is_file() and os.access(helm, os.X_OK)):
        raise HelmError(f"helm {pinned} not found at {helm}: run tools/install.sh (or set ITS_HELM)")
    reported = subprocess.run(
        [str(helm), "version", "--template", "{{.Version}}"], capture_output=True, text=True, check=False
    ).stdout.strip()
    if reported != pinned:
        raise HelmError(
            f"{helm} is Helm {reported or '(no answer)'}, the pin is {pinned} (tools/versions.env)"
        )
    return helm


def kube_version(stack: str) -> str:
    """The stack's Kubernetes minor: the compatibility table's, the same for every stack."""
    del stack
    return DEFAULT_KUBE_VERSION


def schema_version(kube: str) -> str:
    """kube-version x.y -> x.y.0 for kubernetes-validate and helm."""
    parts = kube.lstrip("v").split(".")
    return ".".join([*parts, "0", "0"][:3])


@dataclass(frozen=True)
class Render:
    """Everything that decides what `helm template` prints."""

    chart: Path
    release: str
    namespace: str
    kube: str = DEFAULT_KUBE_VERSION
    value_files: tuple[Path, ...] = ()
    values_yaml: str = ""
    api_versions: tuple[str, ...] = OPTIONAL_APIS

    def command(self) -> list[str]:
        cmd = [
            str(helm_binary()),
            "template",
            self.release,
            str(self.chart),
            "--namespace",
            self.namespace,
            "--kube-version",
            schema_version(self.kube),
        ]
        for path in self.value_files:
            cmd += ["--values", str(path)]
        if self.values_yaml:
            cmd += ["--values", "-"]
        for api in self.api_versions:
            cmd += ["--api-versions", api]
        return cmd


@dataclass(frozen=True)
class Rendered:
    render: Render
    objects: tuple[Manifest, ...] = field(repr=False)
    text: str = field(repr=False)

    def of_kind(self, kind: str) -> list[Manifest]:
        return [o for o in self.objects if o.get("kind") == kind]

    def named(self, kind: str, name: str) -> Manifest:
        for obj in self.of_kind(kind):
            if obj["metadata"]["name"] == name:
                return obj
        raise KeyError(f"no {kind} {name} in the render of {self.render.chart.name}")


def run_helm(render: Render) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        render.command(), input=render.values_yaml, capture_output=True, text=True, timeout=120
    )


@functools.cache
def template(render: Render) -> Rendered:
    """Render with the real Helm engine; HelmError when Helm refuses (bad value, broken template)."""
    result = run_helm(render)
    if result.returncode != 0:
        raise HelmError(_without_symlink_notes(result.stderr))
    objects = tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)
    return Rendered(render, objects, result.stdout)


def _without_symlink_notes(stderr: str) -> str:
    # Helm notes every symlink it follows; they are expected (files/ -> infrastructure/).
    return "\n".join(line for line in stderr.splitlines() if "found symbolic link" not in line)


def charts() -> list[str]:
    return sorted(p.parent.name for p in CHARTS_DIR.glob("*/Chart.yaml"))


def workloads(objects: Iterable[Manifest]) -> Iterator[Manifest]:
    kinds = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod", "ReplicaSet"}
    return (o for o in objects if o.get("kind") in kinds)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@functools.cache
def bootstrap_values(env: str) -> dict[str, Any]:
    """The app of apps' values for one environment (chart defaults + the env's file)."""
    base = yaml.safe_load((GITOPS_DIR / "bootstrap" / "values.yaml").read_text())
    override = yaml.safe_load((GITOPS_DIR / "envs" / env / "bootstrap-values.yaml").read_text()) or {}
    return _merge(base, override)


def env_values_file(chart: str, env: str) -> Path:
    return GITOPS_DIR / "envs" / env / "values" / f"{chart}.yaml"


def env_render(
    chart: str, env: str, api_versions: tuple[str, ...] = OPTIONAL_APIS, values_yaml: str = ""
) -> Rendered:
    """The chart as the environment's Application deploys it (the same cache key as the ArgoCD
    walk in tests/gitops, so each chart renders once per environment and capability set);
    `values_yaml`: the Application's valuesObject (the program's `platform` values, for a chart
    that takes them)."""
    spec = bootstrap_values(env)["charts"][chart]
    return template(
        Render(
            chart=CHARTS_DIR / chart,
            release=chart,
            namespace=spec["namespace"],
            kube=kube_version(env),
            value_files=(env_values_file(chart, env),),
            values_yaml=values_yaml,
            api_versions=api_versions,
        )
    )
