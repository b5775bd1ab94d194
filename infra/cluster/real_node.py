"""The real node's part in `cluster-up` and `cluster-down` (what it is: infra/cluster/node.py).

Up, for the stacks that have one (dev): only with the local platform running, since the app's
pods are ready only when its stores answer (their readiness probes check them). Without it,
cluster-up says so and the app's pods stay on the kwok nodes, where nothing runs for real; with
it: the images (the pod sandbox's and the app's, built from this checkout and cached by the
hash of their inputs) go into the node's containerd once per content, the node joins, the app's
values through the root Application's `platform` put the pods on it, and the AppRole Secret
they log in to Vault with is made as soon as ArgoCD has made their namespace.

Down: the kubelet first (so it restarts nothing), every container of the node's containerd,
containerd, then any shim of it that outlived it; what they left mounted under the state
directory or the containerd root is unmounted.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, cast

import httpx

from infra.cluster import app_values, argocd, containerd, node
from infra.cluster.config import ClusterConfig
from infra.cluster.local_platform import LocalPlatform
from infra.cluster.pki import admin_token, node_token
from infra.facts.images import images_file
from infra.images import build, pause
from infra.kernel.health import Health, wait_until
from infra.kernel.supervisor import Supervisor
from infra.pulumi.gitops_root import chart_namespace

APP_SELECTOR = f"app.kubernetes.io/part-of={app_values.APP_CHART}"
# The app's long-running pods (the Deployments'); the migration Job's pod runs to completion.
SERVING_COMPONENTS = ("api", "worker", "ingest")


@cache
def app_namespace() -> str:
    """The app chart's namespace in the GitOps tree (read once: the polls ask it every second)."""
    return chart_namespace(app_values.APP_CHART)


@dataclass
class RealNode:
    cfg: ClusterConfig
    platform: LocalPlatform
    log: Callable[[str], None]
    sandbox_image: str
    images: dict[str, str]

    @classmethod
    def plan(cls, cfg: ClusterConfig, log: Callable[[str], None]) -> RealNode | None:
        """The real node of this stack, or None (a stack without one, or no local platform)."""
        if cfg.stack not in node.REAL_NODE_STACKS:
            return None
        platform = LocalPlatform.locate()
        if unhealthy := platform.unhealthy_stores(cfg.tools.python):
            log(
                f"==> [cluster-up] NO REAL NODE: the local platform (state {platform.state_dir}, ports "
                f"from {platform.ports.base}) is not running or not healthy ({', '.join(sorted(unhealthy))}):"
                " start it with `make up` for the app's pods to run for real. Now they go to the kwok"
                " nodes, where no container runs."
            )
            return None
        log("==> [cluster-up] real node: the pod sandbox and app images (built unless cached)")
        sandbox = pause.build()
        images = {}
        for image in images_file().images:
            built = build.build(image)
            log(f"    {built.line()}")
            images[image] = built.reference
        return cls(cfg, platform, log, sandbox, images)

    def render(self) -> None:
        node.render(self.cfg, node_token(self.cfg), self.sandbox_image)

    def ready(self) -> Health:
        listed = _get(self.cfg, f"/api/v1/nodes?fieldSelector=metadata.name%3D{node.NODE_NAME}")["items"]
        conditions = (
            {c["type"]: c["status"] for c in listed[0]["status"].get("conditions", [])} if listed else {}
        )
        return Health(conditions.get("Ready") == "True", {"node": node.NODE_NAME, "conditions": conditions})

    def import_images(self) -> None:
        """The pod sandbox and the app's images into the node's containerd, once per content."""
        for reference in (self.sandbox_image, *self.images.values()):
            self.log(f"    {containerd.import_image(self.cfg, reference).line()}")
        argocd.apply(self.cfg, [node.runtime_class()])

    def values(self) -> dict[str, Any]:
        return app_values.platform_values(self.cfg, self.platform, self.images)

    def provide_login(self, timeout: float = 600) -> None:
        """The AppRole Secret, once ArgoCD has made the app's namespace (it owns the namespace
        and its Pod Security labels), before the migration Job's pod needs it."""
        namespace = app_namespace()

        def exists() -> Health:
            listed = _get(self.cfg, f"/api/v1/namespaces?fieldSelector=metadata.name%3D{namespace}")
            return Health(bool(listed["items"]))

        wait_until(f"ArgoCD to create namespace {namespace}", exists, timeout, every=30)
        argocd.apply(self.cfg, [app_values.approle_secret(self.platform, namespace)])

    def app_pods(self) -> list[dict[str, Any]]:
        namespace = app_namespace()
        pods = _get(self.cfg, f"/api/v1/namespaces/{namespace}/pods?labelSelector={APP_SELECTOR}")["items"]
        return [p for p in pods if "deletionTimestamp" not in p["metadata"]]

    def app_pods_ready(self) -> Health:
        """Every pod of the app's Deployments Ready on the real node, and the migration done."""
        pods = self.app_pods()
        state = {p["metadata"]["name"]: (p["spec"].get("nodeName"), _phase(p)) for p in pods}
        on_node = all(node_name == node.NODE_NAME for node_name, _ in state.values())
        serving = [p for p in pods if _component(p) in SERVING_COMPONENTS]
        settled = all(_phase(p) == ("Succeeded" if _component(p) == "migrate" else "Ready") for p in pods)
        return Health(bool(serving) and on_node and settled, {"pods": state})

    def ready_at(self) -> float:
        """Wall-clock time (epoch seconds) the last of the app's serving pods became Ready, as
        the API server recorded it."""
        return max(_ready_since(p) or 0.0 for p in self.app_pods() if _component(p) in SERVING_COMPONENTS)


def _get(cfg: ClusterConfig, path: str) -> dict[str, Any]:
    response = httpx.get(
        f"{cfg.api_url}{path}",
        headers={"Authorization": f"Bearer {admin_token(cfg)}"},
        verify=ssl.create_default_context(cafile=str(cfg.pki_dir / "ca.crt")),
        timeout=30,
    )
    response.raise_for_status()
    return cast(dict[str, Any], response.json())


def _component(pod: dict[str, Any]) -> str:
    return str(pod["metadata"].get("labels", {}).get("app.kubernetes.io/component", ""))


def _ready_since(pod: dict[str, Any]) -> float | None:
    for condition in pod.get("status", {}).get("conditions", []):
        if condition["type"] == "Ready" and condition["status"] == "True":
            return datetime.fromisoformat(condition["lastTransitionTime"].replace("Z", "+00:00")).timestamp()
    return None


def _phase(pod: dict[str, Any]) -> str:
    return "Ready" if _ready_since(pod) is not None else str(pod.get("status", {}).get("phase", "Unknown"))


def stop(cfg: ClusterConfig, supervisor: Supervisor) -> None:
    """The real node down in order, if this cluster has one running."""
    if supervisor.running() and "kubelet" in supervisor.info():
        supervisor.stop("kubelet")
        containerd.stop_containers(cfg)
        supervisor.stop("containerd")


def clean_up(cfg: ClusterConfig) -> list[str]:
    """After everything stopped: shims of this node's containerd killed, its mounts undone.
    Returns the mount points that would not go."""
    containerd.kill_leftover_shims(cfg)
    deadline = time.monotonic() + 10
    while containerd.leftover_shims(cfg) and time.monotonic() < deadline:
        time.sleep(0.2)
    return containerd.unmount_under(cfg.state_dir, containerd.root_dir(cfg))
