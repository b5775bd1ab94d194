"""PostgresBackups: the environment's S3 bucket for PostgreSQL's backups, outside the cluster, and
the IRSA role of the database's service account, which may use that bucket and nothing else.

The bucket is versioned and object-locked (every object immutable for recovery.yaml's
object_lock_days, in the stack's mode), encrypted with its own rotating KMS key, never public,
TLS only, and expires what the backup tool has retired. CloudNativePG's barman-cloud plugin
writes it (the its-databases chart's ObjectStore); the bucket's name, region and the role's ARN
reach that chart through the root Application (gitops_root.py, `platform_values`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from infra.facts.recovery import Recovery
from infra.pulumi.aws_common import irsa_role, private_bucket_controls, rotating_key

# Lifecycle margins beyond the recovery window (days): the plugin deletes what falls out of the
# window itself; these only catch what it never did (a deleted cluster, a stopped plugin).
CURRENT_VERSION_MARGIN_DAYS = 7
# Multipart uploads of a base backup interrupted midway are removed after this.
ABORT_MULTIPART_DAYS = 7


def backup_bucket_name(cluster_name: str, account_id: str) -> str:
    """Bucket names are global: the account makes it unique, the cluster names its environment."""
    return f"{cluster_name}-postgres-backups-{account_id}"


def backup_tool_policy(bucket_arn: str, key_arn: str) -> str:
    """What barman-cloud does with the bucket: list it, read, write and delete (a delete marker:
    locked versions stay) its objects, with the bucket's key. No bypass of the lock, no bucket
    configuration, no other bucket."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ListTheBucket",
                    "Effect": "Allow",
                    "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
                    "Resource": [bucket_arn],
                },
                {
                    "Sid": "BackupObjects",
                    "Effect": "Allow",
                    "Action": ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"],
                    "Resource": [f"{bucket_arn}/*"],
                },
                {
                    "Sid": "BucketKey",
                    "Effect": "Allow",
                    "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                    "Resource": [key_arn],
                },
            ],
        }
    )


@dataclass(frozen=True)
class PostgresBackupsArgs:
    cluster_name: str
    region: str
    recovery: Recovery
    object_lock_mode: Literal["GOVERNANCE", "COMPLIANCE"]
    # The database's service account: CloudNativePG names it after the Cluster.
    namespace: str
    service_account: str
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer_url: pulumi.Input[str]
    tags: Mapping[str, str]
    protect: bool


class PostgresBackups(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: PostgresBackupsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("its:backups:PostgresBackups", name, None, opts)
        tags = dict(args.tags)
        child = pulumi.ResourceOptions(parent=self)
        stateful = pulumi.ResourceOptions(parent=self, protect=args.protect)
        account_id = aws.get_caller_identity_output().account_id

        self.key = rotating_key(
            f"{name}-key",
            description=f"Encryption of {args.cluster_name}'s PostgreSQL backups",
            tags=tags,
            protect=args.protect,
            parent=self,
        )
        self.bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket=account_id.apply(lambda account: backup_bucket_name(args.cluster_name, account)),
            # Object Lock can only be turned on when the bucket is made.
            object_lock_enabled=True,
            force_destroy=False,
            tags={**tags, "its.ai/purpose": "backups"},
            opts=stateful,
        )
        versioning = private_bucket_controls(name, self.bucket, self.key.arn, parent=self)
        aws.s3.BucketObjectLockConfiguration(
            f"{name}-object-lock",
            bucket=self.bucket.bucket,
            rule=aws.s3.BucketObjectLockConfigurationRuleArgs(
                default_retention=aws.s3.BucketObjectLockConfigurationRuleDefaultRetentionArgs(
                    mode=args.object_lock_mode, days=args.recovery.object_lock_days
                )
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]),
        )
        self._lifecycle(name, args, versioning)

        policy = aws.iam.Policy(
            f"{name}-backup-tool",
            description=f"barman-cloud of {args.cluster_name}: its backup bucket only",
            policy=pulumi.Output.all(self.bucket.arn, self.key.arn).apply(
                lambda arns: backup_tool_policy(str(arns[0]), str(arns[1]))
            ),
            tags=tags,
            opts=child,
        )
        self.role = irsa_role(
            f"{name}-backup-tool",
            oidc_provider_arn=args.oidc_provider_arn,
            oidc_issuer_url=args.oidc_issuer_url,
            namespace=args.namespace,
            service_account=args.service_account,
            policy_arns=[policy.arn],
            tags=tags,
            parent=self,
        )
        # What the its-databases chart needs, in its values' terms (platform.postgresBackup).
        self.chart_values: dict[str, Any] = {
            "bucket": self.bucket.bucket,
            "region": args.region,
            "roleArn": self.role.arn,
        }
        self.register_outputs({"bucket": self.bucket.bucket, "roleArn": self.role.arn})

    def _lifecycle(self, name: str, args: PostgresBackupsArgs, versioning: aws.s3.BucketVersioning) -> None:
        window = args.recovery.retention_days
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=self.bucket.bucket,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-retired-backups",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                        days=window + CURRENT_VERSION_MARGIN_DAYS
                    ),
                    # A deleted backup's versions go once their lock has run out.
                    noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                        noncurrent_days=args.recovery.object_lock_days + 1
                    ),
                    abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                        days_after_initiation=ABORT_MULTIPART_DAYS
                    ),
                )
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]),
        )
