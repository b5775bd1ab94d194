"""The local control plane runs the Kubernetes minor of the compatibility table, the one every
stack runs (infrastructure/cloud/compatibility.yaml)."""

from __future__ import annotations

import pytest

from infra.cluster.config import STACKS, ClusterTools
from infra.facts.compatibility import compatibility, minor_of
from infra.facts.stack_config import load_stack_file


@pytest.mark.parametrize("stack", STACKS)
def test_the_local_control_plane_is_the_stack_s_kubernetes_minor(stack: str) -> None:
    built = ClusterTools.locate().versions["KUBERNETES_VERSION"]  # tools/versions.env, e.g. v1.35.4
    declared = load_stack_file(stack).kubernetes_version  # the table's minor, e.g. 1.35
    assert declared == compatibility().minor
    assert minor_of(built) == declared, (stack, declared, built)
