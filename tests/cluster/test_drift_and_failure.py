"""ArgoCD heals drift, and a broken manifest on a branch fails its sync with the API server's
own message while everything already running stays."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from kubernetes.client.exceptions import ApiException

from tests.cluster.conftest import APP_NAMESPACE, LocalCluster

API = "its-camera-ai-api"
# Self-heal acts on the next reconciliation (timeout.reconciliation: 10 s locally).
HEAL_BOUND_S = 60


def _within(bound: float, condition: Callable[[], bool]) -> float:
    started = time.monotonic()
    while time.monotonic() - started < bound:
        try:
            if condition():
                return time.monotonic() - started
        except ApiException as error:
            if error.status != 404:
                raise
        time.sleep(0.5)
    raise AssertionError(f"not within {bound}s")


def test_a_hand_edit_and_a_deleted_service_are_put_back(local_cluster: LocalCluster) -> None:
    apps, core = local_cluster.apps, local_cluster.core
    image = apps.read_namespaced_deployment(API, APP_NAMESPACE).spec.template.spec.containers[0].image
    apps.patch_namespaced_deployment(
        API,
        APP_NAMESPACE,
        {"spec": {"template": {"spec": {"containers": [{"name": "api", "image": "busybox:hand-edit"}]}}}},
    )
    core.delete_namespaced_service(API, APP_NAMESPACE)

    def healed() -> bool:
        deployment = apps.read_namespaced_deployment(API, APP_NAMESPACE)
        core.read_namespaced_service(API, APP_NAMESPACE)
        return bool(deployment.spec.template.spec.containers[0].image == image)

    seconds = _within(HEAL_BOUND_S, healed)
    print(f"\n[{local_cluster.stack}] drift healed in {seconds:.1f}s")


def _push_broken_branch(local_cluster: LocalCluster, tmp_path: Path) -> str:
    work = tmp_path / "work"
    local_cluster.git("clone", "-q", str(local_cluster.repo), str(work), cwd=tmp_path)
    template = work / "infrastructure/helm/charts/its-camera-ai/templates/service-api.yaml"
    text = template.read_text()
    # Helm renders it; the API server's validation refuses it.
    broken = text.replace("targetPort: http", "targetPort: 70000", 1)
    assert broken != text, "the Service template changed: update this test's edit"
    template.write_text(broken)
    local_cluster.git("-c", "user.name=test", "-c", "user.email=test@localhost", "commit", "-qam",
                      "broken: a port out of range", cwd=work)  # fmt: skip
    local_cluster.git("push", "-q", "origin", "HEAD:refs/heads/scratch-broken", cwd=work)
    return local_cluster.git("rev-parse", "scratch-broken")


def _running(local_cluster: LocalCluster) -> dict[str, int]:
    """Each Deployment of the app and its ready replicas, once no rollout is in flight."""

    def settled() -> bool:
        deployments = local_cluster.apps.list_namespaced_deployment(APP_NAMESPACE).items
        return all(
            (d.status.updated_replicas or 0) == d.spec.replicas == (d.status.ready_replicas or 0)
            and (d.status.replicas or 0) == d.spec.replicas
            for d in deployments
        )

    _within(120, settled)
    deployments = local_cluster.apps.list_namespaced_deployment(APP_NAMESPACE).items
    return {d.metadata.name: d.status.ready_replicas for d in deployments}


def _point_tree_at(local_cluster: LocalCluster, revision: str) -> None:
    root = local_cluster.application("its-bootstrap")
    sources = root["spec"]["sources"]
    for source in sources:
        source["targetRevision"] = revision
    sources[0]["helm"]["valuesObject"]["targetRevision"] = revision
    local_cluster.patch_application("its-bootstrap", {"spec": {"sources": sources}})


def test_a_broken_manifest_fails_its_sync_and_removes_nothing(
    local_cluster: LocalCluster, tmp_path: Path
) -> None:
    core = local_cluster.core
    running_before = _running(local_cluster)
    revision = _push_broken_branch(local_cluster, tmp_path)
    _point_tree_at(local_cluster, "scratch-broken")
    try:

        def failed_with_the_api_servers_message() -> bool:
            app = local_cluster.application("its-camera-ai")
            operation = app.get("status", {}).get("operationState", {})
            return (
                operation.get("syncResult", {}).get("revisions", [None])[0] == revision
                or operation.get("operation", {}).get("sync", {}).get("revisions", [None])[0] == revision
            ) and "65535" in str(operation.get("message", "")) + str(
                operation.get("syncResult", {}).get("resources", "")
            )

        _within(180, failed_with_the_api_servers_message)
        app = local_cluster.application("its-camera-ai")
        assert app["status"]["sync"]["status"] == "OutOfSync"
        assert app["status"]["health"]["status"] in {"Healthy", "Degraded", "Missing", "Progressing"}
        # Nothing that was running has been removed: every workload, its ready pods, the Service.
        assert _running(local_cluster) == running_before
        core.read_namespaced_service(API, APP_NAMESPACE)
    finally:
        # Terminate the retrying sync (as `argocd app terminate-op`), then go back to HEAD.
        local_cluster.custom.patch_namespaced_custom_object(
            "argoproj.io", "v1alpha1", "argocd", "applications", "its-camera-ai",
            {"status": {"operationState": {"phase": "Terminating"}}},
        )  # fmt: skip
        _point_tree_at(local_cluster, "HEAD")
        local_cluster.wait_all_healthy()
