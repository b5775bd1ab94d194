"""GitopsRoot: the GitOps root of the environment, i.e. what
`kubectl apply -k infrastructure/gitops/envs/<env>` installs (the its-bootstrap AppProject and
root Application), read from those files, not retyped.

The overlay's kustomize replacements copy each setting of `envs/<env>/settings.yaml` (repoURL,
targetRevision, ...) over its placeholder in `base/` (REPO_URL, TARGET_REVISION, ...);
`render_gitops_root` does the same substitution, and tests/pulumi compares the result with
`kubectl kustomize envs/<env>` so the two cannot drift apart.

Values from the program. What only the program knows about the environment's account (the
PostgreSQL backup bucket, its region, the database's IRSA role) reaches the charts ArgoCD syncs
one way: the program writes it as `platform` into the root Application's Helm values
(with_platform_values); the app of apps (infrastructure/gitops/bootstrap) hands `platform` to
each child Application whose chart entry sets `platformValues: true`, as its `platform` value.
Git never holds these; an Application applied from Git alone (the local cluster) has none, and
a chart that needs them fails to render, naming them (docs/runbooks/gitops.md).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from infra.facts.paths import REPO_ROOT

GITOPS_DIR = REPO_ROOT / "infrastructure" / "gitops"


@dataclass(frozen=True)
class GitopsRootArgs:
    environment: str
    provider: k8s.Provider
    # ArgoCD and the data stacks: the root syncs charts that configure them.
    depends_on: Sequence[pulumi.Resource] = ()
    # `platform` of the app of apps: the program's outputs the charts need (module docstring).
    platform_values: Mapping[str, Any] = field(default_factory=dict)


def gitops_settings(environment: str, gitops_dir: Path = GITOPS_DIR) -> dict[str, str]:
    path = gitops_dir / "envs" / environment / "settings.yaml"
    document = yaml.safe_load(path.read_text())
    data = {str(k): str(v) for k, v in document["data"].items()}
    if data.get("environment") != environment:
        raise ValueError(f"{path.relative_to(REPO_ROOT)}: data.environment is not {environment!r}")
    return data


def chart_namespace(chart: str, gitops_dir: Path = GITOPS_DIR) -> str:
    """The namespace the GitOps tree deploys one of this repository's charts into."""
    values = yaml.safe_load((gitops_dir / "bootstrap" / "values.yaml").read_text())
    return str(values["charts"][chart]["namespace"])


def placeholder(setting: str) -> str:
    """The placeholder base/ uses for a setting: repoURL -> REPO_URL, targetRevision -> TARGET_REVISION."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", setting).upper()


def _substitute(value: Any, replacements: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {_substitute(k, replacements): _substitute(v, replacements) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, replacements) for v in value]
    if isinstance(value, str):
        if value in replacements:
            return replacements[value]
        # Placeholders inside a path (…/envs/ENVIRONMENT/…) are whole path segments.
        segments = value.split("/")
        if any(s in replacements for s in segments):
            return "/".join(replacements.get(s, s) for s in segments)
    return value


def render_gitops_root(environment: str, gitops_dir: Path = GITOPS_DIR) -> list[dict[str, Any]]:
    """The objects of base/kustomization.yaml with the environment's settings applied."""
    base = gitops_dir / "base"
    kustomization = yaml.safe_load((base / "kustomization.yaml").read_text())
    replacements = {placeholder(k): v for k, v in gitops_settings(environment, gitops_dir).items()}
    objects = []
    for resource in kustomization["resources"]:
        document = yaml.safe_load((base / resource).read_text())
        document = _substitute(document, replacements)
        document.setdefault("metadata", {})["namespace"] = kustomization.get("namespace", "argocd")
        objects.append(document)
    return objects


ROOT_APPLICATION = "its-bootstrap"
BOOTSTRAP_PATH = "infrastructure/gitops/bootstrap"


def bootstrap_source(root: Mapping[str, Any]) -> dict[str, Any]:
    """The root Application's source that renders the app of apps."""
    (source,) = [s for s in root["spec"]["sources"] if s.get("path") == BOOTSTRAP_PATH]
    return dict(source)


def with_platform_values(document: dict[str, Any], platform: Mapping[str, Any]) -> dict[str, Any]:
    """The root Application with the program's `platform` values in its bootstrap source's
    valuesObject (the source with the bootstrap chart's path); other objects unchanged."""
    if document.get("kind") != "Application" or document["metadata"]["name"] != ROOT_APPLICATION:
        return document
    out = copy.deepcopy(document)
    (source,) = [s for s in out["spec"]["sources"] if s.get("path") == BOOTSTRAP_PATH]
    source["helm"].setdefault("valuesObject", {})["platform"] = dict(platform)
    return out


class GitopsRoot(pulumi.ComponentResource):
    def __init__(self, name: str, args: GitopsRootArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("its:gitops:GitopsRoot", name, None, opts)
        self.objects: list[k8s.apiextensions.CustomResource] = []
        self.object_names: list[str] = []
        previous: list[pulumi.Resource] = list(args.depends_on)
        # The project first: the root Application is rejected while its project does not exist.
        documents = [
            with_platform_values(d, args.platform_values) for d in render_gitops_root(args.environment)
        ]
        for document in sorted(documents, key=lambda d: d["kind"] != "AppProject"):
            metadata = document["metadata"]
            created = k8s.apiextensions.CustomResource(
                f"{name}-{document['kind'].lower()}-{metadata['name']}",
                api_version=document["apiVersion"],
                kind=document["kind"],
                metadata=metadata,
                spec=document["spec"],
                opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=previous),
            )
            self.objects.append(created)
            self.object_names.append(f"{document['kind']}/{metadata['name']}")
            previous = [*previous, created]
        self.register_outputs({"objects": self.object_names})
