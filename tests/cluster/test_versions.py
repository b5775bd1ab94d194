"""The local control plane runs the Kubernetes minor of the compatibility table, the one every
stack runs (infrastructure/cloud/compatibility.yaml), and kubectl is the same build."""

from __future__ import annotations

import ast
import json
import subprocess
from pathlib import Path

import pytest

from infra.cluster.config import STACKS, ClusterTools
from infra.facts.compatibility import compatibility, minor_of
from infra.facts.paths import REPO_ROOT
from infra.facts.stack_config import load_stack_file


@pytest.mark.parametrize("stack", STACKS)
def test_the_local_control_plane_is_the_stack_s_kubernetes_minor(stack: str) -> None:
    built = ClusterTools.locate().versions["KUBERNETES_VERSION"]  # tools/versions.env, e.g. v1.35.4
    declared = load_stack_file(stack).kubernetes_version  # the table's minor, e.g. 1.35
    assert declared == compatibility().minor
    assert minor_of(built) == declared, (stack, declared, built)


def test_kubectl_is_the_pinned_build_of_the_control_plane_s_release() -> None:
    tools = ClusterTools.locate()
    assert tools.kubectl.parent == tools.binary("kube-apiserver").parent
    version = json.loads(
        subprocess.run(
            [str(tools.kubectl), "version", "--client", "-o", "json"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
    )
    assert version["clientVersion"]["gitVersion"] == tools.versions["KUBERNETES_VERSION"]
    # Its built-in kustomize (`kubectl kustomize`, used on every overlay) is the pinned kustomize.
    assert version["kustomizeVersion"] == tools.versions["KUSTOMIZE_VERSION"]


def _runs_kubectl_from_path(tree: ast.AST) -> list[int]:
    """Lines that start a command with a bare "kubectl" or look it up on PATH."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.List) and node.elts:
            first = node.elts[0]
            if isinstance(first, ast.Constant) and first.value == "kubectl":
                lines.append(node.lineno)
        if isinstance(node, ast.Call) and any(
            isinstance(a, ast.Constant) and a.value == "kubectl" for a in node.args
        ):
            lines.append(node.lineno)
    return lines


def test_no_code_runs_a_kubectl_from_path() -> None:
    found = []
    for folder in ("infra", "tests", "loadtests", "app"):
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            for line in _runs_kubectl_from_path(ast.parse(path.read_text(), filename=str(path))):
                found.append(f"{Path(path).relative_to(REPO_ROOT)}:{line}")
    assert not found, f"use ClusterTools.locate().kubectl: {found}"
