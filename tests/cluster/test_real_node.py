"""The real kubelet node: in dev the app's pods run on it for real, against the session's local
platform (the API and the worker Ready, the migration Job complete, `helm test` passing, Pod
Security exempting its RuntimeClass and nothing else); prod keeps every pod on kwok nodes."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kubernetes.client import V1Pod
from kubernetes.client.exceptions import ApiException

from infra.charts import env_render
from infra.cluster.config import ARGOCD_NAMESPACE
from infra.cluster.node import LABEL, NODE_NAME, RUNTIME_CLASS, TAINT, pod_log
from infra.cluster.nodes import KWOK_ANNOTATION
from infra.facts.vault import vault_layout
from infra.kernel.layout import HOST
from tests.cluster.conftest import APP_NAMESPACE, LocalCluster

APP_SELECTOR = "app.kubernetes.io/part-of=its-camera-ai"
POD_SECURITY_BOUND_S = 180


def app_pods(cluster: LocalCluster) -> list[V1Pod]:
    pods = cluster.core.list_namespaced_pod(APP_NAMESPACE, label_selector=APP_SELECTOR).items
    return [p for p in pods if p.metadata.deletion_timestamp is None]


def component(pod: V1Pod) -> str:
    return str(pod.metadata.labels["app.kubernetes.io/component"])


def ready(pod: V1Pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def test_the_real_node_is_a_kubelet_of_the_pinned_build_on_containerd(local_cluster: LocalCluster) -> None:
    names = {n.metadata.name for n in local_cluster.core.list_node().items}
    if local_cluster.real_node is None:
        assert local_cluster.stack == "prod" and NODE_NAME not in names
        return
    node = local_cluster.core.read_node(NODE_NAME)
    info = node.status.node_info
    assert info.kubelet_version == local_cluster.cfg.tools.versions["KUBERNETES_VERSION"]
    assert info.container_runtime_version.startswith("containerd://1.6.")
    assert {c.type: c.status for c in node.status.conditions}["Ready"] == "True"
    assert node.metadata.labels[LABEL] == "true"
    assert [(t.key, t.value, t.effect) for t in node.spec.taints] == [
        (TAINT["key"], TAINT["value"], TAINT["effect"])
    ]
    # kwok manages only the nodes it made: never this one.
    assert not (node.metadata.annotations or {}).items() >= KWOK_ANNOTATION.items()


def test_the_app_s_pods_run_on_the_real_node(local_cluster: LocalCluster) -> None:
    """dev: the API and the worker Ready there (their readiness probes check the local
    platform's stores), the migration Job's pod Succeeded there and its program said so."""
    pods = app_pods(local_cluster)
    by_component = {component(p): p for p in pods}
    assert {"api", "worker", "migrate"} <= set(by_component), sorted(by_component)
    if local_cluster.real_node is None:
        kwok = {
            n.metadata.name
            for n in local_cluster.core.list_node().items
            if (n.metadata.annotations or {}).items() >= KWOK_ANNOTATION.items()
        }
        assert {p.spec.node_name for p in pods} <= kwok
        return
    for pod in pods:
        assert pod.spec.node_name == NODE_NAME, (pod.metadata.name, pod.spec.node_name)
        assert pod.spec.runtime_class_name == RUNTIME_CLASS and pod.spec.host_network
        if component(pod) == "migrate":
            assert pod.status.phase == "Succeeded"
        else:
            assert pod.status.phase == "Running" and ready(pod), pod.status
            assert all(s.ready and s.state.running for s in pod.status.container_statuses)
    (job,) = local_cluster.batch.list_namespaced_job(APP_NAMESPACE).items
    assert job.status.succeeded == 1
    migrate = by_component["migrate"]
    assert "schema at head" in pod_log(local_cluster.cfg, APP_NAMESPACE, migrate.metadata.name, "migrate")
    print(
        f"\n[dev] cluster-up to the app's pods Ready on the real node: "
        f"{local_cluster.cluster.timings['app-pods-ready']:.1f}s"
    )


def _uid_of_listener(port: int) -> int | None:
    """The uid of the process whose command line names PORT as uvicorn's --port."""
    for proc in Path("/proc").iterdir():
        try:
            args = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
            status = (proc / "status").read_text()
        except OSError:
            continue
        if any("uvicorn" in a for a in args) and "--port" in args and str(port) in args:
            (uid_line,) = [line for line in status.splitlines() if line.startswith("Uid:")]
            return int(uid_line.split()[1])
    return None


def test_the_pods_answer_on_loopback_against_the_local_platform(local_cluster: LocalCluster) -> None:
    """The API pod's /readyz checks every store of the local platform; the worker pod's health
    endpoint answers; both listen on the node's loopback only, as the image's user."""
    ports = local_cluster.cfg.ports
    if local_cluster.real_node is None:
        # No container runs on a kwok node: nothing listens on the real node's app ports.
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://{HOST}:{ports.node_api}/readyz", timeout=5)
        return
    readyz = httpx.get(f"http://{HOST}:{ports.node_api}/readyz", timeout=15)
    assert readyz.status_code == 200, readyz.text
    checks = readyz.json()["checks"]
    assert set(checks) == {"postgres", "redis", "kafka", "minio", "vault"} and set(checks.values()) == {"ok"}
    assert httpx.get(f"http://{HOST}:{ports.node_worker_metrics}/healthz", timeout=15).status_code == 200
    assert _uid_of_listener(ports.node_api) == 10001


def _rendered_test_pod(local_cluster: LocalCluster) -> dict[str, Any]:
    """The chart's `helm test` pod, rendered as the its-camera-ai Application deploys the chart:
    the dev values and the `platform` values the root Application handed it."""
    app = local_cluster.application("its-camera-ai")
    (source,) = [s for s in app["spec"]["sources"] if s.get("path")]
    values_object = source.get("helm", {}).get("valuesObject") or {}
    rendered = env_render("its-camera-ai", local_cluster.stack, (), values_yaml=yaml.safe_dump(values_object))
    (pod,) = [
        o
        for o in rendered.of_kind("Pod")
        if o["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"
    ]
    return pod


def test_helm_test_passes_on_the_real_node(local_cluster: LocalCluster) -> None:
    """`helm test` runs the chart's test pod and wants it Succeeded: here it is created from the
    render, as Helm would, and must succeed on the real node against the API pod."""
    pod = _rendered_test_pod(local_cluster)
    name = pod["metadata"]["name"]
    if local_cluster.real_node is None:
        # Without the platform's values the test pod asks the in-cluster Service, as in the cloud.
        script = pod["spec"]["containers"][0]["command"][-1]
        assert "http://its-camera-ai-api:" in script and "hostNetwork" not in pod["spec"]
        return
    core = local_cluster.core
    core.create_namespaced_pod(APP_NAMESPACE, pod)
    try:
        deadline = time.monotonic() + 180
        while (phase := core.read_namespaced_pod(name, APP_NAMESPACE).status.phase) not in (
            "Succeeded",
            "Failed",
        ):
            assert time.monotonic() < deadline, f"helm test pod still {phase} after 180s"
            time.sleep(1)
        log = pod_log(local_cluster.cfg, APP_NAMESPACE, name, "readyz")
        assert phase == "Succeeded", log
        assert f"http://{HOST}:{local_cluster.cfg.ports.node_api}/readyz 200" in log, log
        assert core.read_namespaced_pod(name, APP_NAMESPACE).spec.node_name == NODE_NAME
    finally:
        core.delete_namespaced_pod(name, APP_NAMESPACE, grace_period_seconds=0)


def _host_network_pod(runtime_class: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "hostNetwork": True,
        "containers": [
            {
                "name": "probe",
                "image": "localhost/its-pause:never-run",
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": 10001,
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
            }
        ],
    }
    if runtime_class:
        spec["runtimeClassName"] = runtime_class
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "pss-probe-"}, "spec": spec}


def _admission(local_cluster: LocalCluster, pod: dict[str, Any]) -> str:
    """The API server's verdict on creating POD (a dry run): "admitted", or the status and message."""
    try:
        local_cluster.core.create_namespaced_pod(APP_NAMESPACE, pod, dry_run="All")
    except ApiException as error:
        return f"{error.status}: {json.loads(error.body)['message']}"
    return "admitted"


def test_pod_security_exempts_the_real_node_s_runtime_class_and_nothing_else(
    local_cluster: LocalCluster,
) -> None:
    """A host-network pod (outside `restricted`) is refused in the app's namespace; the same pod
    with the real node's RuntimeClass is admitted where that class exists (dev) and refused
    where it does not (prod). The namespace's label stays `restricted`."""
    namespace = local_cluster.core.read_namespace(APP_NAMESPACE)
    assert namespace.metadata.labels["pod-security.kubernetes.io/enforce"] == "restricted"
    refused = _admission(local_cluster, _host_network_pod(None))
    assert refused.startswith("403") and 'violates PodSecurity "restricted' in refused, refused
    assert "host namespaces" in refused and "hostNetwork=true" in refused, refused
    exempt = _admission(local_cluster, _host_network_pod(RUNTIME_CLASS))
    if local_cluster.real_node is None:
        assert exempt.startswith("403") and RUNTIME_CLASS in exempt and "not found" in exempt, exempt
    else:
        assert exempt == "admitted"
        # ... and a pod of that class can only go to the real node (the class's scheduling).
        scheduled = local_cluster.custom.get_cluster_custom_object(
            "node.k8s.io", "v1", "runtimeclasses", RUNTIME_CLASS
        )["scheduling"]
        assert scheduled["nodeSelector"] == {LABEL: "true"}


def test_the_local_only_values_reach_the_app_through_the_root_application(
    local_cluster: LocalCluster,
) -> None:
    """The seam the Pulumi program uses: the root Application's `platform` values, handed to the
    app's Application by the app of apps. dev's carry `local` (and the AppRole Secret they name
    exists, made by cluster-up, not Git); prod's carry none."""
    root = local_cluster.custom.get_namespaced_custom_object(
        "argoproj.io", "v1alpha1", ARGOCD_NAMESPACE, "applications", "its-bootstrap"
    )
    (bootstrap,) = [s for s in root["spec"]["sources"] if s.get("path") == "infrastructure/gitops/bootstrap"]
    platform = bootstrap["helm"]["valuesObject"].get("platform", {})
    app = local_cluster.application("its-camera-ai")
    (source,) = [s for s in app["spec"]["sources"] if s.get("path")]
    assert source["helm"]["valuesObject"]["platform"] == platform
    if local_cluster.real_node is None:
        assert "local" not in platform
        return
    local = platform["local"]
    assert local["runtimeClassName"] == RUNTIME_CLASS and local["host"] == HOST
    secret = local_cluster.core.read_namespaced_secret(local["vault"]["appRoleSecret"], APP_NAMESPACE)
    assert sorted(secret.data) == sorted(
        f"{role.name}.{part}" for role in vault_layout().approles for part in ("role-id", "secret-id")
    )
    assert "argocd.argoproj.io/tracking-id" not in (secret.metadata.annotations or {})
