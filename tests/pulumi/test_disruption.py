"""Voluntary disruptions (node drains, AMI rollouts) take one pod of a stack at a time, and no
node holds two MinIO servers where the pools allow it: the values each release gets from the
program, per stack, in the keys of each pinned chart (minio 5.4.0: podDisruptionBudget,
affinity, topologySpreadConstraints; redis-ha 4.33.8: podDisruptionBudget, rendered as the
PDB's spec; kube-prometheus-stack 76.5.1: prometheus/alertmanager.podDisruptionBudget)."""

from __future__ import annotations

from typing import Any

from tests.pulumi.stacks import StackRun

MINIO_PODS = {"app": "minio", "release": "minio"}


def _values(run: StackRun, release: str) -> dict[str, Any]:
    (found,) = [r for r in run.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["name"] == release]
    values: dict[str, Any] = found.inputs["values"]
    return values


def test_minio_loses_one_server_at_a_time_and_never_two_to_one_node(run: StackRun) -> None:
    values = _values(run, "minio")
    assert values["replicas"] == 4
    assert values["podDisruptionBudget"] == {"enabled": True, "maxUnavailable": 1}
    anti = values["affinity"]["podAntiAffinity"]
    if run.stack == "dev":  # two general and two system nodes: preferred only
        (term,) = anti["preferredDuringSchedulingIgnoredDuringExecution"]
        assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
        assert term["podAffinityTerm"]["labelSelector"]["matchLabels"] == MINIO_PODS
        return
    (term,) = anti["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term == {"labelSelector": {"matchLabels": MINIO_PODS}, "topologyKey": "kubernetes.io/hostname"}
    (spread,) = values["topologySpreadConstraints"]
    assert spread["topologyKey"] == "topology.kubernetes.io/zone" and spread["maxSkew"] == 1
    assert spread["whenUnsatisfiable"] == "DoNotSchedule"
    assert spread["labelSelector"]["matchLabels"] == MINIO_PODS


def test_redis_loses_one_pod_at_a_time(run: StackRun) -> None:
    values = _values(run, "redis")
    assert values["podDisruptionBudget"] == {"maxUnavailable": 1}
    assert values["replicas"] >= 3


def test_prometheus_and_alertmanager_lose_one_pod_at_a_time(run: StackRun) -> None:
    values = _values(run, "kube-prometheus-stack")
    for component, spec in (("prometheus", "prometheusSpec"), ("alertmanager", "alertmanagerSpec")):
        pdb = values[component]["podDisruptionBudget"]
        replicas = values[component][spec]["replicas"]
        # The chart renders the map as the PDB's spec over its default minAvailable: 1, so the
        # budget is minAvailable alone (maxUnavailable beside it is refused), all but one pod.
        assert "maxUnavailable" not in pdb, component
        if replicas == 1:
            assert pdb == {"enabled": False}, component  # minAvailable 1 would block every drain
        else:
            assert pdb == {"enabled": True, "minAvailable": replicas - 1}, component
