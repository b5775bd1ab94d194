"""VaultUnseal: what OpenBao needs from AWS to come back by itself after every restart, and to
keep its data outside the cluster.

- A rotating KMS key that seals OpenBao's root key (the `seal "awskms"` stanza of
  values/openbao): a restarted pod unseals itself, no key holder is called.
- The IRSA role of the OpenBao server's service account, allowed only kms:Encrypt, kms:Decrypt
  and kms:DescribeKey on that one key (what OpenBao's awskms seal documents as needed).
- A versioned, KMS-encrypted, private bucket for the raft snapshots, and the IRSA role of the
  snapshot CronJob (its-vault-config chart), allowed only to put objects under its prefix.

The key id, the region and the role reach the release as program values
(`release_values`): the values files never hold an account's ARNs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.pulumi.aws_common import irsa_role, private_bucket_controls, rotating_key

# The openbao chart names the server's service account after the release's fullname: the release
# is `openbao` (infrastructure/cloud/upstream-charts.yaml) and no values file overrides it.
OPENBAO_RELEASE = "openbao"
OPENBAO_SERVICE_ACCOUNT = "openbao"
# Read by go-kms-wrapping's awskms wrapper (the version OpenBao v2.3.1 builds with) and by the AWS
# SDK: the key id and region are not written into the HCL, so the values files stay per account.
KEY_ID_ENV = "VAULT_AWSKMS_SEAL_KEY_ID"
REGION_ENV = "AWS_REGION"
IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"
# What the awskms seal calls, and nothing else (OpenBao's docs, "awskms" seal, permissions).
SEAL_ACTIONS = ("kms:Encrypt", "kms:Decrypt", "kms:DescribeKey")
SNAPSHOT_PREFIX = "openbao/raft/"
# Snapshots are taken hourly (its-vault-config); a snapshot is kept 30 days, a replaced or
# deleted version 7 more.
SNAPSHOT_RETENTION_DAYS = 30
NONCURRENT_RETENTION_DAYS = 7


@dataclass(frozen=True)
class SnapshotIdentity:
    """Where the its-vault-config chart's snapshot CronJob runs and what it reads: its service
    account and the ConfigMap naming the bucket (both in the chart's values, made here)."""

    namespace: str
    service_account: str
    target_config_map: str


@dataclass(frozen=True)
class VaultUnsealArgs:
    cluster_name: str
    region: str
    namespace: str
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer_url: pulumi.Input[str]
    snapshots: SnapshotIdentity
    provider: k8s.Provider
    tags: Mapping[str, str]
    protect: bool
    # The namespace of the snapshot identity exists (PlatformSecrets makes it).
    depends_on: Sequence[pulumi.Resource] = ()


def seal_policy(key_arn: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "Seal", "Effect": "Allow", "Action": list(SEAL_ACTIONS), "Resource": key_arn}
            ],
        }
    )


def snapshot_policy(bucket_arn: str, key_arn: str) -> str:
    """Write snapshots under the prefix; no S3 read, list or delete (a stolen identity cannot
    take or erase the history; versioning keeps an overwritten object)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "PutSnapshots",
                    "Effect": "Allow",
                    "Action": "s3:PutObject",
                    "Resource": f"{bucket_arn}/{SNAPSHOT_PREFIX}*",
                },
                {
                    # SSE-KMS: S3 asks KMS for a data key on the writer's behalf; a multipart
                    # upload (a snapshot over 8 MiB with `aws s3 cp`) also decrypts it per part.
                    "Sid": "EncryptSnapshots",
                    "Effect": "Allow",
                    "Action": ["kms:GenerateDataKey", "kms:Encrypt", "kms:Decrypt"],
                    "Resource": key_arn,
                },
            ],
        }
    )


class VaultUnseal(pulumi.ComponentResource):
    def __init__(self, name: str, args: VaultUnsealArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("its:vault:VaultUnseal", name, None, opts)
        self._args = args
        kept = pulumi.ResourceOptions(parent=self, protect=args.protect)
        tags = dict(args.tags)

        self.seal_key = rotating_key(
            f"{name}-seal",
            description=f"Seals the root key of OpenBao in {args.cluster_name}",
            tags=tags,
            protect=args.protect,
            parent=self,
        )
        aws.kms.Alias(
            f"{name}-seal",
            name=f"alias/{args.cluster_name}-openbao-seal",
            target_key_id=self.seal_key.key_id,
            opts=pulumi.ResourceOptions(parent=self.seal_key),
        )
        seal = aws.iam.Policy(
            f"{name}-seal",
            description="OpenBao's awskms seal: encrypt, decrypt and describe its one key",
            policy=self.seal_key.arn.apply(seal_policy),
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.server_role = irsa_role(
            f"{name}-server",
            oidc_provider_arn=args.oidc_provider_arn,
            oidc_issuer_url=args.oidc_issuer_url,
            namespace=args.namespace,
            service_account=OPENBAO_SERVICE_ACCOUNT,
            policy_arns=[seal.arn],
            tags=tags,
            parent=self,
        )
        self.snapshot_bucket = self._snapshot_bucket(name, tags, kept)
        self._snapshot_identity(name, tags)
        self.register_outputs(
            {
                "sealKeyArn": self.seal_key.arn,
                "serverRoleArn": self.server_role.arn,
                "snapshotBucket": self.snapshot_bucket.bucket,
            }
        )

    @property
    def release_values(self) -> dict[str, Any]:
        """The openbao release's values only the program knows: the seal key and region as the
        environment the awskms seal reads, and the IRSA role of the server's service account."""
        return {
            "server": {
                "extraEnvironmentVars": {KEY_ID_ENV: self.seal_key.key_id, REGION_ENV: self._args.region},
                "serviceAccount": {"annotations": {IRSA_ANNOTATION: self.server_role.arn}},
            }
        }

    def _snapshot_bucket(
        self, name: str, tags: dict[str, str], kept: pulumi.ResourceOptions
    ) -> aws.s3.Bucket:
        self.snapshot_key = rotating_key(
            f"{name}-snapshots",
            description=f"Encrypts OpenBao's raft snapshots of {self._args.cluster_name}",
            tags=tags,
            protect=self._args.protect,
            parent=self,
        )
        # Bucket names are global: the account id makes this one the account's own.
        account = aws.get_caller_identity_output().account_id
        bucket = aws.s3.Bucket(
            f"{name}-snapshots",
            bucket=pulumi.Output.concat(self._args.cluster_name, "-", account, "-openbao-snapshots"),
            force_destroy=False,
            tags=tags,
            opts=kept,
        )
        versioning = private_bucket_controls(
            f"{name}-snapshots", bucket, self.snapshot_key.arn, parent=bucket
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-snapshots",
            bucket=bucket.bucket,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-snapshots",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=SNAPSHOT_PREFIX),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                        days=SNAPSHOT_RETENTION_DAYS
                    ),
                    noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                        noncurrent_days=NONCURRENT_RETENTION_DAYS
                    ),
                )
            ],
            opts=pulumi.ResourceOptions(parent=bucket, depends_on=[versioning]),
        )
        return bucket

    def _snapshot_identity(self, name: str, tags: dict[str, str]) -> None:
        """The CronJob's IRSA role, its service account (annotated with the role) and the
        ConfigMap that tells it the bucket: the cloud's facts in the chart's namespace, so the
        ArgoCD-synced chart names them and never holds an ARN."""
        args = self._args
        policy = aws.iam.Policy(
            f"{name}-snapshots",
            description="OpenBao's snapshot CronJob: put raft snapshots under its prefix",
            policy=pulumi.Output.all(self.snapshot_bucket.arn, self.snapshot_key.arn).apply(
                lambda arns: snapshot_policy(str(arns[0]), str(arns[1]))
            ),
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.snapshot_role = irsa_role(
            f"{name}-snapshots",
            oidc_provider_arn=args.oidc_provider_arn,
            oidc_issuer_url=args.oidc_issuer_url,
            namespace=args.snapshots.namespace,
            service_account=args.snapshots.service_account,
            policy_arns=[policy.arn],
            tags=tags,
            parent=self,
        )
        labels = {"app.kubernetes.io/part-of": "its-camera-ai", "app.kubernetes.io/managed-by": "pulumi"}
        k8s_opts = pulumi.ResourceOptions(
            parent=self, provider=args.provider, depends_on=list(args.depends_on)
        )
        k8s.core.v1.ServiceAccount(
            f"{name}-snapshots",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args.snapshots.service_account,
                namespace=args.snapshots.namespace,
                labels=labels,
                annotations={IRSA_ANNOTATION: self.snapshot_role.arn},
            ),
            # The CronJob mounts its own audience-bound tokens; nothing else gets one.
            automount_service_account_token=False,
            opts=k8s_opts,
        )
        k8s.core.v1.ConfigMap(
            f"{name}-snapshot-target",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args.snapshots.target_config_map, namespace=args.snapshots.namespace, labels=labels
            ),
            data={
                "bucket": self.snapshot_bucket.bucket,
                "prefix": SNAPSHOT_PREFIX,
                "region": args.region,
            },
            opts=k8s_opts,
        )
