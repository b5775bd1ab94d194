"""The upstream catalogue (infrastructure/cloud/upstream-charts.yaml) and its values files, and
the one way the program turns a catalogue entry into a Helm release.

ArgoCD renders the same releases from the same files (infrastructure/gitops/bootstrap), so the
values are merged here with Helm's own rules (maps merge, lists and scalars replace, null deletes).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from infra.facts.compatibility import COMPATIBILITY_FILE, Compatibility, compatibility
from infra.facts.paths import REPO_ROOT, relative
from infra.facts.stack_config import CLOUD_DIR

CATALOGUE_FILE = CLOUD_DIR / "upstream-charts.yaml"
VALUES_DIR = CLOUD_DIR / "values"
EXACT_VERSION = re.compile(r"^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$")
# Releases holding data: a `pulumi destroy` must not take them (protect), nor a failed upgrade
# roll them back by deleting what it created.
STATEFUL_RELEASES = frozenset({"redis", "minio", "openbao"})


class CatalogueError(ValueError):
    """The catalogue or a values file is invalid; the message names the file."""


class Release(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    namespace: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    repo: str = Field(pattern=r"^(https|oci)://\S+$")
    chart: str = Field(min_length=1)
    # From the compatibility table (charts.<name>), never from the catalogue file.
    version: str = Field(pattern=EXACT_VERSION.pattern)
    app_version: str = Field(alias="appVersion", min_length=1)
    sync_wave: int = Field(alias="syncWave")
    description: str = Field(min_length=1)

    def values_files(self, environment: str) -> tuple[Path, Path]:
        directory = VALUES_DIR / self.name
        return directory / "values.yaml", directory / f"values-{environment}.yaml"

    def values(self, environment: str) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for path in self.values_files(environment):
            if not path.is_file():
                raise CatalogueError(
                    f"{path.relative_to(REPO_ROOT)}: missing (every release needs both files)"
                )
            document = yaml.safe_load(path.read_text()) or {}
            if not isinstance(document, dict):
                raise CatalogueError(f"{path.relative_to(REPO_ROOT)}: must be a map")
            merged = merge_values(merged, document)
        return merged


def _with_program_values(
    release: Release, values: dict[str, Any], program_values: Mapping[str, Any], path: str = ""
) -> dict[str, Any]:
    merged = dict(values)
    for key, value in program_values.items():
        here = f"{path}{key}"
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _with_program_values(release, dict(merged[key]), value, here + ".")
        elif key in merged:
            raise CatalogueError(
                f"values/{release.name}: {here} is set by the program; remove it from the files"
            )
        else:
            merged[key] = value
    return merged


def merge_values(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's merge of values files: nested maps merge, anything else replaces, null deletes."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_values(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@dataclass(frozen=True)
class Catalogue:
    releases: tuple[Release, ...]

    def release(self, name: str) -> Release:
        for release in self.releases:
            if release.name == name:
                return release
        raise CatalogueError(f"{CATALOGUE_FILE.relative_to(REPO_ROOT)}: no release named {name!r}")

    def names(self) -> list[str]:
        return [r.name for r in self.releases]

    def in_wave_order(self, names: Sequence[str]) -> list[Release]:
        return sorted((self.release(n) for n in names), key=lambda r: (r.sync_wave, r.name))


def _with_table_versions(item: Any, table: Compatibility, path: Path) -> Any:
    """A catalogue entry with its chart and app versions from the compatibility table."""
    if not isinstance(item, dict):
        return item
    if "version" in item:
        raise CatalogueError(
            f"{relative(path)}: {item.get('name')}: version lives in "
            f"{relative(COMPATIBILITY_FILE)} (charts.{item.get('name')}), not here"
        )
    chart = table.chart(str(item.get("name")))
    return {**item, "version": chart.version, "appVersion": chart.app_version}


@cache
def load_catalogue(path: Path = CATALOGUE_FILE) -> Catalogue:
    document = yaml.safe_load(path.read_text()) or {}
    table = compatibility()
    try:
        releases = tuple(
            Release.model_validate(_with_table_versions(item, table, path)) for item in document["releases"]
        )
    except (KeyError, TypeError, ValidationError) as error:
        raise CatalogueError(f"{relative(path)}: {error}") from None
    names = [r.name for r in releases]
    if len(set(names)) != len(names):
        raise CatalogueError(f"{relative(path)}: release names must be unique")
    stale = sorted(set(table.charts) - set(names))
    if stale:
        raise CatalogueError(
            f"{relative(COMPATIBILITY_FILE)}: charts {stale}: no such release in {relative(path)}"
        )
    return Catalogue(releases)


def helm_release(
    release: Release,
    *,
    environment: str,
    provider: k8s.Provider,
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource] = (),
    protect: bool = False,
    program_values: Mapping[str, Any] | None = None,
) -> k8s.helm.v3.Release:
    """A catalogue entry as a Helm release: its exact chart version, repository and values.
    program_values are what only the program knows (a cluster name, an IRSA role's ARN); they
    go over the files' values and must not repeat a key the files set."""
    stateful = release.name in STATEFUL_RELEASES
    return k8s.helm.v3.Release(
        release.name,
        k8s.helm.v3.ReleaseArgs(
            name=release.name,
            chart=release.chart,
            version=release.version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=release.repo),
            namespace=release.namespace,
            create_namespace=True,
            values=_with_program_values(release, release.values(environment), program_values or {}),
            description=release.description,
            # A failed upgrade of a data stack is left for an operator, never rolled back blindly.
            atomic=not stateful,
            cleanup_on_fail=not stateful,
            max_history=10,
            timeout=900,
        ),
        opts=pulumi.ResourceOptions(
            parent=parent,
            provider=provider,
            depends_on=list(depends_on),
            protect=protect and stateful,
        ),
    )
