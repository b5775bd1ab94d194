"""This repository's charts as ArgoCD renders them: each chart's values.yaml under the
environment's values file (infrastructure/gitops/envs/<env>/values/<chart>.yaml), in the
namespace the GitOps tree deploys it to. The program reads them to know which Secrets the charts
name (infra/pulumi/secrets.py); it never renders them (ArgoCD owns their objects)."""

from __future__ import annotations

from typing import Any

import yaml

from infra.facts.paths import INFRASTRUCTURE
from infra.pulumi.catalogue import merge_values
from infra.pulumi.gitops_root import GITOPS_DIR

CHARTS_DIR = INFRASTRUCTURE / "helm" / "charts"


def project_charts() -> list[str]:
    """The charts the GitOps tree deploys (bootstrap values' `charts`)."""
    document = yaml.safe_load((GITOPS_DIR / "bootstrap" / "values.yaml").read_text())
    return sorted(name for name, chart in document["charts"].items() if chart.get("enabled", True))


def project_chart_values(chart: str, environment: str) -> dict[str, Any]:
    defaults = yaml.safe_load((CHARTS_DIR / chart / "values.yaml").read_text()) or {}
    overrides = yaml.safe_load((GITOPS_DIR / "envs" / environment / "values" / f"{chart}.yaml").read_text())
    return merge_values(defaults, overrides or {})
