"""Addons: the EKS add-ons that need running nodes (coredns, aws-ebs-csi-driver) and the EBS CSI
driver's IRSA role, scoped to its controller's service account."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.pulumi.aws_common import irsa_role, managed_policy_arn

EBS_CSI_NAMESPACE = "kube-system"
EBS_CSI_SERVICE_ACCOUNT = "ebs-csi-controller-sa"
# metrics-server serves the resource metrics API the app's HorizontalPodAutoscaler reads.
POST_NODE_ADDONS = ("coredns", "aws-ebs-csi-driver", "metrics-server")


@dataclass(frozen=True)
class AddonsArgs:
    cluster_name: pulumi.Input[str]
    partition: pulumi.Input[str]
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer_url: pulumi.Input[str]
    addon_versions: Mapping[str, str]
    tags: Mapping[str, str]
    # Node groups: coredns and the CSI controller stay Degraded until a node can run them.
    depends_on: Sequence[pulumi.Resource] = ()


class Addons(pulumi.ComponentResource):
    def __init__(self, name: str, args: AddonsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("its:cluster:Addons", name, None, opts)
        tags = dict(args.tags)
        self.ebs_csi_role = irsa_role(
            f"{name}-ebs-csi",
            oidc_provider_arn=args.oidc_provider_arn,
            oidc_issuer_url=args.oidc_issuer_url,
            namespace=EBS_CSI_NAMESPACE,
            service_account=EBS_CSI_SERVICE_ACCOUNT,
            policy_arns=[managed_policy_arn(args.partition, "service-role/AmazonEBSCSIDriverPolicy")],
            tags=tags,
            parent=self,
        )
        role_of = {"aws-ebs-csi-driver": self.ebs_csi_role.arn}
        self.addons = [
            aws.eks.Addon(
                f"{name}-{addon}",
                cluster_name=args.cluster_name,
                addon_name=addon,
                addon_version=args.addon_versions[addon],
                service_account_role_arn=role_of.get(addon),
                resolve_conflicts_on_create="OVERWRITE",
                resolve_conflicts_on_update="OVERWRITE",
                tags=tags,
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
            )
            for addon in POST_NODE_ADDONS
        ]
        self.register_outputs({"ebsCsiRoleArn": self.ebs_csi_role.arn})
