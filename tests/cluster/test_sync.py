"""ArgoCD syncs the environment from this repository on a real control plane, in wave order."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from infra.cluster.config import ARGOCD_NAMESPACE
from tests.charts.helm import charts
from tests.cluster.conftest import APP_NAMESPACE, LocalCluster

APP = "its-camera-ai"


def _time(stamp: Any) -> datetime:
    return stamp if isinstance(stamp, datetime) else datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))


def test_every_application_of_this_repository_is_synced_and_healthy(local_cluster: LocalCluster) -> None:
    apps = local_cluster.custom.list_namespaced_custom_object(
        "argoproj.io", "v1alpha1", ARGOCD_NAMESPACE, "applications"
    )["items"]
    names = sorted(a["metadata"]["name"] for a in apps)
    assert names == sorted(["its-bootstrap", *charts()])
    for app in apps:
        status = app["status"]
        assert status["sync"]["status"] == "Synced", (app["metadata"]["name"], status.get("conditions"))
        assert status["health"]["status"] == "Healthy", (app["metadata"]["name"], status.get("conditions"))
        assert status["sync"]["revision"] == local_cluster.git("rev-parse", "HEAD")
    print(
        f"\n[{local_cluster.stack}] cluster-up to all Applications healthy: {local_cluster.up_seconds:.1f}s"
    )


def test_waves_are_applied_in_order(local_cluster: LocalCluster) -> None:
    """The project before the Applications; the data stacks' configuration Healthy before the
    app's Application exists; inside the app, identities before the migration, and the
    migration complete before the Deployments exist."""
    project = local_cluster.custom.get_namespaced_custom_object(
        "argoproj.io", "v1alpha1", ARGOCD_NAMESPACE, "appprojects", "its-camera-ai"
    )
    app = local_cluster.application(APP)
    app_created = _time(app["metadata"]["creationTimestamp"])
    assert _time(project["metadata"]["creationTimestamp"]) <= app_created
    for chart in charts():
        if chart == APP:
            continue
        config = local_cluster.application(chart)
        first_sync_done = _time(config["status"]["operationState"]["finishedAt"])
        assert first_sync_done <= app_created, f"{chart} finished syncing after {APP} was created"
    core, apps, batch = local_cluster.core, local_cluster.apps, local_cluster.batch
    accounts = core.list_namespaced_service_account(
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
    pods = local_cluster.core.list_namespaced_pod(APP_NAMESPACE).items
    assert pods and all(p.status.phase in ("Running", "Succeeded") for p in pods)
