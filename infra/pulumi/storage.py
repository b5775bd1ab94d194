"""Storage: the cluster's default StorageClass, gp3 volumes of the EBS CSI driver encrypted with a
KMS key of the program's, and the grant that lets the driver's IRSA role use that key.

EKS 1.30 and later mark no StorageClass default (the gp2 class it ships is not), so without this
every PersistentVolumeClaim that names no class (redis-ha, MinIO, OpenBao, Prometheus,
Alertmanager, Kafka, the CloudNativePG cluster) would stay Pending. Every data-stack release
waits for it (program.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.pulumi.aws_common import rotating_key

STORAGE_CLASS = "gp3-encrypted"
EBS_CSI_PROVISIONER = "ebs.csi.aws.com"
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"


def ebs_key_use_policy(key_arn: str) -> str:
    """What the EBS CSI controller may do with the volume key: what EBS needs to encrypt a new
    volume and attach it (grants only for AWS resources), on this key only."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "GrantsForEbs",
                    "Effect": "Allow",
                    "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
                    "Resource": [key_arn],
                    "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
                },
                {
                    "Sid": "UseVolumeKey",
                    "Effect": "Allow",
                    "Action": [
                        "kms:Encrypt",
                        "kms:Decrypt",
                        "kms:ReEncrypt*",
                        "kms:GenerateDataKey*",
                        "kms:DescribeKey",
                    ],
                    "Resource": [key_arn],
                },
            ],
        }
    )


@dataclass(frozen=True)
class StorageArgs:
    cluster_name: str
    # The EBS CSI driver's IRSA role (addons.py), which creates the volumes.
    ebs_csi_role_name: pulumi.Input[str]
    provider: k8s.Provider
    tags: Mapping[str, str]
    protect: bool
    # The aws-ebs-csi-driver add-on: the class is useless until its provisioner runs.
    depends_on: Sequence[pulumi.Resource] = ()


class Storage(pulumi.ComponentResource):
    def __init__(self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("its:storage:Storage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.volume_key = rotating_key(
            f"{name}-ebs",
            description=f"Encryption of the EBS volumes of {args.cluster_name}'s PersistentVolumes",
            tags=dict(args.tags),
            protect=args.protect,
            parent=self,
        )
        aws.kms.Alias(
            f"{name}-ebs",
            name=f"alias/{args.cluster_name}-ebs",
            target_key_id=self.volume_key.key_id,
            opts=child,
        )
        key_use = aws.iam.RolePolicy(
            f"{name}-ebs-csi-kms",
            role=args.ebs_csi_role_name,
            policy=self.volume_key.arn.apply(ebs_key_use_policy),
            opts=child,
        )
        self.storage_class = k8s.storage.v1.StorageClass(
            f"{name}-{STORAGE_CLASS}",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=STORAGE_CLASS,
                annotations={DEFAULT_CLASS_ANNOTATION: "true"},
                labels={"app.kubernetes.io/managed-by": "pulumi"},
            ),
            provisioner=EBS_CSI_PROVISIONER,
            parameters={
                "type": "gp3",
                "fsType": "ext4",
                "encrypted": "true",
                "kmsKeyId": self.volume_key.arn,
            },
            # A volume is made in the zone of the node its pod is scheduled to, never elsewhere.
            volume_binding_mode="WaitForFirstConsumer",
            allow_volume_expansion=True,
            # Where stateful resources are protected, a deleted claim leaves its volume behind.
            reclaim_policy="Retain" if args.protect else "Delete",
            opts=pulumi.ResourceOptions(
                parent=self, provider=args.provider, depends_on=[key_use, *args.depends_on]
            ),
        )
        self.register_outputs({"storageClass": STORAGE_CLASS, "volumeKeyArn": self.volume_key.arn})
