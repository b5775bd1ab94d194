"""Where the local cluster lives, which ports it takes and where its binaries are.

Ports are offsets from a base (ITS_CLUSTER_PORT_BASE, default 27000), the state directory is
ITS_CLUSTER_STATE_DIR (default .state-cluster/ in the checkout), and STACK picks the Pulumi stack
whose node pools become the nodes (default dev).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from infra.facts.paths import REPO_ROOT
from infra.facts.versions import versions
from infra.kernel.layout import CACHE_DIR, HOST, StateLayout
from infra.kernel.ports import Ports, port_base_from_env

DEFAULT_PORT_BASE = 27000
STACKS = ("dev", "staging", "prod")
# The namespace ArgoCD runs from, and the name the cluster is registered under in ArgoCD.
ARGOCD_NAMESPACE = "argocd"
CLUSTER_NAME = "its-local"


# The cluster's ports: offsets from its base, in the kernel's one port scheme.
PORT_OFFSETS: dict[str, int] = {
    "etcd_client": 0,
    "etcd_peer": 1,
    "apiserver": 10,
    "controller_manager": 11,
    "scheduler": 12,
    "kwok": 13,
    "argocd_redis": 20,
    "repo_server": 21,
    "repo_server_metrics": 22,
    "controller_metrics": 23,
    # The real node (infra/cluster/node.py): the kubelet's API and health endpoints, containerd's
    # CRI streaming server, and the host-network ports of the app's pods there.
    "kubelet": 30,
    "kubelet_healthz": 31,
    "containerd_stream": 32,
    "node_api": 40,
    "node_worker_metrics": 41,
    "node_ingest_metrics": 42,
}


def _wrapper_key(module_dir: str) -> str:
    """The cache key tools/install.sh gives a wrapper-module build: its go.mod and go.sum."""
    folder = REPO_ROOT / "tools" / module_dir
    digest = hashlib.sha256((folder / "go.mod").read_bytes() + (folder / "go.sum").read_bytes())
    return digest.hexdigest()[:12]


@dataclass(frozen=True)
class ClusterTools:
    python: Path
    kube_bin: Path
    kwok: Path
    argocd: Path
    helm: Path
    kustomize: Path
    versions: dict[str, str]

    @classmethod
    def locate(cls) -> ClusterTools:
        v = versions()
        kube_bin = CACHE_DIR / "kubernetes" / f"{v['KUBERNETES_VERSION']}-{_wrapper_key('kube')}" / "bin"
        return cls(
            python=Path(os.environ.get("ITS_PYTHON", REPO_ROOT / ".venv" / "bin" / "python")),
            kube_bin=kube_bin,
            kwok=CACHE_DIR / "kwok" / v["KWOK_VERSION"] / "bin" / "kwok",
            argocd=CACHE_DIR / "argocd" / f"{v['ARGOCD_VERSION']}-{_wrapper_key('argocd')}/bin/argocd",
            helm=CACHE_DIR / "helm" / v["HELM_VERSION"] / "bin" / "helm",
            kustomize=CACHE_DIR / "kustomize" / v["KUSTOMIZE_VERSION"] / "bin" / "kustomize",
            versions=v,
        )

    def binary(self, name: str) -> Path:
        return self.kube_bin / name

    @property
    def kubectl(self) -> Path:
        """The kubectl of the same Kubernetes build as the control plane (tools/kube): every
        caller of the project runs this one, never whichever kubectl the machine has on PATH."""
        return self.kube_bin / "kubectl"

    def missing(self) -> list[str]:
        wanted = {
            "kube-apiserver": self.binary("kube-apiserver"),
            "kube-controller-manager": self.binary("kube-controller-manager"),
            "kube-scheduler": self.binary("kube-scheduler"),
            "kwok": self.kwok,
            "argocd": self.argocd,
            "helm": self.helm,
            "kustomize": self.kustomize,
            "kubectl": self.kubectl,
        }
        missing = [name for name, path in wanted.items() if not path.exists()]
        missing += [c for c in ("etcd", "redis-server", "git", "openssl") if not shutil.which(c)]
        return missing


@dataclass(frozen=True)
class ClusterConfig(StateLayout):
    state_dir: Path
    port_base: int
    stack: str

    @classmethod
    def load(
        cls, state_dir: Path | None = None, port_base: int | None = None, stack: str | None = None
    ) -> ClusterConfig:
        chosen_stack = stack or os.environ.get("STACK", "dev")
        if chosen_stack not in STACKS:
            raise SystemExit(f"STACK: {chosen_stack!r} is not one of {', '.join(STACKS)}")
        chosen_base = port_base or port_base_from_env("ITS_CLUSTER_PORT_BASE", DEFAULT_PORT_BASE)
        env_state = os.environ.get("ITS_CLUSTER_STATE_DIR")
        chosen_state = state_dir or (Path(env_state) if env_state else REPO_ROOT / ".state-cluster")
        return cls(chosen_state.resolve(), chosen_base, chosen_stack)

    @cached_property
    def ports(self) -> Ports:
        return Ports(self.port_base, PORT_OFFSETS)

    @cached_property
    def tools(self) -> ClusterTools:
        return ClusterTools.locate()

    @property
    def pki_dir(self) -> Path:
        return self.path("pki")

    @property
    def kubeconfig(self) -> Path:
        return self.path("kubeconfig")

    @property
    def api_url(self) -> str:
        return f"https://{HOST}:{self.ports.apiserver}"

    @property
    def stack_file(self) -> Path:
        return self.path("stack")
