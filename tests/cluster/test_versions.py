"""The local control plane runs the Kubernetes minor every stack declares."""

from __future__ import annotations

import pytest

from infra.cluster.config import STACKS, ClusterTools
from infra.facts.stack_config import load_stack_file


@pytest.mark.parametrize("stack", STACKS)
def test_the_local_control_plane_is_the_stack_s_kubernetes_minor(stack: str) -> None:
    built = ClusterTools.locate().versions["KUBERNETES_VERSION"]  # tools/versions.env, e.g. v1.33.13
    declared = load_stack_file(stack).kubernetes_version  # Pulumi.<stack>.yaml, e.g. 1.33
    assert built.lstrip("v").startswith(declared + "."), (stack, declared, built)
