"""The drills' cluster target: the same faults on a real cluster's pods (`--target cluster`).

On a cluster a fault is a pod deleted with no grace period (a lost node, as far as the pod is
concerned) through the Kubernetes API, and recovery is measured until the workload is whole
again; checks inside a pod run through testinfra's kubectl backend. Which pod is which stack's
primary is found by the labels the operators and charts of infrastructure/cloud put on them.

Only the fault-and-recovery half runs here (tests/cluster, against the local control plane with
kwok nodes, where no container runs, so testinfra cannot exec into a pod). The write loads and
lost-write counts of the local drills need the stacks' endpoints: on a cluster, port-forward them
and run the local drills against the forwarded ports (docs/runbooks/README.md, "Drills on a
cluster").
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import testinfra
from kubernetes import client, config
from testinfra.host import Host

from loadtests.failover.load import DrillResult


@dataclass(frozen=True)
class Component:
    namespace: str
    selector: str  # the pod to kill: the first match (the primary where a role label exists)
    workload: str  # kind/name whose readiness says the stack is whole again
    container: str


# The production names: infrastructure/cloud (Pulumi) and infrastructure/helm/charts (ArgoCD).
COMPONENTS: dict[str, Component] = {
    "postgres": Component("data", "cnpg.io/cluster=its-postgres,cnpg.io/instanceRole=primary",
                          "cluster/its-postgres", "postgres"),
    "redis": Component("data", "app=redis-ha,release=redis", "statefulset/redis-server", "redis"),
    "kafka": Component("kafka", "strimzi.io/cluster=its-kafka,strimzi.io/broker-role=true",
                       "strimzipodset/its-kafka-brokers", "kafka"),
    "minio": Component("minio", "app=minio,release=minio", "statefulset/minio", "minio"),
    "vault": Component("vault", "app.kubernetes.io/name=openbao,openbao-active=true",
                       "statefulset/openbao", "openbao"),
    "worker": Component("its", "app.kubernetes.io/component=worker", "deployment/its-camera-ai-worker",
                        "worker"),
    "api": Component("its", "app.kubernetes.io/component=api", "deployment/its-camera-ai-api", "api"),
}  # fmt: skip


class ClusterTarget:
    def __init__(self, kubeconfig: str | None = None, context: str | None = None) -> None:
        self.kubeconfig, self.context = kubeconfig, context
        api = config.new_client_from_config(config_file=kubeconfig, context=context)  # type: ignore[no-untyped-call]
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)

    def _pods(self, component: Component) -> list[client.V1Pod]:
        return list(
            self.core.list_namespaced_pod(component.namespace, label_selector=component.selector).items
        )

    def victim(self, component: Component) -> client.V1Pod:
        running = [p for p in self._pods(component) if p.status and p.status.phase == "Running"]
        if not running:
            raise RuntimeError(f"no running pod matches {component.selector} in {component.namespace}")
        return sorted(running, key=lambda p: str(p.metadata.name if p.metadata else ""))[0]

    def host(self, component: Component, pod: str) -> Host:
        """A testinfra host inside the pod, through its kubectl backend."""
        options = [f"namespace={component.namespace}", f"container={component.container}"]
        if self.kubeconfig:
            options.append(f"kubeconfig={self.kubeconfig}")
        if self.context:
            options.append(f"context={self.context}")
        return testinfra.get_host(f"kubectl://{pod}?{'&'.join(options)}")

    def _whole(self, component: Component, gone_uid: str) -> bool:
        """The killed pod (by uid: a StatefulSet's replacement keeps the name) is gone, and the
        workload has all its replicas ready again; for an operator's pods (CloudNativePG,
        Strimzi), another pod holds the role the victim had."""
        kind, _, name = component.workload.partition("/")
        pods = self._pods(component)
        if any(p.metadata and p.metadata.uid == gone_uid for p in pods):
            return False
        workload: client.V1Deployment | client.V1StatefulSet
        if kind == "deployment":
            workload = self.apps.read_namespaced_deployment(name, component.namespace)
        elif kind == "statefulset":
            workload = self.apps.read_namespaced_stateful_set(name, component.namespace)
        else:
            return any(_ready(p) for p in pods)
        ready = (workload.status.ready_replicas or 0) if workload.status else 0
        return bool(workload.spec and ready == workload.spec.replicas)

    def kill(self, name: str, timeout: float = 900) -> DrillResult:
        """Delete the component's pod with no grace period; seconds until the workload is whole."""
        component = COMPONENTS[name]
        victim = self.victim(component)
        assert victim.metadata and victim.metadata.name and victim.metadata.uid
        pod, uid = victim.metadata.name, victim.metadata.uid
        started = time.monotonic()
        self.core.delete_namespaced_pod(pod, component.namespace, grace_period_seconds=0)
        while not self._whole(component, uid):
            if time.monotonic() - started > timeout:
                raise TimeoutError(
                    f"{name}: {component.workload} not whole {timeout:.0f}s after deleting {pod}"
                )
            time.sleep(0.5)
        return DrillResult(
            f"{name}-pod-kill",
            time.monotonic() - started,
            0,
            0,
            0,
            {"killed": pod},
            recovered="workload whole",
        )


def _ready(pod: client.V1Pod) -> bool:
    conditions = pod.status.conditions if pod.status else None
    return any(c.type == "Ready" and c.status == "True" for c in conditions or [])
