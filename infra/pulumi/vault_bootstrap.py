"""VaultBootstrap: OpenBao initialises itself on its first start, so nobody holds a root token.

OpenBao 2.4+ with an auto-unseal seal runs the `initialize` stanzas of its configuration once, on
empty storage, with a root token it revokes afterwards and returns to nobody (no recovery keys
either: an operator makes them later, authenticated). Ours, made here as a second configuration
file (values/openbao mounts the ConfigMap and passes it with -config):

- audit: the file device on the servers' audit volume, before any other request;
- auth: Kubernetes auth, configured against the in-cluster API (TokenReview with the server's
  own service account, which values/openbao binds to system:auth-delegator);
- the provisioner: the policy infrastructure/vault/policies/its-vault-config.hcl and the role that
  the its-vault-config Job's service account logs in as; the Job keeps everything else;
- break-glass: the policy openbao-operator.hcl and its role, bound to the service account
  openbao-operator made here, whose tokens only a cluster administrator can create.

Policies come from their files (also written by the its-vault-config Job, so a change reaches a
running OpenBao); the service accounts, namespaces and token audience from the charts' values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.facts.vault import POLICIES_DIR

# The audit volume of values/openbao (server.auditStorage) is mounted at /openbao/audit.
AUDIT_DEVICE = "file"
AUDIT_FILE = "/openbao/audit/audit.log"
# In-cluster address of the API server, for Kubernetes auth's TokenReview.
KUBERNETES_HOST = "https://kubernetes.default.svc:443"
PROVISIONER_POLICY = "its-vault-config"
OPERATOR_POLICY = "openbao-operator"
OPERATOR_SERVICE_ACCOUNT = "openbao-operator"
# The ConfigMap's key: the file OpenBao reads (JSON configuration, beside the chart's HCL).
SELF_INIT_KEY = "self-init.json"
# Where the openbao chart mounts a server.extraVolumes entry named N: USERCONFIG/N.
USERCONFIG = "/openbao/userconfig"


@dataclass(frozen=True)
class KubernetesRole:
    """A Kubernetes-auth role: who (a service account of a namespace, with tokens for an
    audience) gets which policy, for how long."""

    name: str
    service_account: str
    namespace: str
    audience: str
    policy: str
    ttl: str
    max_ttl: str


@dataclass(frozen=True)
class VaultBootstrapArgs:
    namespace: str  # OpenBao's
    config_map: str  # the self-init ConfigMap values/openbao mounts
    provisioner: KubernetesRole
    operator: KubernetesRole
    provider: k8s.Provider
    # The namespace exists (PlatformSecrets makes it).
    depends_on: Sequence[pulumi.Resource] = ()


def policy_text(name: str) -> str:
    return (POLICIES_DIR / f"{name}.hcl").read_text()


def _request(name: str, path: str, data: Mapping[str, Any]) -> dict[str, Any]:
    return {name: {"operation": "update", "path": path, "data": dict(data)}}


def _role_requests(role: KubernetesRole) -> list[dict[str, Any]]:
    return [
        _request(
            f"policy-{role.policy}", f"sys/policies/acl/{role.policy}", {"policy": policy_text(role.policy)}
        ),
        _request(
            f"role-{role.name}",
            f"auth/kubernetes/role/{role.name}",
            {
                "bound_service_account_names": [role.service_account],
                "bound_service_account_namespaces": [role.namespace],
                "audience": role.audience,
                "token_policies": [role.policy],
                "token_ttl": role.ttl,
                "token_max_ttl": role.max_ttl,
            },
        ),
    ]


def self_init_config(provisioner: KubernetesRole, operator: KubernetesRole) -> dict[str, Any]:
    """OpenBao's `initialize` stanzas as JSON configuration, run in this order on first start."""
    audit = [
        _request(
            "enable-file-audit",
            f"sys/audit/{AUDIT_DEVICE}",
            {"type": "file", "options": {"file_path": AUDIT_FILE}},
        )
    ]
    auth = [
        _request("enable-kubernetes", "sys/auth/kubernetes", {"type": "kubernetes"}),
        _request("configure-kubernetes", "auth/kubernetes/config", {"kubernetes_host": KUBERNETES_HOST}),
    ]
    return {
        "initialize": [
            {"audit": {"request": audit}},
            {"auth": {"request": auth}},
            {"provisioner": {"request": _role_requests(provisioner)}},
            {"break-glass": {"request": _role_requests(operator)}},
        ]
    }


class VaultBootstrap(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: VaultBootstrapArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("its:vault:VaultBootstrap", name, None, opts)
        labels = {"app.kubernetes.io/part-of": "its-camera-ai", "app.kubernetes.io/managed-by": "pulumi"}
        k8s_opts = pulumi.ResourceOptions(
            parent=self, provider=args.provider, depends_on=list(args.depends_on)
        )
        self.config_map = k8s.core.v1.ConfigMap(
            f"{name}-self-init",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args.config_map, namespace=args.namespace, labels=labels
            ),
            data={SELF_INIT_KEY: json.dumps(self_init_config(args.provisioner, args.operator), indent=2)},
            opts=k8s_opts,
        )
        k8s.core.v1.ServiceAccount(
            f"{name}-operator",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args.operator.service_account, namespace=args.operator.namespace, labels=labels
            ),
            # Nothing runs as it: an operator asks for a short token (`kubectl create token`).
            automount_service_account_token=False,
            opts=k8s_opts,
        )
        self._args = args
        self.register_outputs({"selfInitConfigMap": self.config_map.metadata.name})

    @property
    def release_values(self) -> dict[str, Any]:
        """The openbao release reads the self-initialisation as a second configuration file."""
        return {"server": {"extraArgs": f"-config={USERCONFIG}/{self._args.config_map}/{SELF_INIT_KEY}"}}


def self_init_config_map(openbao_values: Mapping[str, Any]) -> str:
    """The ConfigMap values/openbao mounts for the self-initialisation: its one configMap
    extraVolume."""
    (name,) = [v["name"] for v in openbao_values["server"]["extraVolumes"] if v["type"] == "configMap"]
    return str(name)
