"""A local Kubernetes cluster per stack (dev, then prod), started by the project's own
`infra.cluster` on loopback ports from ITS_TEST_CLUSTER_PORT_BASE (default 31000) under a
temporary state directory, and stopped afterwards.

dev runs the app's pods on the cluster's real kubelet node against the session's local
platform (the `local_platform` fixture, started first); prod keeps kwok nodes only.

ArgoCD reads a bare clone of this checkout made for the session, so tests can push scratch
branches to it without touching the developer's repository.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
from kubernetes import client

from infra.cluster import containerd
from infra.cluster.cli import Cluster
from infra.cluster.config import ARGOCD_NAMESPACE, ClusterConfig
from infra.cluster.health import api_client, applications, applications_summary
from infra.cluster.node import REAL_NODE_STACKS
from infra.cluster.real_node import RealNode
from infra.facts.paths import REPO_ROOT
from infra.kernel.health import wait_until

# Below Linux's ephemeral range (32768-60999): a fixed port there can be taken at any moment
# by some client's outgoing connection, and a server then fails to bind it.
PORT_BASE = int(os.environ.get("ITS_TEST_CLUSTER_PORT_BASE", "31000"))
APP_NAMESPACE = "its"


@dataclass
class LocalCluster:
    cluster: Cluster
    repo: Path  # the bare clone ArgoCD reads
    up_seconds: float
    # The Applications as they were when everything first became healthy, before any test
    # changed them (the wave-order evidence lives in their first sync's status).
    first_sync: list[dict[str, Any]]

    @property
    def cfg(self) -> ClusterConfig:
        return self.cluster.cfg

    @property
    def stack(self) -> str:
        return self.cfg.stack

    @property
    def real_node(self) -> RealNode | None:
        """The real kubelet node the app's pods run on (dev), None where only kwok runs."""
        return self.cluster.node

    @property
    def api(self) -> client.ApiClient:
        return api_client(self.cfg)

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.api)

    @property
    def policy(self) -> client.PolicyV1Api:
        return client.PolicyV1Api(self.api)

    @property
    def batch(self) -> client.BatchV1Api:
        return client.BatchV1Api(self.api)

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    def application(self, name: str) -> dict[str, Any]:
        return cast(
            dict[str, Any],
            self.custom.get_namespaced_custom_object(
                "argoproj.io", "v1alpha1", ARGOCD_NAMESPACE, "applications", name
            ),
        )

    def patch_application(self, name: str, patch: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            "argoproj.io", "v1alpha1", ARGOCD_NAMESPACE, "applications", name, patch
        )

    def wait_all_healthy(self, timeout: float = 300) -> None:
        wait_until(
            "every Application Synced and Healthy",
            self.cluster.health.applications,
            timeout,
            progress=lambda: applications_summary(self.cfg)["line"],
        )

    def git(self, *args: str, cwd: Path | None = None) -> str:
        result = subprocess.run(
            ["git", *args], cwd=cwd or self.repo, capture_output=True, text=True, check=True
        )
        return result.stdout.strip()


def _processes_of(state_dir: Path) -> list[str]:
    result = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True)
    return [line for line in result.stdout.splitlines() if str(state_dir) in line and "ps -eo" not in line]


def _mounts_under(*roots: Path) -> list[str]:
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return [p for p in points if any(p == str(r) or p.startswith(f"{r}/") for r in roots)]


@pytest.fixture(scope="session", params=["dev", "prod"])
def local_cluster(request: pytest.FixtureRequest) -> Iterator[LocalCluster]:
    stack = str(request.param)
    if stack in REAL_NODE_STACKS:
        # The app's pods on the real node are ready only when the local platform's stores answer.
        request.getfixturevalue("local_platform")
    state_dir = Path(tempfile.mkdtemp(prefix=f"its-cluster-{stack}-"))
    repo = state_dir / "repo.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(REPO_ROOT), str(repo)], check=True)
    os.environ["ITS_CLUSTER_REPO"] = f"file://{repo}"
    cluster = Cluster(ClusterConfig.load(state_dir=state_dir, port_base=PORT_BASE, stack=stack))
    started = time.monotonic()
    try:
        cluster.up()
        up_seconds = time.monotonic() - started
        if stack in REAL_NODE_STACKS:
            assert cluster.node is not None, "the dev cluster came up without its real node"
        yield LocalCluster(cluster, repo, up_seconds, applications(cluster.cfg))
    finally:
        cluster.stop()
        leftovers = _processes_of(state_dir) + [
            f"shim {pid}" for pid in containerd.leftover_shims(cluster.cfg)
        ]
        mounted = _mounts_under(state_dir, containerd.root_dir(cluster.cfg))
        cluster.remove_state()
        os.environ.pop("ITS_CLUSTER_REPO", None)
        assert not leftovers, f"processes outlived cluster-down: {leftovers}"
        assert not mounted, f"mounts outlived cluster-down: {mounted}"
