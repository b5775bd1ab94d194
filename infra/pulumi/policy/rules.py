"""The policy pack's rules as plain functions of (resource type, props) -> violations, so tests
can run them on hand-made props and on every resource the mocked program registers.

Props use the engine's (camelCase) names, as pulumi_policy and the mock monitor both see them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Props = Mapping[str, Any]
REQUIRED_TAGS = ("owner", "cost-center", "environment")
GPU_TAINT_KEY = "nvidia.com/gpu"
# The label cluster-autoscaler reads to know a node group has GPUs.
ACCELERATOR_LABEL = "k8s.amazonaws.com/accelerator"
STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
BUCKET = "aws:s3/bucket:Bucket"
# How a bucket says it holds backups (infra/pulumi/backups.py tags it so).
PURPOSE_TAG, BACKUPS = "its.ai/purpose", "backups"
WORLD = {"0.0.0.0/0", "::/0"}
# AWS types of this program that take no `tags` argument; every other aws: type must be tagged.
NON_TAGGABLE = frozenset(
    {
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        "aws:iam/rolePolicy:RolePolicy",
        "aws:ec2/routeTableAssociation:RouteTableAssociation",
        "aws:ec2/route:Route",
        "aws:kms/alias:Alias",
        "aws:route53/record:Record",
        "aws:eks/accessPolicyAssociation:AccessPolicyAssociation",
        "aws:autoscaling/tag:Tag",
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketPolicy:BucketPolicy",
        "aws:s3/bucketAcl:BucketAcl",
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
        "aws:s3/bucketVersioning:BucketVersioning",
        "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration",
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
    }
)


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    check: Callable[[str, Props], list[str]]


@dataclass(frozen=True)
class StackRule:
    name: str
    description: str
    check: Callable[[Iterable[tuple[str, str, Props]]], list[str]]


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def kms_encryption_at_rest(resource_type: str, props: Props) -> list[str]:
    if resource_type == "aws:eks/cluster:Cluster":
        config = props.get("encryptionConfig") or {}
        if "secrets" not in (config.get("resources") or []) or not (config.get("provider") or {}).get(
            "keyArn"
        ):
            return ["EKS secrets must be envelope-encrypted with a KMS key (encryptionConfig)"]
    if resource_type == "aws:kms/key:Key" and not _truthy(props.get("enableKeyRotation")):
        return ["KMS keys must rotate (enableKeyRotation: true)"]
    if resource_type == "aws:ec2/launchTemplate:LaunchTemplate":
        for mapping in props.get("blockDeviceMappings") or []:
            ebs = mapping.get("ebs") or {}
            if ebs and not _truthy(ebs.get("encrypted")):
                return [f"launch template volume {mapping.get('deviceName')} must be encrypted"]
    if resource_type == "aws:ebs/volume:Volume" and not _truthy(props.get("encrypted")):
        return ["EBS volumes must be encrypted"]
    if resource_type == "aws:cloudwatch/logGroup:LogGroup" and not props.get("kmsKeyId"):
        return ["log groups must be encrypted with a KMS key (kmsKeyId)"]
    if (
        resource_type
        == "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    ):
        algorithms = [
            ((rule.get("applyServerSideEncryptionByDefault") or {}).get("sseAlgorithm"))
            for rule in props.get("rules") or []
        ]
        if not algorithms or any(a not in {"aws:kms", "aws:kms:dsse"} for a in algorithms):
            return ["S3 server-side encryption must use KMS (sseAlgorithm aws:kms)"]
    return []


def no_public_s3(resource_type: str, props: Props) -> list[str]:
    if resource_type == "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock":
        flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
        off = [f for f in flags if not _truthy(props.get(f))]
        if off:
            return [f"S3 public access block must set {', '.join(off)}"]
    if resource_type in {"aws:s3/bucketAcl:BucketAcl", "aws:s3/bucket:Bucket"}:
        acl = str(props.get("acl") or "")
        if acl.startswith("public-") or acl == "authenticated-read":
            return [f"S3 ACL {acl!r} makes the bucket public"]
    return []


def no_open_endpoint_in_prod(resource_type: str, props: Props) -> list[str]:
    if resource_type != "aws:eks/cluster:Cluster" or (props.get("tags") or {}).get("environment") != "prod":
        return []
    vpc = props.get("vpcConfig") or {}
    if not _truthy(vpc.get("endpointPrivateAccess")):
        return ["prod clusters need private endpoint access"]
    if _truthy(vpc.get("endpointPublicAccess")):
        cidrs = set(vpc.get("publicAccessCidrs") or [])
        # No CIDR list means EKS opens the public endpoint to the world.
        if not cidrs or cidrs & WORLD:
            return ["prod cluster endpoint must not be public to 0.0.0.0/0"]
    return []


def _is_gpu_node_group(props: Props) -> bool:
    labels = props.get("labels") or {}
    return (
        "NVIDIA" in str(props.get("amiType") or "").upper() or labels.get("nvidia.com/gpu.present") == "true"
    )


def gpu_node_groups_tainted(resource_type: str, props: Props) -> list[str]:
    if resource_type != "aws:eks/nodeGroup:NodeGroup" or not _is_gpu_node_group(props):
        return []
    taints = props.get("taints") or []
    if not any(t.get("key") == GPU_TAINT_KEY and t.get("effect") == "NO_SCHEDULE" for t in taints):
        return [f"GPU node groups must carry the taint {GPU_TAINT_KEY}:NoSchedule"]
    return []


def gpu_node_groups_labelled(resource_type: str, props: Props) -> list[str]:
    if resource_type != "aws:eks/nodeGroup:NodeGroup" or not _is_gpu_node_group(props):
        return []
    if not (props.get("labels") or {}).get(ACCELERATOR_LABEL):
        return [f"GPU node groups must carry the label {ACCELERATOR_LABEL} (the GPU type)"]
    return []


def imdsv2_hop_limit_1(resource_type: str, props: Props) -> list[str]:
    """A pod in its own network namespace is a hop further than the node: with hop limit 1 it
    never reads the node role's credentials from the instance metadata service."""
    if resource_type != "aws:ec2/launchTemplate:LaunchTemplate":
        return []
    metadata = props.get("metadataOptions") or {}
    problems = []
    if metadata.get("httpTokens") != "required":
        problems.append("launch templates must require IMDSv2 tokens (metadataOptions.httpTokens: required)")
    if metadata.get("httpPutResponseHopLimit") != 1:
        problems.append("launch templates must set the IMDS hop limit to 1 (httpPutResponseHopLimit)")
    return problems


def required_tags(resource_type: str, props: Props) -> list[str]:
    if not resource_type.startswith("aws:") or resource_type in NON_TAGGABLE:
        return []
    tags = props.get("tags") or {}
    missing = [t for t in REQUIRED_TAGS if not tags.get(t)]
    return [f"missing required tag(s) {missing}"] if missing else []


def s3_buckets_locked_down(resources: Iterable[tuple[str, str, Props]]) -> list[str]:
    """Every bucket has a public access block and a KMS encryption configuration."""
    items = list(resources)
    buckets = {name for rtype, name, _ in items if rtype == "aws:s3/bucket:Bucket"}
    blocked = {
        str(props.get("bucket"))
        for rtype, _, props in items
        if rtype == "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
    }
    encrypted = {
        str(props.get("bucket"))
        for rtype, _, props in items
        if rtype == "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    }
    bucket_refs = {
        name: {str(props.get("bucket")), name, str(props.get("id"))}
        for rtype, name, props in items
        if rtype == "aws:s3/bucket:Bucket"
    }
    violations = []
    for bucket in sorted(buckets):
        if not bucket_refs[bucket] & blocked:
            violations.append(f"bucket {bucket}: no public access block")
        if not bucket_refs[bucket] & encrypted:
            violations.append(f"bucket {bucket}: no KMS server-side encryption configuration")
    return violations


def default_storage_class_encrypted(resources: Iterable[tuple[str, str, Props]]) -> list[str]:
    """The cluster has a default StorageClass (EKS 1.30+ marks none), and it encrypts."""
    defaults = [
        (name, props)
        for rtype, name, props in resources
        if rtype == STORAGE_CLASS
        and ((props.get("metadata") or {}).get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION) == "true"
    ]
    if len(defaults) != 1:
        return [
            f"exactly one default StorageClass is needed ({DEFAULT_CLASS_ANNOTATION}), found {len(defaults)}"
        ]
    ((name, props),) = defaults
    if not _truthy((props.get("parameters") or {}).get("encrypted")):
        return [f"the default StorageClass {name} must encrypt its volumes (parameters.encrypted)"]
    return []


def backup_buckets_locked(resources: Iterable[tuple[str, str, Props]]) -> list[str]:
    """Every bucket tagged its.ai/purpose=backups has Object Lock on, a default retention, and
    versioning enabled."""
    items = list(resources)

    def refs(name: str, props: Props) -> set[str]:
        return {name, str(props.get("bucket")), str(props.get("id"))}

    def configured(kind: str, ok: Callable[[Props], bool]) -> set[str]:
        return {str(p.get("bucket")) for rtype, _, p in items if rtype == f"aws:s3/{kind}" and ok(p)}

    versioned = configured(
        "bucketVersioning:BucketVersioning",
        lambda p: (p.get("versioningConfiguration") or {}).get("status") == "Enabled",
    )
    retained = configured(
        "bucketObjectLockConfiguration:BucketObjectLockConfiguration",
        lambda p: bool(
            ((p.get("rule") or {}).get("defaultRetention") or {}).get("mode") in {"GOVERNANCE", "COMPLIANCE"}
        ),
    )
    violations = []
    for rtype, name, props in items:
        if rtype != BUCKET or (props.get("tags") or {}).get(PURPOSE_TAG) != BACKUPS:
            continue
        if not _truthy(props.get("objectLockEnabled")):
            violations.append(f"backup bucket {name}: Object Lock is off (objectLockEnabled)")
        if not refs(name, props) & retained:
            violations.append(f"backup bucket {name}: no Object Lock default retention")
        if not refs(name, props) & versioned:
            violations.append(f"backup bucket {name}: versioning is not enabled")
    return violations


RESOURCE_RULES = (
    Rule(
        "kms-encryption-at-rest",
        "Data at rest is encrypted with KMS (EKS secrets, EBS, logs, S3).",
        kms_encryption_at_rest,
    ),
    Rule("no-public-s3", "S3 buckets are never public.", no_public_s3),
    Rule(
        "no-open-endpoint-in-prod",
        "A prod EKS API endpoint is never open to 0.0.0.0/0.",
        no_open_endpoint_in_prod,
    ),
    Rule(
        "gpu-node-groups-tainted", "GPU node groups carry nvidia.com/gpu NoSchedule.", gpu_node_groups_tainted
    ),
    Rule(
        "gpu-node-groups-labelled",
        f"GPU node groups carry {ACCELERATOR_LABEL} for the cluster-autoscaler.",
        gpu_node_groups_labelled,
    ),
    Rule(
        "imdsv2-hop-limit-1",
        "Launch templates require IMDSv2 tokens with a hop limit of 1.",
        imdsv2_hop_limit_1,
    ),
    Rule("required-tags", "Taggable AWS resources carry owner, cost-center and environment.", required_tags),
)
STACK_RULES = (
    StackRule(
        "s3-buckets-locked-down",
        "Every S3 bucket has a public access block and KMS encryption.",
        s3_buckets_locked_down,
    ),
    StackRule(
        "default-storage-class-encrypted",
        "The cluster has one default StorageClass, and it encrypts its volumes.",
        default_storage_class_encrypted,
    ),
    StackRule(
        "backup-buckets-locked",
        "Every S3 bucket for backups has Object Lock with a default retention, and versioning.",
        backup_buckets_locked,
    ),
)
