"""infrastructure/cloud/compatibility.yaml: the Kubernetes minor and what runs on it.

The one definition of the cluster's Kubernetes minor, the EKS add-on versions and the upstream
chart versions, each with the range of minors it supports and its source. Loading refuses an
entry whose range does not hold the minor (a local tool may instead say, in `note`, what proves
it here), and a local Kubernetes build (tools/versions.env) of another minor.
"""

from __future__ import annotations

import datetime
from functools import cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, model_validator

from infra.facts._load import FactFileError, Strict, load
from infra.facts.paths import INFRASTRUCTURE, relative
from infra.facts.versions import VERSIONS_FILE, versions

COMPATIBILITY_FILE = INFRASTRUCTURE / "cloud" / "compatibility.yaml"
EKS_ADDONS = ("vpc-cni", "kube-proxy", "coredns", "aws-ebs-csi-driver", "metrics-server")

Minor = Annotated[str, Field(pattern=r"^1\.\d{1,2}$")]
Source = Annotated[str, Field(min_length=10)]


def minor_key(minor: str) -> tuple[int, int]:
    major, _, rest = minor.partition(".")
    return int(major), int(rest)


def minor_of(version: str) -> str:
    """v1.35.4 -> 1.35."""
    major, minor, *_ = version.lstrip("v").split(".")
    return f"{major}.{minor}"


class Supported(Strict):
    """The Kubernetes minors a component supports; max None: no documented upper bound."""

    min: Minor
    max: Minor | None

    def holds(self, minor: str) -> bool:
        return minor_key(self.min) <= minor_key(minor) and (
            self.max is None or minor_key(minor) <= minor_key(self.max)
        )

    def describe(self) -> str:
        return f"{self.min}-{self.max or 'no upper bound'}"


class EksLifecycle(Strict):
    released: datetime.date
    end_of_standard_support: datetime.date = Field(alias="endOfStandardSupport")
    end_of_extended_support: datetime.date = Field(alias="endOfExtendedSupport")
    source: Source


class KubernetesMinor(Strict):
    minor: Minor
    eks: EksLifecycle


class Addon(Strict):
    version: str = Field(pattern=r"^v\d+\.\d+\.\d+-eksbuild\.\d+$")
    kubernetes: Supported
    source: Source


class Chart(Strict):
    # Exact, as the chart repository names it (jetstack's carry a leading v).
    version: str = Field(pattern=r"^v?\d+\.\d+\.\d+$")
    app_version: str = Field(alias="appVersion", min_length=1)
    kubernetes: Supported
    source: Source


class LocalTool(Strict):
    versions_key: str = Field(alias="versionsKey", pattern=r"^[A-Z][A-Z0-9_]*$")
    kubernetes: Supported
    source: Source
    # What covers the cluster's minor when it is outside the upstream's tested range.
    note: str


class Compatibility(Strict):
    kubernetes: KubernetesMinor
    addons: dict[str, Addon]
    charts: dict[str, Chart]
    local: dict[str, LocalTool]

    @model_validator(mode="after")
    def _everything_supports_the_minor(self) -> Compatibility:
        minor = self.kubernetes.minor
        problems = [
            f"{kind}.{name}.kubernetes: {entry.kubernetes.describe()} does not hold {minor}"
            for kind, entries in (("addons", self.addons), ("charts", self.charts))
            for name, entry in entries.items()
            if not entry.kubernetes.holds(minor)
        ]
        problems += [
            f"local.{name}.note: {minor} is outside {tool.kubernetes.describe()}; say what proves it here"
            for name, tool in self.local.items()
            if not tool.kubernetes.holds(minor) and not tool.note.strip()
        ]
        if "kubernetes" not in self.local:
            problems.append("local.kubernetes: missing (the local control plane's build)")
        if set(self.addons) != set(EKS_ADDONS):
            problems.append(f"addons: needs exactly {sorted(EKS_ADDONS)}, has {sorted(self.addons)}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def minor(self) -> str:
        return self.kubernetes.minor

    def addon_versions(self) -> dict[str, str]:
        return {name: addon.version for name, addon in self.addons.items()}

    def chart(self, release: str) -> Chart:
        try:
            return self.charts[release]
        except KeyError:
            raise FactFileError(
                f"{relative(COMPATIBILITY_FILE)}: charts.{release}: missing (every catalogue release "
                "needs its version, supported Kubernetes range and source here)"
            ) from None

    def local_version(self, tool: str) -> str:
        """The pinned version of a local tool, from tools/versions.env (its one definition)."""
        key = self.local[tool].versions_key
        try:
            return versions()[key]
        except KeyError:
            raise FactFileError(f"{relative(VERSIONS_FILE)}: {key}: missing") from None


def check_local_build(table: Compatibility, built: str, path: Path = COMPATIBILITY_FILE) -> None:
    """The local control plane (tools/versions.env KUBERNETES_VERSION) is of the table's minor."""
    if minor_of(built) != table.minor:
        raise FactFileError(
            f"{relative(VERSIONS_FILE)}: KUBERNETES_VERSION: {built} is not of the cluster's minor "
            f"{table.minor} ({relative(path)} kubernetes.minor)"
        )


@cache
def compatibility(path: Path = COMPATIBILITY_FILE) -> Compatibility:
    table = load(Compatibility, path)
    check_local_build(table, table.local_version("kubernetes"), path)
    return table
