"""The real scheduler places the app's pods as the node pools intend: GPU workers only on GPU
nodes and no further than their GPUs, API pods never on a GPU node and spread over the zones,
and evictions that would break a PodDisruptionBudget refused."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from kubernetes.client import V1Node, V1Pod
from kubernetes.client.exceptions import ApiException

from infra.cluster.node import NODE_NAME as REAL_NODE
from infra.cluster.node import REAL_NODE_STACKS
from infra.cluster.nodes import KWOK_ANNOTATION
from infra.facts.stack_config import POOL_LABEL
from infra.kernel.layout import HOST
from tests.cluster.conftest import APP_NAMESPACE, LocalCluster

WORKER = "its-camera-ai-worker"
API = "its-camera-ai-api"
GPU = "nvidia.com/gpu"


def nodes(cluster: LocalCluster) -> dict[str, V1Node]:
    return {n.metadata.name: n for n in cluster.core.list_node().items}


def gpu_nodes(cluster: LocalCluster) -> set[str]:
    return {name for name, n in nodes(cluster).items() if int(n.status.allocatable.get(GPU, "0")) > 0}


def pods_of(cluster: LocalCluster, deployment: str) -> list[V1Pod]:
    selector = f"app.kubernetes.io/component={deployment.rsplit('-', 1)[1]}"
    return [
        p
        for p in cluster.core.list_namespaced_pod(APP_NAMESPACE, label_selector=selector).items
        if p.metadata.deletion_timestamp is None
    ]


def worker_requests_gpu(cluster: LocalCluster) -> bool:
    worker = cluster.apps.read_namespaced_deployment(WORKER, APP_NAMESPACE)
    limits = worker.spec.template.spec.containers[0].resources.limits or {}
    return GPU in limits


def kwok_nodes(cluster: LocalCluster) -> dict[str, V1Node]:
    return {
        name: n
        for name, n in nodes(cluster).items()
        if (n.metadata.annotations or {}).items() >= KWOK_ANNOTATION.items()
    }


def test_the_nodes_are_the_stack_s_node_pools(local_cluster: LocalCluster) -> None:
    """The kwok nodes are the stack's node pools; the real node (dev) is none of them: it runs
    the app's pods locally and is checked on its own (test_real_node.py)."""
    from infra.cluster.nodes import local_node_count
    from infra.facts.stack_config import instance_types, load_stack_file

    stack = load_stack_file(local_cluster.stack)
    simulated = kwok_nodes(local_cluster)
    assert set(nodes(local_cluster)) - set(simulated) == (
        {REAL_NODE} if local_cluster.stack in REAL_NODE_STACKS else set()
    )
    by_pool = Counter(n.metadata.labels[POOL_LABEL] for n in simulated.values())
    assert by_pool == {pool.name: local_node_count(pool) for pool in stack.node_pools}
    for node in simulated.values():
        pool = next(p for p in stack.node_pools if p.name == node.metadata.labels[POOL_LABEL])
        capacity = instance_types()[node.metadata.labels["node.kubernetes.io/instance-type"]]
        assert node.metadata.labels["topology.kubernetes.io/zone"] in stack.availability_zones
        assert int(node.status.allocatable.get(GPU, "0")) == capacity.gpus
        assert {(t.key, t.effect) for t in node.spec.taints or []} == {(t.key, t.effect) for t in pool.taints}


def test_workers_run_only_where_their_device_is_and_api_pods_never_on_gpu_nodes(
    local_cluster: LocalCluster,
) -> None:
    gpus = gpu_nodes(local_cluster)
    assert gpus, "every stack has a GPU pool: its nodes must be in the cluster"
    workers = pods_of(local_cluster, WORKER)
    assert workers and all(p.status.phase == "Running" for p in workers)
    on_gpu = {p.spec.node_name in gpus for p in workers}
    # prod runs GPU workers (nvidia.com/gpu requested); dev runs CPU workers, kept off GPUs.
    assert on_gpu == {worker_requests_gpu(local_cluster)}
    api = pods_of(local_cluster, API)
    assert api and not {p.spec.node_name for p in api} & gpus


def test_replicated_api_pods_spread_over_the_zones(local_cluster: LocalCluster) -> None:
    api = pods_of(local_cluster, API)
    if local_cluster.stack == "dev":
        assert len(api) == 1  # dev runs one API replica, topology spread off
        return
    assert len(api) >= 3
    zones = Counter(
        nodes(local_cluster)[p.spec.node_name].metadata.labels["topology.kubernetes.io/zone"] for p in api
    )
    assert len(zones) == 3 and max(zones.values()) - min(zones.values()) <= 1, zones


@pytest.fixture
def app_sync_paused(local_cluster: LocalCluster) -> Iterator[None]:
    """The emergency procedure of docs/runbooks/gitops.md: stop the app of apps, then the app,
    from undoing a hand change; restored (and healed back) afterwards."""
    root, app = local_cluster.application("its-bootstrap"), local_cluster.application("its-camera-ai")
    local_cluster.patch_application("its-bootstrap", {"spec": {"syncPolicy": {"automated": None}}})
    local_cluster.patch_application("its-camera-ai", {"spec": {"syncPolicy": {"automated": None}}})
    try:
        yield
    finally:
        local_cluster.patch_application(
            "its-camera-ai", {"spec": {"syncPolicy": {"automated": app["spec"]["syncPolicy"]["automated"]}}}
        )
        local_cluster.patch_application(
            "its-bootstrap", {"spec": {"syncPolicy": {"automated": root["spec"]["syncPolicy"]["automated"]}}}
        )
        local_cluster.wait_all_healthy()


def _wait(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(1)
    raise AssertionError(f"not within {timeout}s: {what}")


def test_workers_past_the_gpu_capacity_stay_pending_for_want_of_gpus(
    local_cluster: LocalCluster, app_sync_paused: None
) -> None:
    if not worker_requests_gpu(local_cluster):
        # dev runs CPU workers: nothing of the worker may ask for or tolerate the GPU pool.
        assert local_cluster.stack == "dev", "only dev runs CPU workers"
        spec = local_cluster.apps.read_namespaced_deployment(WORKER, APP_NAMESPACE).spec.template.spec
        assert not [t for t in spec.tolerations or [] if t.key == GPU]
        return
    capacity = sum(int(nodes(local_cluster)[n].status.allocatable[GPU]) for n in gpu_nodes(local_cluster))
    local_cluster.apps.patch_namespaced_deployment_scale(
        WORKER, APP_NAMESPACE, {"spec": {"replicas": capacity + 1}}
    )

    def settled() -> list[V1Pod] | None:
        pods = pods_of(local_cluster, WORKER)
        running = [p for p in pods if p.status.phase == "Running"]
        pending = [p for p in pods if p.status.phase == "Pending"]
        return pending if len(running) == capacity and len(pending) == 1 else None

    (pending,) = _wait(settled, 60, f"{capacity} workers Running and one Pending")
    condition = next(c for c in pending.status.conditions if c.type == "PodScheduled")
    assert condition.status == "False" and condition.reason == "Unschedulable"
    assert f"Insufficient {GPU}" in condition.message, condition.message


def test_evictions_that_would_break_a_disruption_budget_are_refused(
    local_cluster: LocalCluster, app_sync_paused: None
) -> None:
    """Drain every node the API runs on: with the replacements unschedulable, the first
    eviction uses the budget (maxUnavailable 1) and the API server refuses the next. In dev
    (one replica) the budget allows exactly that one eviction."""
    api = pods_of(local_cluster, API)
    budget = local_cluster.policy.read_namespaced_pod_disruption_budget(API, APP_NAMESPACE)
    assert budget.spec.max_unavailable == 1
    hosts = sorted({p.spec.node_name for p in api})
    others = [n for n, node in nodes(local_cluster).items() if n not in hosts and not node.spec.taints]
    cordoned = hosts + others
    for name in cordoned:
        local_cluster.core.patch_node(name, {"spec": {"unschedulable": True}})
    try:
        outcomes = []
        for pod in api[:2]:
            _wait(
                lambda: (
                    local_cluster.policy.read_namespaced_pod_disruption_budget(
                        API, APP_NAMESPACE
                    ).status.disruptions_allowed
                    is not None
                ),
                30,
                "the budget's status",
            )
            try:
                local_cluster.core.create_namespaced_pod_eviction(
                    pod.metadata.name,
                    APP_NAMESPACE,
                    {"metadata": {"name": pod.metadata.name, "namespace": APP_NAMESPACE}},
                )
                outcomes.append("evicted")
            except ApiException as error:
                outcomes.append(f"{error.status}: {error.body}")
        assert outcomes[0] == "evicted", outcomes[0]
        if len(api) == 1:
            assert local_cluster.stack == "dev", "only dev runs a single API replica"
        else:
            assert outcomes[1].startswith("429") and "disruption budget" in outcomes[1], outcomes[1]
    finally:
        for name in cordoned:
            local_cluster.core.patch_node(name, {"spec": {"unschedulable": False}})


def test_the_drills_cluster_target_kills_a_pod_and_times_the_recovery(
    local_cluster: LocalCluster, request: pytest.FixtureRequest
) -> None:
    """`python -m loadtests.failover --target cluster`: the fault is a pod deleted through the
    Kubernetes API; recovery is the workload whole again, without the deleted pod. It measures
    pod restoration only and says so: its result carries no write figures. In dev the pod ran
    on the real node: its replacement runs there too and serves an authenticated request to
    the local platform."""
    from loadtests.failover.cluster import ClusterTarget

    target = ClusterTarget(kubeconfig=str(local_cluster.cfg.kubeconfig))
    before = {p.metadata.uid for p in pods_of(local_cluster, API)}
    result = target.kill("api", timeout=120)
    after = {p.metadata.uid for p in pods_of(local_cluster, API)}
    print(f"\n[{local_cluster.stack}] {result.summary()}")
    assert result.recovery_seconds < 60, result
    assert result.killed not in {p.metadata.name for p in pods_of(local_cluster, API)}
    assert len(after) == len(before) and after != before
    assert "pod restoration only" in result.summary()
    assert not hasattr(result, "acknowledged") and not hasattr(result, "lost")
    if local_cluster.real_node is not None:
        assert {p.spec.node_name for p in pods_of(local_cluster, API)} == {REAL_NODE}
        viewer = request.getfixturevalue("local_platform").viewer_key
        answer = httpx.get(
            f"http://{HOST}:{local_cluster.cfg.ports.node_api}/v1/cameras",
            headers={"X-API-Key": viewer},
            timeout=15,
        )
        assert answer.status_code == 200, answer.text
        assert "local-cam-1" in {camera["id"] for camera in answer.json()}
        # ... and without a key the same pod refuses.
        assert (
            httpx.get(f"http://{HOST}:{local_cluster.cfg.ports.node_api}/v1/cameras", timeout=15).status_code
            == 401
        )
