"""ArgoCD syncs the environment from this repository on a real control plane, in wave order."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, cast

from infra.cluster.argocd import kubectl
from infra.cluster.config import ARGOCD_NAMESPACE
from infra.kernel.health import Health, wait_until
from tests.charts.helm import charts
from tests.cluster.conftest import APP_NAMESPACE, LocalCluster

APP = "its-camera-ai"
# kwok moves a scheduled pod to Running within seconds; a minute covers a rollout in progress.
POD_SETTLE_SECONDS = 60


def _time(stamp: Any) -> datetime:
    return stamp if isinstance(stamp, datetime) else datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))


def test_every_application_of_this_repository_is_synced_and_healthy(local_cluster: LocalCluster) -> None:
    # An Application may pass through Progressing after cluster-up's first Healthy (a Job, a
    # rollout, a pod a drill deleted): wait, with the bound cluster-up itself has, for one listing
    # in which every Application is, and read that same listing (ArgoCD's status of a moment
    # later may already be another pass through Progressing).
    def listing() -> Health:
        items = local_cluster.custom.list_namespaced_custom_object(
            "argoproj.io", "v1alpha1", ARGOCD_NAMESPACE, "applications"
        )["items"]
        states = {(a["status"]["sync"]["status"], a["status"]["health"]["status"]) for a in items}
        return Health(len(items) > 1 and states == {("Synced", "Healthy")}, {"items": items})

    apps = wait_until("every Application Synced and Healthy", listing, 300).detail["items"]
    names = sorted(a["metadata"]["name"] for a in apps)
    assert names == sorted(["its-bootstrap", *charts()])
    for app in apps:
        status = app["status"]
        assert status["sync"]["status"] == "Synced", (app["metadata"]["name"], status.get("conditions"))
        assert status["health"]["status"] == "Healthy", (app["metadata"]["name"], status.get("conditions"))
        # Multi-source Applications report one revision per source: all of them this HEAD.
        revisions = status["sync"].get("revisions") or [status["sync"]["revision"]]
        assert set(revisions) == {local_cluster.git("rev-parse", "HEAD")}, app["metadata"]["name"]
    print(
        f"\n[{local_cluster.stack}] cluster-up to all Applications healthy: {local_cluster.up_seconds:.1f}s"
    )


def _created(local_cluster: LocalCluster, resource: dict[str, Any]) -> dict[str, Any]:
    kind = resource["kind"] + (f".{resource['group']}" if resource.get("group") else "")
    scope = ["-n", resource["namespace"]] if resource.get("namespace") else []
    text = kubectl(local_cluster.cfg, "get", kind, resource["name"], *scope, "-o", "json")
    return cast(dict[str, Any], json.loads(text))


def test_waves_are_applied_in_order(local_cluster: LocalCluster) -> None:
    """The project before the Applications; every object of the data stacks' configuration
    created (and each Job complete) before the app's Application exists; inside the app,
    identities before the migration, and the migration complete before the Deployments."""
    project = local_cluster.custom.get_namespaced_custom_object(
        "argoproj.io", "v1alpha1", ARGOCD_NAMESPACE, "appprojects", "its-camera-ai"
    )
    first = {a["metadata"]["name"]: a for a in local_cluster.first_sync}
    app_created = _time(first[APP]["metadata"]["creationTimestamp"])
    assert _time(project["metadata"]["creationTimestamp"]) <= app_created
    checked = 0
    for chart in charts():
        if chart == APP:
            continue
        for resource in first[chart]["status"].get("resources", []):
            obj = _created(local_cluster, resource)
            assert _time(obj["metadata"]["creationTimestamp"]) <= app_created, (chart, resource["name"])
            if resource["kind"] == "Job":
                assert _time(obj["status"]["completionTime"]) <= app_created, (chart, resource["name"])
            checked += 1
    assert checked, "no configuration object to order: the charts rendered nothing"
    apps, batch = local_cluster.apps, local_cluster.batch
    accounts = local_cluster.core.list_namespaced_service_account(
        APP_NAMESPACE, label_selector="app.kubernetes.io/part-of=its-camera-ai"
    ).items
    (job,) = batch.list_namespaced_job(APP_NAMESPACE).items
    deployments = apps.list_namespaced_deployment(APP_NAMESPACE).items
    assert accounts and deployments
    assert job.status.succeeded == 1 and job.status.completion_time is not None
    assert max(a.metadata.creation_timestamp for a in accounts) <= job.metadata.creation_timestamp
    for deployment in deployments:
        assert job.status.completion_time <= deployment.metadata.creation_timestamp, deployment.metadata.name


def test_the_app_namespace_enforces_the_restricted_pod_security_standard(local_cluster: LocalCluster) -> None:
    """The API server's PodSecurity admission ran on every pod of the app: they are there."""
    namespace = local_cluster.core.read_namespace(APP_NAMESPACE)
    assert namespace.metadata.labels["pod-security.kubernetes.io/enforce"] == "restricted"

    def settled() -> Health:
        # A pod the drift tests' self-heal just made may still be Pending: wait for it, bounded.
        pods = local_cluster.core.list_namespaced_pod(APP_NAMESPACE).items
        waiting = {
            p.metadata.name: p.status.phase for p in pods if p.status.phase not in ("Running", "Succeeded")
        }
        return Health(bool(pods) and not waiting, {"pods": len(pods), "not running": waiting})

    assert wait_until("every pod of the app admitted and running", settled, POD_SETTLE_SECONDS)
