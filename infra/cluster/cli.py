"""`python -m infra.cluster up|down|status`: the local Kubernetes cluster's one entry point.

up: etcd, kube-apiserver, kube-controller-manager and kube-scheduler (built from Kubernetes' own
Go module), kwok nodes generated from the stack's node pools, for dev a real kubelet node where
the app's pods run against the local platform (infra/cluster/real_node.py), then ArgoCD, which
syncs the environment's bootstrap from this checkout's git history. Everything runs under one
supervisord in the state directory; down stops all of it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from infra.cluster import argocd, real_node
from infra.cluster.config import ClusterConfig
from infra.cluster.health import ClusterHealth, applications_summary
from infra.cluster.node import GROUP as REAL_NODE_GROUP
from infra.cluster.nodes import stack_nodes
from infra.cluster.pki import ensure_pki
from infra.cluster.programs import START_ORDER, argocd_command, build_programs
from infra.kernel.health import wait_until
from infra.kernel.supervisor import Supervisor, write_supervisord_conf

ARGOCD_COMPONENTS = ("argocd-repo-server", "argocd-application-controller")


def log(message: str) -> None:
    print(message, flush=True)


class Cluster:
    def __init__(self, cfg: ClusterConfig) -> None:
        self.cfg = cfg
        self.supervisor = Supervisor(cfg)
        self.health = ClusterHealth(cfg)
        # Seconds from the start of `up` at which each step was done (the benchmark reads them).
        self.timings: dict[str, float] = {}
        self.node: real_node.RealNode | None = None

    def _render(self) -> None:
        cfg = self.cfg
        for directory in (cfg.conf_dir, cfg.log_dir, cfg.path("bin"), cfg.path("argocd-home")):
            directory.mkdir(parents=True, exist_ok=True)
        ensure_pki(cfg)
        _etcd_in_memory(cfg)
        stages = sorted((cfg.tools.kwok.parent.parent / "stages").glob("*.yaml"))
        (cfg.conf_dir / "kwok.yaml").write_text("\n---\n".join(p.read_text() for p in stages))
        for name in ARGOCD_COMPONENTS:
            link = argocd_command(cfg, name)
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(cfg.tools.argocd)
        if self.node:
            self.node.render()
        programs = build_programs(cfg, real_node=self.node is not None)
        write_supervisord_conf(cfg, f"its-cluster-{cfg.port_base}", programs, START_ORDER)

    def _start_group(self, group: str, check: Any, timeout: float) -> None:
        started = time.monotonic()
        log(f"==> [cluster-up] {group}")
        self.supervisor.start_group(group)
        wait_until(f"{group} healthy", check, timeout)
        self._mark(group)
        log(f"    ok: {group} in {time.monotonic() - started:.1f}s")

    def _mark(self, step: str) -> None:
        self.timings[step] = time.monotonic() - self._started

    def up(self, env: str | None = None) -> None:
        cfg = self.cfg
        env = env or cfg.stack
        self._started = time.monotonic()
        if missing := cfg.tools.missing():
            raise SystemExit(
                f"cluster-up: not installed: {', '.join(missing)}; "
                "run tools/install.sh (make cluster-up does)"
            )
        if cfg.stack_file.exists() and cfg.stack_file.read_text().strip() != cfg.stack:
            previous = cfg.stack_file.read_text().strip()
            raise SystemExit(
                f"cluster-up: {cfg.state_dir} holds the {previous} stack's cluster; "
                f"run `make cluster-down` first (STACK={cfg.stack})"
            )
        log(f"==> [cluster-up] stack {cfg.stack}, state {cfg.state_dir}, ports from {cfg.port_base}")
        self._started_at = time.time()
        self.node = real_node.RealNode.plan(cfg, log)
        self._render()
        cfg.stack_file.write_text(cfg.stack)
        self.supervisor.start_daemon()
        self.supervisor.reload()
        self._start_group("etcd", self.health.etcd, 60)
        self._start_group("control-plane", self.health.control_plane, 180)
        log(f"==> [cluster-up] nodes from the node pools of Pulumi.{cfg.stack}.yaml")
        nodes = stack_nodes(cfg.stack, cfg.tools.versions["KUBERNETES_VERSION"])
        argocd.apply(cfg, nodes)
        self._start_group("nodes", lambda: self.health.nodes(len(nodes)), 120)
        if self.node:
            self._start_group(REAL_NODE_GROUP, self.node.ready, 120)
            log("==> [cluster-up] images into the real node's containerd")
            self.node.import_images()
            self._mark("images-imported")
        log("==> [cluster-up] ArgoCD CRDs, configuration and the cluster secret")
        argocd.install(cfg)
        self._start_group("argocd", self.health.argocd_processes, 120)
        log(f"==> [cluster-up] bootstrap infrastructure/gitops/envs/{env} from {argocd.repo_url()}")
        argocd.bootstrap(cfg, env, platform=self.node.values() if self.node else None)
        if self.node:
            self.node.provide_login()
        wait_until(
            "every Application of this repository Synced and Healthy",
            self.health.applications,
            600,
            progress=lambda: applications_summary(cfg)["line"],
        )
        self._mark("applications")
        if self.node:
            wait_until("the app's pods Ready on the real node", self.node.app_pods_ready, 300)
            self.timings["app-pods-ready"] = self.node.ready_at() - self._started_at
            log(
                f"==> [cluster-up] the app's pods Ready on the real node "
                f"{self.timings['app-pods-ready']:.1f}s after cluster-up started"
            )
        log(f"==> [cluster-up] ready in {self.timings['applications']:.1f}s; KUBECONFIG={cfg.kubeconfig}")

    def stop(self) -> None:
        """Every process of the cluster stopped, the real node's in order; nothing left mounted."""
        real_node.stop(self.cfg, self.supervisor)
        self.supervisor.shutdown()
        if stuck := real_node.clean_up(self.cfg):
            log(f"cluster-down: still mounted: {stuck}")

    def down(self) -> None:
        self.stop()
        if os.environ.get("ITS_CLUSTER_KEEP_STATE") != "1":
            self.remove_state()
        log("cluster-down: nothing of the local cluster is running")

    def remove_state(self) -> None:
        """The state directory and etcd's data, which may live apart from it (in memory)."""
        etcd = self.cfg.path("etcd")
        if etcd.is_symlink():
            shutil.rmtree(etcd.resolve(), ignore_errors=True)
        shutil.rmtree(self.cfg.state_dir, ignore_errors=True)

    def status(self) -> dict[str, Any]:
        return self.health.status()


def _etcd_in_memory(cfg: ClusterConfig) -> None:
    """etcd's data on the machine's tmpfs (a fresh private directory, linked from the state
    directory) where there is one: the cluster is a test bed whose state dies with it, and
    etcd's fsyncs behind a busy disk (image builds, the local platform) stall every write, the
    simulated nodes' lease renewals included."""
    etcd, shm = cfg.path("etcd"), Path("/dev/shm")  # noqa: S108 - mkdtemp makes a private directory
    if etcd.exists() or etcd.is_symlink() or not shm.is_dir():
        return
    etcd.symlink_to(tempfile.mkdtemp(prefix="its-cluster-etcd-", dir=shm))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.cluster")
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--env", help="environment whose bootstrap ArgoCD syncs (default: STACK)")
    args = parser.parse_args(argv)
    cluster = Cluster(ClusterConfig.load())
    if args.command == "up":
        try:
            cluster.up(args.env)
        except (RuntimeError, TimeoutError, subprocess.CalledProcessError, httpx.HTTPError) as error:
            print(f"cluster-up failed: {error}", file=sys.stderr)
            return 1
    elif args.command == "down":
        cluster.down()
    else:
        print(json.dumps(cluster.status(), indent=2))
    return 0
