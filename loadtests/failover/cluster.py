"""The drills' cluster target: the same faults on a real cluster's pods (`--target cluster`).

On a cluster a fault is a pod deleted with no grace period (a lost node, as far as the pod is
concerned) through the Kubernetes API, and recovery is measured until the workload is whole
again; checks inside a pod run through testinfra's kubectl backend. Which pod is which stack's
primary is found by the labels the operators and charts of infrastructure/cloud put on them.

It measures pod restoration only: no write load runs through the app on a cluster's pods yet,
so a result here has no acknowledged, lost or failed writes at all (not zeros: none measured).
The write loads and lost-write counts of the local drills need the stacks' endpoints: on a
cluster, port-forward them and run the local drills against the forwarded ports
(docs/runbooks/README.md, "Drills on a cluster"). tests/cluster runs this against the local
cluster: on prod's kwok nodes, and on dev's real node, where the API pod it deletes comes back
and then serves an authenticated request to the local platform.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from kubernetes import client, config


@dataclass(frozen=True)
class PodRestoration:
    """A pod deleted and the seconds until its workload was whole again; nothing about writes."""

    name: str
    recovery_seconds: float
    killed: str
    workload: str

    def summary(self) -> str:
        return (
            f"{self.name}: {self.workload} whole again {self.recovery_seconds:.1f}s after deleting "
            f"{self.killed} (pod restoration only: no write load on a cluster yet, no write figures)"
        )


@dataclass(frozen=True)
class Component:
    namespace: str
    selector: str  # the pod to kill: the first match (the primary where a role label exists)
    workload: str  # kind/name whose readiness says the stack is whole again


# The production names: infrastructure/cloud (Pulumi) and infrastructure/helm/charts (ArgoCD).
COMPONENTS: dict[str, Component] = {
    "postgres": Component("data", "cnpg.io/cluster=its-postgres,cnpg.io/instanceRole=primary",
                          "cluster/its-postgres"),
    "redis": Component("data", "app=redis-ha,release=redis", "statefulset/redis-server"),
    "kafka": Component("kafka", "strimzi.io/cluster=its-kafka,strimzi.io/broker-role=true",
                       "strimzipodset/its-kafka-brokers"),
    "minio": Component("minio", "app=minio,release=minio", "statefulset/minio"),
    "vault": Component("vault", "app.kubernetes.io/name=openbao,openbao-active=true",
                       "statefulset/openbao"),
    "worker": Component("its", "app.kubernetes.io/component=worker", "deployment/its-camera-ai-worker"),
    "api": Component("its", "app.kubernetes.io/component=api", "deployment/its-camera-ai-api"),
}  # fmt: skip


class ClusterTarget:
    def __init__(self, kubeconfig: str | None = None, context: str | None = None) -> None:
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

    def _whole(self, component: Component, gone_uid: str) -> bool:
        """The killed pod (by uid: a StatefulSet's replacement keeps the name) is gone, and the
        workload has all its replicas ready again, counted on its pods (a controller's status
        still counts the deleted pod for a moment after a deletion with no grace period) and
        agreed by its status; for an operator's pods (CloudNativePG, Strimzi), another pod
        holds the role the victim had."""
        kind, _, name = component.workload.partition("/")
        pods = self._pods(component)
        if any(p.metadata and p.metadata.uid == gone_uid for p in pods):
            return False
        ready_pods = sum(1 for p in pods if _ready(p) and not (p.metadata and p.metadata.deletion_timestamp))
        workload: client.V1Deployment | client.V1StatefulSet
        if kind == "deployment":
            workload = self.apps.read_namespaced_deployment(name, component.namespace)
        elif kind == "statefulset":
            workload = self.apps.read_namespaced_stateful_set(name, component.namespace)
        else:
            return ready_pods > 0
        ready = (workload.status.ready_replicas or 0) if workload.status else 0
        wanted = workload.spec.replicas if workload.spec else None
        return wanted is not None and ready == wanted and ready_pods >= wanted

    def kill(self, name: str, timeout: float = 900) -> PodRestoration:
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
        return PodRestoration(f"{name}-pod-kill", time.monotonic() - started, pod, component.workload)


def _ready(pod: client.V1Pod) -> bool:
    conditions = pod.status.conditions if pod.status else None
    return any(c.type == "Ready" and c.status == "True" for c in conditions or [])
