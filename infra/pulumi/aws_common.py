"""Small AWS building blocks shared by the components: trust policies, KMS keys, IRSA roles,
the controls every bucket of the platform carries."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

STS_AUDIENCE = "sts.amazonaws.com"


def service_trust_policy(service: str) -> str:
    """Assume-role policy letting one AWS service (e.g. eks.amazonaws.com) use a role."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        }
    )


def managed_policy_arn(partition: pulumi.Input[str], name: str) -> pulumi.Output[str]:
    return pulumi.Output.concat("arn:", partition, ":iam::aws:policy/", name)


def irsa_trust_policy(provider_arn: str, issuer_url: str, namespace: str, service_account: str) -> str:
    """Trust of an IRSA role: only the one service account, only tokens for STS."""
    issuer = issuer_url.removeprefix("https://")
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": provider_arn},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {
                        "StringEquals": {
                            f"{issuer}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                            f"{issuer}:aud": STS_AUDIENCE,
                        }
                    },
                }
            ],
        }
    )


def irsa_role(
    name: str,
    *,
    oidc_provider_arn: pulumi.Input[str],
    oidc_issuer_url: pulumi.Input[str],
    namespace: str,
    service_account: str,
    policy_arns: Sequence[pulumi.Input[str]],
    tags: Mapping[str, str],
    parent: pulumi.Resource,
) -> aws.iam.Role:
    trust = pulumi.Output.all(oidc_provider_arn, oidc_issuer_url).apply(
        lambda args: irsa_trust_policy(str(args[0]), str(args[1]), namespace, service_account)
    )
    role = aws.iam.Role(
        name,
        assume_role_policy=trust,
        description=f"IRSA role of {namespace}/{service_account}",
        tags=dict(tags),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    for index, policy_arn in enumerate(policy_arns):
        aws.iam.RolePolicyAttachment(
            f"{name}-{index}",
            role=role.name,
            policy_arn=policy_arn,
            opts=pulumi.ResourceOptions(parent=role),
        )
    return role


def _logs_key_policy(account_id: str, partition: str, region: str) -> str:
    root = f"arn:{partition}:iam::{account_id}:root"
    statements: list[dict[str, Any]] = [
        # Without the account root statement nobody could ever administer the key again.
        {
            "Sid": "AccountAdmin",
            "Effect": "Allow",
            "Principal": {"AWS": root},
            "Action": "kms:*",
            "Resource": "*",
        },
        {
            "Sid": "CloudWatchLogs",
            "Effect": "Allow",
            "Principal": {"Service": f"logs.{region}.amazonaws.com"},
            "Action": [
                "kms:Encrypt*",
                "kms:Decrypt*",
                "kms:ReEncrypt*",
                "kms:GenerateDataKey*",
                "kms:Describe*",
            ],
            "Resource": "*",
            "Condition": {
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": f"arn:{partition}:logs:{region}:{account_id}:*"
                }
            },
        },
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def logs_kms_key(
    name: str,
    *,
    region: str,
    description: str,
    tags: Mapping[str, str],
    protect: bool,
    parent: pulumi.Resource,
) -> aws.kms.Key:
    """A rotating KMS key CloudWatch Logs of this account and region may encrypt with."""
    identity = aws.get_caller_identity_output()
    partition = aws.get_partition_output()
    policy = pulumi.Output.all(identity.account_id, partition.partition).apply(
        lambda args: _logs_key_policy(str(args[0]), str(args[1]), region)
    )
    return aws.kms.Key(
        name,
        description=description,
        enable_key_rotation=True,
        deletion_window_in_days=30,
        policy=policy,
        tags=dict(tags),
        opts=pulumi.ResourceOptions(parent=parent, protect=protect),
    )


def encrypted_log_group(
    name: str,
    *,
    log_name: str,
    retention_days: int,
    region: str,
    description: str,
    tags: Mapping[str, str],
    protect: bool,
    parent: pulumi.Resource,
) -> aws.cloudwatch.LogGroup:
    """A CloudWatch log group encrypted with its own rotating KMS key (flow logs, control plane)."""
    key = logs_kms_key(
        name, region=region, description=description, tags=tags, protect=protect, parent=parent
    )
    return aws.cloudwatch.LogGroup(
        name,
        name=log_name,
        retention_in_days=retention_days,
        kms_key_id=key.arn,
        tags=dict(tags),
        opts=pulumi.ResourceOptions(parent=parent, protect=protect),
    )


def rotating_key(
    name: str, *, description: str, tags: Mapping[str, str], protect: bool, parent: pulumi.Resource
) -> aws.kms.Key:
    """A KMS key of the program's: rotated yearly, 30 days' grace before deletion."""
    return aws.kms.Key(
        name,
        description=description,
        enable_key_rotation=True,
        deletion_window_in_days=30,
        tags=dict(tags),
        opts=pulumi.ResourceOptions(parent=parent, protect=protect),
    )


def tls_only_bucket_policy(bucket_arn: str) -> str:
    """Refuse every request to the bucket that does not come over TLS."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [bucket_arn, f"{bucket_arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }
    )


def private_bucket_controls(
    name: str, bucket: aws.s3.Bucket, key_arn: pulumi.Input[str], parent: pulumi.Resource
) -> aws.s3.BucketVersioning:
    """What every bucket of the platform carries: versioning, SSE-KMS with its own key (bucket
    keys on), no public access, the owner owning every object (no ACLs), TLS only. Returns the
    versioning, which object lock and lifecycle rules must follow."""
    child = pulumi.ResourceOptions(parent=parent)
    # The bucket by its name (its id in S3), as the policy pack matches sub-resources to it.
    name_of = bucket.bucket
    versioning = aws.s3.BucketVersioning(
        f"{name}-versioning",
        bucket=name_of,
        versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
        opts=child,
    )
    aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-sse",
        bucket=name_of,
        rules=[
            aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm="aws:kms", kms_master_key_id=key_arn
                ),
                bucket_key_enabled=True,
            )
        ],
        opts=child,
    )
    aws.s3.BucketPublicAccessBlock(
        f"{name}-public-access",
        bucket=name_of,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=child,
    )
    aws.s3.BucketOwnershipControls(
        f"{name}-ownership",
        bucket=name_of,
        rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
        opts=child,
    )
    aws.s3.BucketPolicy(
        f"{name}-tls-only",
        bucket=name_of,
        policy=bucket.arn.apply(tls_only_bucket_policy),
        opts=child,
    )
    return versioning
