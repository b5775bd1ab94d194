"""The local cluster's real node: a kubelet of the control plane's own Kubernetes build on
Debian's containerd and runc, beside the kwok nodes, where the app's pods of the dev stack run
for real against the local platform.

It joins as system:node:<name> (a token of the cluster's token file, group system:nodes, so the
Node authorizer and NodeRestriction admit it and nothing more). It is labelled and tainted so
that only the pods meant for it land there: the RuntimeClass below selects it and tolerates
the taint, and the local API server exempts that RuntimeClass alone from Pod Security, because
its pods use the host network (outside the restricted profile) to reach the local platform on
loopback. Every other pod of the app's namespace is still held to `restricted`.

Known gaps (this machine): the kubelet refuses a loopback node IP, so the node reports no
address and `kubectl logs/exec` cannot reach it (the pods' logs are under the kubelet's
pod-logs directory, `pod_log`); the kubelet's device-plugin socket directory is fixed by
Kubernetes at /var/lib/kubelet/device-plugins, shared with any other kubelet on the machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from infra.cluster import containerd
from infra.cluster.config import ClusterConfig
from infra.kernel.layout import HOST
from infra.kernel.programs import Program

NODE_NAME = "its-real-node"
NODE_USER = f"system:node:{NODE_NAME}"
LABEL = "its.ai/local-real-node"
TAINT = {"key": LABEL, "value": "true", "effect": "NoSchedule"}
RUNTIME_CLASS = "its-local-host"
# The stacks whose app pods the real node runs: dev's workers run on the CPU. staging and prod
# keep kwok only (their GPU workers cannot run on this machine).
REAL_NODE_STACKS = ("dev",)
GROUP = "real-node"


def kubelet_dir(cfg: ClusterConfig) -> Path:
    return cfg.path("kubelet")


def pod_logs_dir(cfg: ClusterConfig) -> Path:
    return kubelet_dir(cfg) / "pod-logs"


def runtime_class() -> dict[str, Any]:
    """The RuntimeClass of the real node's pods: runc, scheduled only there (LOCAL ONLY)."""
    return {
        "apiVersion": "node.k8s.io/v1",
        "kind": "RuntimeClass",
        "metadata": {"name": RUNTIME_CLASS, "labels": {"its.ai/local-only": "true"}},
        "handler": "runc",
        "scheduling": {
            "nodeSelector": {LABEL: "true"},
            "tolerations": [{**TAINT, "operator": "Equal"}],
        },
    }


def admission_config(cfg: ClusterConfig) -> Path:
    """The local API server's PodSecurity configuration: the built-in defaults (namespaces choose
    their level by label), with the real node's RuntimeClass exempt (LOCAL ONLY)."""
    config = {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AdmissionConfiguration",
        "plugins": [
            {
                "name": "PodSecurity",
                "configuration": {
                    "apiVersion": "pod-security.admission.config.k8s.io/v1",
                    "kind": "PodSecurityConfiguration",
                    # The built-in defaults: a namespace without labels is not restricted.
                    "defaults": {
                        "enforce": "privileged",
                        "enforce-version": "latest",
                        "audit": "privileged",
                        "audit-version": "latest",
                        "warn": "privileged",
                        "warn-version": "latest",
                    },
                    "exemptions": {"usernames": [], "namespaces": [], "runtimeClasses": [RUNTIME_CLASS]},
                },
            }
        ],
    }
    path = cfg.conf_dir / "admission.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def kubelet_config(cfg: ClusterConfig) -> dict[str, Any]:
    """What worked on this machine (a sandbox with hybrid cgroups v1 and no CAP_SYS_RESOURCE):
    cgroupfs without per-QoS cgroups, nothing reserved, every endpoint on loopback, logs and
    state under the state directory, no image garbage collection (the images are imported,
    never pulled back) and no disk-pressure eviction (the kubelet cannot stat the overlay
    filesystem here)."""
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": HOST,
        "port": cfg.ports.kubelet,
        "readOnlyPort": 0,
        "healthzBindAddress": HOST,
        "healthzPort": cfg.ports.kubelet_healthz,
        "containerRuntimeEndpoint": f"unix://{containerd.socket(cfg)}",
        "cgroupDriver": "cgroupfs",
        "cgroupsPerQOS": False,
        "enforceNodeAllocatable": [],
        # Kubernetes 1.35 refuses a cgroup v1 host unless told otherwise; this one is hybrid v1.
        "failCgroupV1": False,
        "failSwapOn": False,
        "localStorageCapacityIsolation": False,
        "podLogsDir": str(pod_logs_dir(cfg)),
        "volumePluginDir": str(kubelet_dir(cfg) / "volume-plugins"),
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "100Mi"},
        "registerWithTaints": [TAINT],
        "maxPods": 30,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(cfg.pki_dir / "ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
    }


def kubeconfig(cfg: ClusterConfig, token: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "local",
                "cluster": {"server": cfg.api_url, "certificate-authority": str(cfg.pki_dir / "ca.crt")},
            }
        ],
        "users": [{"name": NODE_USER, "user": {"token": token}}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": NODE_USER}}],
        "current-context": "local",
    }


def render(cfg: ClusterConfig, node_token: str, sandbox_image: str) -> None:
    kubelet_dir(cfg).mkdir(parents=True, exist_ok=True)
    pod_logs_dir(cfg).mkdir(parents=True, exist_ok=True)
    containerd.render(cfg, sandbox_image)
    (cfg.conf_dir / "kubelet.yaml").write_text(yaml.safe_dump(kubelet_config(cfg)))
    path = cfg.conf_dir / "kubelet.kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig(cfg, node_token)))
    path.chmod(0o600)


def programs(cfg: ClusterConfig) -> list[Program]:
    kubelet = cfg.tools.binary("kubelet")
    return [
        Program(
            "containerd",
            GROUP,
            ["containerd", "--config", str(cfg.conf_dir / "containerd.toml")],
            startsecs=3,
            stopwaitsecs=30,
        ),
        Program(
            "kubelet",
            GROUP,
            [
                str(kubelet),
                f"--config={cfg.conf_dir / 'kubelet.yaml'}",
                f"--kubeconfig={cfg.conf_dir / 'kubelet.kubeconfig'}",
                f"--hostname-override={NODE_NAME}",
                f"--root-dir={kubelet_dir(cfg) / 'root'}",
                f"--cert-dir={kubelet_dir(cfg) / 'pki'}",
                f"--node-labels={LABEL}=true",
                "--v=1",
            ],
            startsecs=3,
            stopwaitsecs=30,
        ),
    ]


def pod_log(cfg: ClusterConfig, namespace: str, pod: str, container: str) -> str:
    """The newest log of a container of a pod on the real node, read where the kubelet writes it
    (`kubectl logs` cannot reach a node without an address)."""
    logs = sorted(pod_logs_dir(cfg).glob(f"{namespace}_{pod}_*/{container}/*.log"))
    return logs[-1].read_text(errors="replace") if logs else ""
