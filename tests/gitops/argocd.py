"""Walk an environment's ArgoCD tree the way ArgoCD would, without a cluster.

`kubectl kustomize infrastructure/gitops/envs/<env>` gives the root Application (with the
program's `platform` values added, as infra/pulumi/gitops_root.py applies it); each
Application whose source is a Helm chart of this repository is rendered with the real Helm engine
exactly as its spec says (release name, destination namespace, `$values/...` value files,
valuesObject), and the Applications it yields are walked in turn. Sources pointing at upstream
chart repositories are collected, not rendered (no network here).
"""

from __future__ import annotations

import functools
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from infra.cluster.config import ClusterTools
from infra.facts.paths import REPO_ROOT
from infra.pulumi.gitops_root import with_platform_values
from tests.charts.helm import (
    GITOPS_DIR,
    OPTIONAL_APIS,
    Manifest,
    Render,
    Rendered,
    kube_version,
    platform_values,
    template,
)

DEFAULT_REPO_URL = "https://github.com/its-camera-ai/its-camera-ai.git"


@functools.cache
def kustomize(overlay: Path) -> tuple[Manifest, ...]:
    result = subprocess.run(
        [str(ClusterTools.locate().kubectl), "kustomize", str(overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {overlay} failed:\n{result.stderr}")
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def sources(app: Manifest) -> list[dict[str, Any]]:
    spec = app["spec"]
    return list(spec.get("sources") or [spec["source"]])


@dataclass(frozen=True)
class ChartRelease:
    """A chart of this repository as one Application deploys it."""

    application: str
    chart_path: str  # relative to the repository root
    rendered: Rendered = field(repr=False)

    @property
    def chart(self) -> str:
        return Path(self.chart_path).name

    @property
    def namespace(self) -> str:
        return self.rendered.render.namespace


@dataclass
class Tree:
    """Everything one environment's root Application leads to."""

    env: str
    applications: list[Manifest] = field(default_factory=list)
    releases: list[ChartRelease] = field(default_factory=list)
    upstream_sources: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def release(self, chart: str) -> ChartRelease:
        matches = [r for r in self.releases if r.chart == chart]
        if len(matches) != 1:
            raise KeyError(f"{self.env}: {len(matches)} releases of chart {chart}")
        return matches[0]

    def application(self, name: str) -> Manifest:
        for app in self.applications:
            if app["metadata"]["name"] == name:
                return app
        raise KeyError(f"{self.env}: no Application {name}")

    def objects(self) -> Iterator[tuple[ChartRelease, Manifest]]:
        for release in self.releases:
            for obj in release.rendered.objects:
                yield release, obj


def resolve_value_file(app: Manifest, source: dict[str, Any], value_file: str, repo_url: str) -> Path:
    """A value file path as ArgoCD resolves it: `$<ref>/path` in the ref source's repository,
    anything else relative to the source's path."""
    if value_file.startswith("$"):
        ref, _, rest = value_file[1:].partition("/")
        refs = [s for s in sources(app) if s.get("ref") == ref]
        if len(refs) != 1:
            raise ValueError(f"{app['metadata']['name']}: ${ref} names {len(refs)} sources")
        if refs[0]["repoURL"] != repo_url:
            raise ValueError(
                f"{app['metadata']['name']}: ${ref} is not this repository ({refs[0]['repoURL']})"
            )
        return REPO_ROOT / rest
    return REPO_ROOT / str(source["path"]) / value_file


def render_source(
    app: Manifest, source: dict[str, Any], repo_url: str, api_versions: tuple[str, ...], kube: str
) -> Rendered:
    helm = source.get("helm") or {}
    value_files = tuple(resolve_value_file(app, source, f, repo_url) for f in helm.get("valueFiles") or [])
    values_object = helm.get("valuesObject") or {}
    return template(
        Render(
            chart=REPO_ROOT / source["path"],
            release=helm.get("releaseName") or app["metadata"]["name"],
            namespace=app["spec"]["destination"]["namespace"],
            kube=kube,
            value_files=value_files,
            values_yaml=yaml.safe_dump(values_object) if values_object else "",
            api_versions=api_versions,
        )
    )


def walk(
    root: Manifest,
    env: str,
    repo_url: str,
    api_versions: tuple[str, ...] = OPTIONAL_APIS,
) -> Tree:
    tree = Tree(env)
    kube = kube_version(env)
    pending = [root]
    seen: set[str] = set()
    while pending:
        app = pending.pop(0)
        name = app["metadata"]["name"]
        if name in seen:
            raise ValueError(f"{env}: Application {name} is defined twice")
        seen.add(name)
        tree.applications.append(app)
        for source in sources(app):
            if source.get("ref"):
                continue
            if source["repoURL"] != repo_url:
                tree.upstream_sources.append((name, source))
                continue
            if not (REPO_ROOT / source["path"] / "Chart.yaml").is_file():
                raise ValueError(f"{name}: {source['path']} is not a Helm chart of this repository")
            rendered = render_source(app, source, repo_url, api_versions, kube)
            tree.releases.append(ChartRelease(name, source["path"], rendered))
            pending += rendered.of_kind("Application")
    return tree


def overlay(env: str) -> Path:
    return GITOPS_DIR / "envs" / env


def root_application(objects: tuple[Manifest, ...]) -> Manifest:
    roots = [o for o in objects if o.get("kind") == "Application"]
    if len(roots) != 1:
        raise ValueError(f"the overlay yields {len(roots)} Applications, expected the root only")
    return roots[0]


@functools.cache
def env_tree(env: str, api_versions: tuple[str, ...] = OPTIONAL_APIS) -> Tree:
    objects = kustomize(overlay(env))
    # The root as the Pulumi program applies it: the overlay's, with the program's `platform`.
    root = with_platform_values(root_application(objects), platform_values(env))
    repo_url = sources(root)[0]["repoURL"]
    return walk(root, env, repo_url, api_versions)


CATALOGUE = REPO_ROOT / "infrastructure" / "cloud" / "upstream-charts.yaml"


@functools.cache
def catalogue() -> tuple[dict[str, Any], ...]:
    """The Pulumi program's upstream releases (infrastructure/cloud/upstream-charts.yaml)."""
    document = yaml.safe_load(CATALOGUE.read_text())
    return tuple(document["releases"])
