"""The local cluster's processes, in start order: etcd, the control plane, kwok, the real node
(containerd and the kubelet, for the stacks that have one), then ArgoCD."""

from __future__ import annotations

from pathlib import Path

from infra.cluster import node
from infra.cluster.config import ARGOCD_NAMESPACE, ClusterConfig
from infra.kernel.layout import HOST
from infra.kernel.programs import Program

START_ORDER = ("etcd", "control-plane", "nodes", node.GROUP, "argocd")
SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"


def argocd_command(cfg: ClusterConfig, name: str) -> Path:
    """ArgoCD is one binary that acts as the component it is called as (argv[0])."""
    return cfg.path("bin", name)


def build_programs(cfg: ClusterConfig, real_node: bool = False) -> list[Program]:
    return [*_control_plane(cfg), *(node.programs(cfg) if real_node else []), *_argocd(cfg)]


def _control_plane(cfg: ClusterConfig) -> list[Program]:
    p, t, s, pki = cfg.ports, cfg.tools, cfg.state_dir, cfg.pki_dir
    kubeconfig = str(cfg.kubeconfig)
    return [
        Program(
            "etcd",
            "etcd",
            [
                "etcd",
                "--name=its-cluster-etcd",
                f"--data-dir={s / 'etcd'}",
                f"--listen-client-urls=http://{HOST}:{p.etcd_client}",
                f"--advertise-client-urls=http://{HOST}:{p.etcd_client}",
                f"--listen-peer-urls=http://{HOST}:{p.etcd_peer}",
                f"--initial-advertise-peer-urls=http://{HOST}:{p.etcd_peer}",
                f"--initial-cluster=its-cluster-etcd=http://{HOST}:{p.etcd_peer}",
                "--enable-v2=false",
            ],
        ),
        Program(
            "kube-apiserver",
            "control-plane",
            [
                str(t.binary("kube-apiserver")),
                f"--etcd-servers=http://{HOST}:{p.etcd_client}",
                f"--bind-address={HOST}",
                f"--advertise-address={HOST}",
                f"--secure-port={p.apiserver}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                f"--token-auth-file={pki / 'tokens.csv'}",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--authorization-mode=Node,RBAC",
                # A kubelet may change only its own Node and the pods bound to it.
                "--enable-admission-plugins=NodeRestriction",
                # Pod Security as built in, but for the real node's RuntimeClass (node.py).
                f"--admission-control-config-file={node.admission_config(cfg)}",
                # No kubelet and no Service endpoints of its own: the API server must not try
                # to reconcile the `kubernetes` Service's endpoints to a loopback address.
                "--endpoint-reconciler-type=none",
                "--allow-privileged=false",
                "--profiling=false",
            ],
            startsecs=3,
            stopwaitsecs=30,
        ),
        Program(
            "kube-controller-manager",
            "control-plane",
            [
                str(t.binary("kube-controller-manager")),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                f"--bind-address={HOST}",
                f"--secure-port={p.controller_manager}",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                f"--root-ca-file={pki / 'ca.crt'}",
                "--use-service-account-credentials=true",
                f"--cluster-cidr={POD_CIDR}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--leader-elect=false",
                # Two shared cores under other sessions' load can hold every node's heartbeat
                # back for tens of seconds: the node lifecycle controller then marks every pod
                # NotReady, and kwok never makes a Running pod Ready again (seen in a test run).
                # Nothing here depends on noticing a lost node fast.
                "--node-monitor-grace-period=5m",
            ],
        ),
        Program(
            "kube-scheduler",
            "control-plane",
            [
                str(t.binary("kube-scheduler")),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                f"--bind-address={HOST}",
                f"--secure-port={p.scheduler}",
                "--leader-elect=false",
            ],
        ),
        Program(
            "kwok",
            "nodes",
            [
                str(t.kwok),
                f"--kubeconfig={kubeconfig}",
                f"--config={cfg.conf_dir / 'kwok.yaml'}",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                f"--cidr={POD_CIDR}",
                f"--node-ip={HOST}",
                f"--server-address={HOST}:{p.kwok}",
                "--node-lease-duration-seconds=40",
            ],
        ),
    ]


def _argocd(cfg: ClusterConfig) -> list[Program]:
    p, t, s = cfg.ports, cfg.tools, cfg.state_dir
    kubeconfig = str(cfg.kubeconfig)
    tool_path = f"{t.helm.parent}:{t.kustomize.parent}:/usr/local/bin:/usr/bin:/bin"
    return [
        Program(
            "argocd-redis",
            "argocd",
            [
                "redis-server",
                "--bind",
                HOST,
                "--port",
                str(p.argocd_redis),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(s),
            ],
        ),
        Program(
            "argocd-repo-server",
            "argocd",
            [
                str(argocd_command(cfg, "argocd-repo-server")),
                "--address",
                HOST,
                "--port",
                str(p.repo_server),
                "--metrics-address",
                HOST,
                "--metrics-port",
                str(p.repo_server_metrics),
                "--redis",
                f"{HOST}:{p.argocd_redis}",
                "--disable-tls",
            ],
            environment={
                "PATH": tool_path,
                "HOME": str(cfg.path("argocd-home")),
                "ARGOCD_GPG_ENABLED": "false",
                "KUBECONFIG": kubeconfig,
            },
            directory=str(s),
        ),
        Program(
            "argocd-application-controller",
            "argocd",
            [
                str(argocd_command(cfg, "argocd-application-controller")),
                f"--kubeconfig={kubeconfig}",
                f"--namespace={ARGOCD_NAMESPACE}",
                "--repo-server",
                f"{HOST}:{p.repo_server}",
                "--repo-server-plaintext",
                "--redis",
                f"{HOST}:{p.argocd_redis}",
                "--metrics-port",
                str(p.controller_metrics),
                # A short resync so a change on the checkout's HEAD is seen within seconds.
                "--app-resync",
                "20",
                "--app-resync-jitter",
                "5",
                # Heal drift within seconds every time (production keeps ArgoCD's backoff).
                "--self-heal-backoff-cap-seconds",
                "10",
            ],
            environment={"PATH": tool_path, "HOME": str(cfg.path("argocd-home"))},
            directory=str(s),
        ),
    ]
