"""Simulated nodes (kwok) from the stack's node pools: one definition, Pulumi.<stack>.yaml.

Each pool becomes nodes with its instance type's capacity (infrastructure/cloud/
instance-types.yaml), its labels and taints, and zones over the stack's three availability
zones, so the real scheduler places pods as the real pools would. A pool gets its desired size;
a pool that scales from zero (desiredSize 0) gets one node, so its taints meet the scheduler.
"""

from __future__ import annotations

from typing import Any

from infra.facts.stack_config import (
    GPU_RESOURCE,
    NodePool,
    StackConfig,
    instance_types,
    load_stack_file,
)

KWOK_ANNOTATION = {"kwok.x-k8s.io/node": "fake"}
MAX_PODS = 110


def local_node_count(pool: NodePool) -> int:
    return max(pool.desired_size, 1 if pool.max_size > 0 else 0)


def _node(stack: StackConfig, pool: NodePool, index: int, kube_version: str) -> dict[str, Any]:
    zones = stack.availability_zones
    zone = zones[index % len(zones)]
    # Mixed-type pools: the nodes take the pool's types in turn, as the ASG's allocation would.
    instance_type = pool.instance_types[index % len(pool.instance_types)]
    capacity = instance_types()[instance_type]
    name = f"{pool.name}-{zone}-{index}"
    resources = {
        "cpu": str(capacity.cpu),
        "memory": f"{capacity.memory_gib}Gi",
        "pods": str(MAX_PODS),
        "ephemeral-storage": f"{pool.disk_size_gib}Gi",
    }
    if capacity.gpus:
        resources[GPU_RESOURCE] = str(capacity.gpus)
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "node.kubernetes.io/instance-type": instance_type,
        "topology.kubernetes.io/region": stack.region,
        "topology.kubernetes.io/zone": zone,
        "eks.amazonaws.com/nodegroup": pool.name,
        "eks.amazonaws.com/capacityType": pool.capacity_type,
        "type": "kwok",
        **pool.kubernetes_labels(),
    }
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels, "annotations": dict(KWOK_ANNOTATION)},
        "spec": {
            "taints": [{"key": t.key, "value": t.value, "effect": t.effect} for t in pool.taints],
        },
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "kubeletVersion": kube_version,
                "kubeProxyVersion": kube_version,
            },
        },
    }


def stack_nodes(stack_name: str, kube_version: str) -> list[dict[str, Any]]:
    stack = load_stack_file(stack_name)
    return [
        _node(stack, pool, index, kube_version)
        for pool in stack.node_pools
        for index in range(local_node_count(pool))
    ]
