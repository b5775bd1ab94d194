"""ArgoCD on the local cluster: its CRDs and configuration, the cluster registered
declaratively, and an environment's bootstrap applied as production applies it."""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from infra.cluster.config import ARGOCD_NAMESPACE, CLUSTER_NAME, ClusterConfig
from infra.cluster.pki import admin_token, ca_pem
from infra.facts.paths import INFRASTRUCTURE, REPO_ROOT
from infra.kernel.health import Health, wait_until
from infra.pulumi.gitops_root import with_platform_values

MANIFESTS = Path(__file__).with_name("manifests")
GITOPS = INFRASTRUCTURE / "gitops"


def kubectl(cfg: ClusterConfig, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [str(cfg.tools.kubectl), f"--kubeconfig={cfg.kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
    )
    if result.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def apply(cfg: ClusterConfig, objects: list[dict[str, Any]]) -> None:
    kubectl(cfg, "apply", "--server-side", "--force-conflicts", "-f", "-", stdin=yaml.safe_dump_all(objects))


def crds_dir(cfg: ClusterConfig) -> Path:
    return cfg.tools.argocd.parent.parent / "crds"


def install(cfg: ClusterConfig) -> None:
    """CRDs (server-side: the Application CRD is too large for a last-applied annotation),
    ArgoCD's ConfigMaps and Secret, and this cluster as ArgoCD's deployment target."""
    kubectl(cfg, "apply", "--server-side", "--force-conflicts", "-f", str(crds_dir(cfg)))
    wait_until("ArgoCD's CRDs established", lambda: _established(cfg), 60)
    kubectl(cfg, "apply", "--server-side", "--force-conflicts", "-f", str(MANIFESTS / "argocd.yaml"))
    apply(cfg, [server_key(cfg), cluster_secret(cfg)])


def server_key(cfg: ClusterConfig) -> dict[str, Any]:
    """argocd-secret's signing key, made once per state directory (never in the repository)."""
    path = cfg.pki_dir / "argocd-server.key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32))
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "argocd-secret", "namespace": ARGOCD_NAMESPACE},
        "stringData": {"server.secretkey": path.read_text()},
    }


def _established(cfg: ClusterConfig) -> Health:
    # `kubectl wait` fails outright while a new CRD has no conditions yet: ask again instead.
    result = subprocess.run(
        [str(cfg.tools.kubectl), f"--kubeconfig={cfg.kubeconfig}", "wait", "--for=condition=Established",
         "--timeout=5s", "-f", str(crds_dir(cfg))],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    return Health(result.returncode == 0, {"kubectl": result.stderr.strip()[-200:]})


def cluster_secret(cfg: ClusterConfig) -> dict[str, Any]:
    """ArgoCD reaches the API server at its loopback URL (it runs outside the cluster, where
    the in-cluster URL means nothing), with the admin token and the cluster's CA."""
    config = {
        "bearerToken": admin_token(cfg),
        "tlsClientConfig": {"caData": base64.b64encode(ca_pem(cfg).encode()).decode()},
    }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": f"cluster-{CLUSTER_NAME}",
            "namespace": ARGOCD_NAMESPACE,
            "labels": {"argocd.argoproj.io/secret-type": "cluster"},
        },
        "type": "Opaque",
        "stringData": {"name": CLUSTER_NAME, "server": cfg.api_url, "config": json.dumps(config)},
    }


def repo_url() -> str:
    """ArgoCD clones the checkout's own git history: what is committed at HEAD is what syncs.
    ITS_CLUSTER_REPO names another clone of it (the tests use a bare one they can push to)."""
    return os.environ.get("ITS_CLUSTER_REPO") or f"file://{REPO_ROOT}"


def bootstrap(
    cfg: ClusterConfig, env: str, revision: str = "HEAD", platform: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """`kubectl apply -k infrastructure/gitops/envs/<env>`, with the environment's settings
    (one file, as an operator would edit it) pointing at this checkout and this cluster, and
    PLATFORM as the root Application's `platform` values, the way the Pulumi program sets its
    outputs there (the local cluster's own: infra/cluster/app_values.py)."""
    with tempfile.TemporaryDirectory(prefix="its-gitops-") as tmp:
        copy = Path(tmp)
        for part in ("base", "components", "envs"):
            shutil.copytree(GITOPS / part, copy / part)
        settings_path = copy / "envs" / env / "settings.yaml"
        settings = yaml.safe_load(settings_path.read_text())
        settings["data"].update(repoURL=repo_url(), targetRevision=revision, destinationServer=cfg.api_url)
        settings_path.write_text(yaml.safe_dump(settings))
        rendered = kubectl(cfg, "kustomize", str(copy / "envs" / env))
        objects = [o for o in yaml.safe_load_all(rendered) if o]
        if platform:
            objects = [with_platform_values(o, platform) for o in objects]
        kubectl(cfg, "apply", "-f", "-", stdin=yaml.safe_dump_all(objects))
        return objects
