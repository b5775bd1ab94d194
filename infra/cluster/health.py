"""Is the local cluster up: each component's health endpoint, the nodes, ArgoCD's
Applications. Used by `up` to wait, by `status` to report, and by the tests."""

from __future__ import annotations

from typing import Any, cast

import httpx
from kubernetes import client, config

from infra.cluster.config import ARGOCD_NAMESPACE, ClusterConfig
from infra.cluster.pki import admin_token
from infra.kernel.health import Health
from infra.kernel.layout import HOST


def api_client(cfg: ClusterConfig) -> client.ApiClient:
    return cast(client.ApiClient, config.new_client_from_config(config_file=str(cfg.kubeconfig)))  # type: ignore[no-untyped-call]


def applications(cfg: ClusterConfig) -> list[dict[str, Any]]:
    api = client.CustomObjectsApi(api_client(cfg))
    listed = cast(
        dict[str, Any],
        api.list_namespaced_custom_object("argoproj.io", "v1alpha1", ARGOCD_NAMESPACE, "applications"),
    )
    return list(listed["items"])


def applications_summary(cfg: ClusterConfig) -> dict[str, Any]:
    apps = applications(cfg)
    states = {
        a["metadata"]["name"]: (
            a.get("status", {}).get("sync", {}).get("status", "Unknown"),
            a.get("status", {}).get("health", {}).get("status", "Unknown"),
        )
        for a in apps
    }
    ready = sorted(name for name, state in states.items() if state == ("Synced", "Healthy"))
    waiting = {name: f"{s}/{h}" for name, (s, h) in sorted(states.items()) if (s, h) != ("Synced", "Healthy")}
    # What each waiting Application waits on: its resources that are not Healthy, as ArgoCD says.
    blocking = {
        a["metadata"]["name"]: unhealthy_resources(a) for a in apps if a["metadata"]["name"] in waiting
    }
    blocked = {name: found for name, found in blocking.items() if found}
    return {
        "synced": len(ready),
        "total": len(states),
        "waiting": waiting,
        "blocking": blocked,
        "line": f"{len(ready)}/{len(states)} Synced+Healthy; waiting: {waiting or '-'}"
        + (f"; on: {blocked}" if blocked else ""),
    }


def unhealthy_resources(app: dict[str, Any], limit: int = 5) -> list[str]:
    """`Kind namespace/name: health (message)` of an Application's resources that are not
    Healthy (child Applications included), the first few."""
    found = []
    for resource in app.get("status", {}).get("resources", []):
        health = resource.get("health") or {}
        if health.get("status", "Healthy") == "Healthy":
            continue
        where = f"{resource.get('namespace', '')}/{resource['name']}".lstrip("/")
        message = f" ({health['message'][:160]})" if health.get("message") else ""
        found.append(f"{resource['kind']} {where}: {health.get('status')}{message}")
    return found[:limit]


class ClusterHealth:
    def __init__(self, cfg: ClusterConfig) -> None:
        self.cfg = cfg

    def _get(self, url: str, token: bool = False) -> httpx.Response:
        headers = {"Authorization": f"Bearer {admin_token(self.cfg)}"} if token else {}
        # The components serve with certificates of their own making: loopback only.
        return httpx.get(url, headers=headers, verify=False, timeout=3)  # noqa: S501

    def etcd(self) -> Health:
        response = self._get(f"http://{HOST}:{self.cfg.ports.etcd_client}/health")
        return Health(response.status_code == 200 and response.json().get("health") == "true")

    def control_plane(self) -> Health:
        p = self.cfg.ports
        codes = {
            "kube-apiserver": self._get(f"https://{HOST}:{p.apiserver}/readyz", token=True).status_code,
            "kube-controller-manager": self._get(
                f"https://{HOST}:{p.controller_manager}/healthz"
            ).status_code,
            "kube-scheduler": self._get(f"https://{HOST}:{p.scheduler}/healthz").status_code,
        }
        return Health(all(code == 200 for code in codes.values()), codes)

    def nodes(self, expected: int) -> Health:
        core = client.CoreV1Api(api_client(self.cfg))
        ready = [
            node
            for node in core.list_node().items
            if node.status
            and any(c.type == "Ready" and c.status == "True" for c in (node.status.conditions or []))
        ]
        return Health(len(ready) >= expected, {"ready": len(ready), "expected": expected})

    def argocd_processes(self) -> Health:
        p = self.cfg.ports
        codes = {
            "argocd-repo-server": self._get(f"http://{HOST}:{p.repo_server_metrics}/metrics").status_code,
            "argocd-application-controller": self._get(
                f"http://{HOST}:{p.controller_metrics}/metrics"
            ).status_code,
        }
        return Health(all(code == 200 for code in codes.values()), codes)

    def applications(self) -> Health:
        summary = applications_summary(self.cfg)
        # The root plus one Application per chart: the bootstrap has rendered its children.
        healthy = summary["total"] > 1 and summary["synced"] == summary["total"]
        return Health(healthy, summary)

    def status(self) -> dict[str, Any]:
        cfg = self.cfg
        result: dict[str, Any] = {
            "kubernetes": {
                "endpoint": cfg.api_url,
                "kubeconfig": str(cfg.kubeconfig),
                "stack": cfg.stack_file.read_text().strip() if cfg.stack_file.exists() else None,
                "healthy": False,
            },
            "argocd": {"healthy": False},
        }
        try:
            control = self.control_plane()
            result["kubernetes"].update(healthy=control.healthy, detail=control.detail)
        except Exception as error:
            result["kubernetes"]["detail"] = f"not running ({type(error).__name__})"
            return result
        try:
            processes = self.argocd_processes()
            summary = applications_summary(cfg)
            result["argocd"] = {
                "healthy": processes.healthy,
                "applications": f"{summary['synced']}/{summary['total']}",
                "waiting": summary["waiting"],
            }
        except Exception as error:
            result["argocd"]["detail"] = f"not running ({type(error).__name__})"
        return result
