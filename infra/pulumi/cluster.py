"""Cluster: the EKS control plane, its encryption, logging, access entries, OIDC provider and the
add-ons nodes need to join (vpc-cni, kube-proxy); a Kubernetes provider for everything after."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.facts.stack_config import AccessEntry
from infra.pulumi.aws_common import (
    STS_AUDIENCE,
    encrypted_log_group,
    irsa_role,
    managed_policy_arn,
    service_trust_policy,
)

ACCESS_POLICIES = {
    "cluster-admin": "AmazonEKSClusterAdminPolicy",
    "admin": "AmazonEKSAdminPolicy",
    "view": "AmazonEKSViewPolicy",
}
# Installed before any node joins: a node without the CNI never becomes Ready.
PRE_NODE_ADDONS = ("vpc-cni", "kube-proxy")
# The VPC CNI's daemon (aws-node) manages the nodes' network interfaces with its own IRSA role,
# so AmazonEKS_CNI_Policy is not on the node role (nodepools.py).
CNI_NAMESPACE, CNI_SERVICE_ACCOUNT = "kube-system", "aws-node"


@dataclass(frozen=True)
class ClusterArgs:
    cluster_name: str
    region: str
    kubernetes_version: str
    private_subnet_ids: Sequence[pulumi.Input[str]]
    endpoint_public_access: bool
    public_access_cidrs: Sequence[str]
    log_types: Sequence[str]
    log_retention_days: int
    access_entries: Sequence[AccessEntry]
    addon_versions: Mapping[str, str]
    tags: Mapping[str, str]
    protect: bool


def kubeconfig_json(cluster_name: str, endpoint: str, ca_data: str, region: str) -> str:
    """Kubeconfig that authenticates with `aws eks get-token`: it holds no credential itself."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": cluster_name, "cluster": {"server": endpoint, "certificate-authority-data": ca_data}}
            ],
            "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}],
            "current-context": cluster_name,
            "users": [
                {
                    "name": cluster_name,
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "aws",
                            "args": ["eks", "get-token", "--cluster-name", cluster_name, "--region", region],
                            "interactiveMode": "Never",
                        }
                    },
                }
            ],
        }
    )


class Cluster(pulumi.ComponentResource):
    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("its:cluster:Cluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        partition = aws.get_partition_output().partition
        self.partition = partition

        self.secrets_key = aws.kms.Key(
            f"{name}-secrets",
            description=f"Envelope encryption of Kubernetes secrets of {args.cluster_name}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        aws.kms.Alias(
            f"{name}-secrets",
            name=f"alias/{args.cluster_name}-secrets",
            target_key_id=self.secrets_key.key_id,
            opts=child,
        )

        # Created before the cluster so EKS writes into a group with our retention and key.
        log_group = encrypted_log_group(
            f"{name}-control-plane",
            log_name=f"/aws/eks/{args.cluster_name}/cluster",
            retention_days=args.log_retention_days,
            region=args.region,
            description=f"Control-plane logs of {args.cluster_name}",
            tags=tags,
            protect=args.protect,
            parent=self,
        )

        role = aws.iam.Role(
            f"{name}-control-plane",
            assume_role_policy=service_trust_policy("eks.amazonaws.com"),
            tags=tags,
            opts=child,
        )
        attachment = aws.iam.RolePolicyAttachment(
            f"{name}-control-plane",
            role=role.name,
            policy_arn=managed_policy_arn(partition, "AmazonEKSClusterPolicy"),
            opts=child,
        )

        self.cluster = aws.eks.Cluster(
            f"{name}-eks",
            name=args.cluster_name,
            version=args.kubernetes_version,
            role_arn=role.arn,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=list(args.private_subnet_ids),
                endpoint_private_access=True,
                endpoint_public_access=args.endpoint_public_access,
                public_access_cidrs=list(args.public_access_cidrs) if args.endpoint_public_access else None,
            ),
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=self.secrets_key.arn),
                resources=["secrets"],
            ),
            enabled_cluster_log_types=list(args.log_types),
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API",
                # The identity running `pulumi up` installs the Helm releases right after.
                bootstrap_cluster_creator_admin_permissions=True,
            ),
            deletion_protection=args.protect,
            tags=tags,
            opts=pulumi.ResourceOptions(
                parent=self, protect=args.protect, depends_on=[attachment, log_group]
            ),
        )

        self.oidc_issuer_url: pulumi.Output[str] = self.cluster.identities.apply(
            lambda ids: str(ids[0]["oidcs"][0]["issuer"])
        )
        self.oidc_provider = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc",
            url=self.oidc_issuer_url,
            client_id_lists=[STS_AUDIENCE],
            tags=tags,
            opts=child,
        )

        for index, entry in enumerate(args.access_entries):
            access_entry = aws.eks.AccessEntry(
                f"{name}-access-{index}",
                cluster_name=self.cluster.name,
                principal_arn=entry.principal_arn,
                type="STANDARD",
                tags=tags,
                opts=child,
            )
            aws.eks.AccessPolicyAssociation(
                f"{name}-access-{index}",
                cluster_name=self.cluster.name,
                principal_arn=entry.principal_arn,
                policy_arn=pulumi.Output.concat(
                    "arn:", partition, ":eks::aws:cluster-access-policy/", ACCESS_POLICIES[entry.policy]
                ),
                access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[access_entry]),
            )

        self.cni_role = irsa_role(
            f"{name}-cni-irsa",
            oidc_provider_arn=self.oidc_provider.arn,
            oidc_issuer_url=self.oidc_issuer_url,
            namespace=CNI_NAMESPACE,
            service_account=CNI_SERVICE_ACCOUNT,
            policy_arns=[managed_policy_arn(partition, "AmazonEKS_CNI_Policy")],
            tags=tags,
            parent=self,
        )
        role_of = {"vpc-cni": self.cni_role.arn}
        self.addons = [
            aws.eks.Addon(
                f"{name}-{addon}",
                cluster_name=self.cluster.name,
                addon_name=addon,
                addon_version=args.addon_versions[addon],
                service_account_role_arn=role_of.get(addon),
                resolve_conflicts_on_create="OVERWRITE",
                resolve_conflicts_on_update="OVERWRITE",
                tags=tags,
                opts=child,
            )
            for addon in PRE_NODE_ADDONS
        ]

        self.kubeconfig: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.all(
                self.cluster.name, self.cluster.endpoint, self.cluster.certificate_authority.data
            ).apply(lambda a: kubeconfig_json(str(a[0]), str(a[1]), str(a[2]), args.region))
        )
        self.provider = k8s.Provider(f"{name}-k8s", kubeconfig=self.kubeconfig, opts=child)

        self.register_outputs(
            {
                "clusterName": self.cluster.name,
                "endpoint": self.cluster.endpoint,
                "oidcProviderArn": self.oidc_provider.arn,
                "kubeconfig": self.kubeconfig,
            }
        )
