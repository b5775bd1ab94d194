"""The policy pack's rules: each against a passing and a failing resource, then over every resource
the mocked program registers for each stack (all must pass)."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)

from infra.pulumi.policy.pack import policies
from infra.pulumi.policy.rules import (
    RESOURCE_RULES,
    STACK_RULES,
    backup_buckets_locked,
    default_storage_class_encrypted,
    gpu_node_groups_labelled,
    gpu_node_groups_tainted,
    imdsv2_hop_limit_1,
    kms_encryption_at_rest,
    no_open_endpoint_in_prod,
    no_public_s3,
    required_tags,
    s3_buckets_locked_down,
)
from tests.pulumi.stacks import STACKS, stack_run

TAGS = {"owner": "platform-team", "cost-center": "its-prod", "environment": "prod"}
CLUSTER = "aws:eks/cluster:Cluster"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"
NEW_POLICIES = (
    "gpu-node-groups-labelled",
    "imdsv2-hop-limit-1",
    "default-storage-class-encrypted",
    "backup-buckets-locked",
)


def cluster(**vpc: Any) -> dict[str, Any]:
    return {
        "tags": TAGS,
        "encryptionConfig": {
            "resources": ["secrets"],
            "provider": {"keyArn": "arn:aws:kms:eu-west-1:1:key/k"},
        },
        "vpcConfig": {
            "endpointPrivateAccess": True,
            "endpointPublicAccess": True,
            "publicAccessCidrs": ["198.51.100.0/24"],
            **vpc,
        },
    }


CASES = [
    (kms_encryption_at_rest, CLUSTER, cluster(), {**cluster(), "encryptionConfig": {"resources": []}}),
    (kms_encryption_at_rest, "aws:kms/key:Key", {"enableKeyRotation": True}, {"enableKeyRotation": False}),
    (
        kms_encryption_at_rest,
        "aws:ec2/launchTemplate:LaunchTemplate",
        {"blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"encrypted": "true"}}]},
        {"blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"encrypted": "false"}}]},
    ),
    (kms_encryption_at_rest, "aws:ebs/volume:Volume", {"encrypted": True}, {}),
    (kms_encryption_at_rest, "aws:cloudwatch/logGroup:LogGroup", {"kmsKeyId": "arn"}, {}),
    (
        kms_encryption_at_rest,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}}]},
        {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]},
    ),
    (
        no_public_s3,
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        {
            "blockPublicAcls": True,
            "blockPublicPolicy": True,
            "ignorePublicAcls": True,
            "restrictPublicBuckets": True,
        },
        {
            "blockPublicAcls": True,
            "blockPublicPolicy": False,
            "ignorePublicAcls": True,
            "restrictPublicBuckets": True,
        },
    ),
    (no_public_s3, "aws:s3/bucketAcl:BucketAcl", {"acl": "private"}, {"acl": "public-read"}),
    (no_open_endpoint_in_prod, CLUSTER, cluster(), cluster(publicAccessCidrs=["0.0.0.0/0"])),
    (
        no_open_endpoint_in_prod,
        CLUSTER,
        cluster(endpointPublicAccess=False, publicAccessCidrs=[]),
        cluster(publicAccessCidrs=[]),
    ),
    (no_open_endpoint_in_prod, CLUSTER, cluster(), cluster(endpointPrivateAccess=False)),
    (
        gpu_node_groups_tainted,
        NODE_GROUP,
        {
            "amiType": "AL2023_x86_64_NVIDIA",
            "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}],
        },
        {
            "amiType": "AL2023_x86_64_NVIDIA",
            "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_EXECUTE"}],
        },
    ),
    (
        gpu_node_groups_tainted,
        NODE_GROUP,
        {"amiType": "AL2023_x86_64_STANDARD", "taints": []},
        {"amiType": "AL2023_x86_64_STANDARD", "labels": {"nvidia.com/gpu.present": "true"}, "taints": []},
    ),
    (required_tags, "aws:ec2/vpc:Vpc", {"tags": TAGS}, {"tags": {"owner": "x", "environment": "prod"}}),
    (
        gpu_node_groups_labelled,
        NODE_GROUP,
        {"amiType": "AL2023_x86_64_NVIDIA", "labels": {"k8s.amazonaws.com/accelerator": "nvidia-a10g"}},
        {"amiType": "AL2023_x86_64_NVIDIA", "labels": {"nvidia.com/gpu.present": "true"}},
    ),
    (
        gpu_node_groups_labelled,
        NODE_GROUP,
        {"amiType": "AL2023_x86_64_STANDARD", "labels": {}},
        {"amiType": "AL2023_x86_64_STANDARD", "labels": {"nvidia.com/gpu.present": "true"}},
    ),
    (
        imdsv2_hop_limit_1,
        LAUNCH_TEMPLATE,
        {"metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 1}},
        {"metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 2}},
    ),
    (
        imdsv2_hop_limit_1,
        LAUNCH_TEMPLATE,
        {"metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 1}},
        {"metadataOptions": {"httpTokens": "optional", "httpPutResponseHopLimit": 1}},
    ),
    (
        imdsv2_hop_limit_1,
        LAUNCH_TEMPLATE,
        {"metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 1}},
        {},
    ),
]


@pytest.mark.parametrize(
    ("rule", "resource_type", "passing", "failing"),
    CASES,
    ids=[f"{c[0].__name__}-{c[1].rsplit(':', 1)[-1]}-{i}" for i, c in enumerate(CASES)],
)
def test_rule_passes_the_good_and_fails_the_bad(
    rule: Any, resource_type: str, passing: dict[str, Any], failing: dict[str, Any]
) -> None:
    assert rule(resource_type, passing) == []
    assert rule(resource_type, failing) != []
    # And through the pulumi_policy wrapper the CLI calls: what the rule finds is reported.
    (policy,) = [p for p in policies() if p.name == _rule_named(rule)]
    for props, expected in ((passing, []), (failing, rule(resource_type, failing))):
        reported: list[str] = []
        policy.validate(_resource_args(resource_type, props), _collect(reported))
        assert reported == expected


def test_open_endpoint_outside_prod_is_not_this_rules_business() -> None:
    dev = {**cluster(publicAccessCidrs=["0.0.0.0/0"]), "tags": {**TAGS, "environment": "dev"}}
    assert no_open_endpoint_in_prod(CLUSTER, dev) == []


def test_buckets_need_a_public_access_block_and_kms() -> None:
    bucket = ("aws:s3/bucket:Bucket", "logs", {"tags": TAGS})
    block = ("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "logs-block", {"bucket": "logs"})
    sse = (
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "logs-sse",
        {"bucket": "logs"},
    )
    assert s3_buckets_locked_down([bucket, block, sse]) == []
    assert len(s3_buckets_locked_down([bucket, block])) == 1
    assert len(s3_buckets_locked_down([bucket])) == 2


def _storage_class(name: str, default: bool, encrypted: str) -> tuple[str, str, dict[str, Any]]:
    annotations = {"storageclass.kubernetes.io/is-default-class": "true"} if default else {}
    return (
        STORAGE_CLASS,
        name,
        {"metadata": {"name": name, "annotations": annotations}, "parameters": {"encrypted": encrypted}},
    )


def test_a_default_storage_class_must_exist_and_encrypt() -> None:
    good = _storage_class("gp3-encrypted", True, "true")
    assert default_storage_class_encrypted([good, _storage_class("gp2", False, "false")]) == []
    assert default_storage_class_encrypted([_storage_class("gp2", False, "true")]) != []  # none default
    assert default_storage_class_encrypted([_storage_class("gp3", True, "false")]) != []  # not encrypted
    assert default_storage_class_encrypted([good, _storage_class("io2", True, "true")]) != []  # two


def _backup_bucket(**changes: Any) -> list[tuple[str, str, dict[str, Any]]]:
    bucket: dict[str, Any] = {
        "bucket": "b",
        "objectLockEnabled": True,
        "tags": {**TAGS, "its.ai/purpose": "backups"},
    }
    resources: dict[str, tuple[str, str, dict[str, Any]]] = {
        "bucket": ("aws:s3/bucket:Bucket", "backups", bucket),
        "versioning": (
            "aws:s3/bucketVersioning:BucketVersioning",
            "backups-versioning",
            {"bucket": "b", "versioningConfiguration": {"status": "Enabled"}},
        ),
        "lock": (
            "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration",
            "backups-lock",
            {"bucket": "b", "rule": {"defaultRetention": {"mode": "COMPLIANCE", "days": 35}}},
        ),
    }
    for key, value in changes.items():
        if value is None:
            del resources[key]
        else:
            rtype, name, props = resources[key]
            resources[key] = (rtype, name, {**props, **value})
    return list(resources.values())


def test_a_backup_bucket_needs_object_lock_a_retention_and_versioning() -> None:
    assert backup_buckets_locked(_backup_bucket()) == []
    assert backup_buckets_locked(_backup_bucket(bucket={"objectLockEnabled": False})) != []
    assert backup_buckets_locked(_backup_bucket(lock=None)) != []
    assert backup_buckets_locked(_backup_bucket(versioning=None)) != []
    assert (
        backup_buckets_locked(_backup_bucket(versioning={"versioningConfiguration": {"status": "Suspended"}}))
        != []
    )
    # A bucket not meant for backups is not this rule's business.
    other = _backup_bucket(bucket={"tags": TAGS, "objectLockEnabled": False}, lock=None, versioning=None)
    assert backup_buckets_locked(other) == []


@pytest.mark.parametrize("name", NEW_POLICIES)
def test_the_day_one_policies_are_in_the_pack_and_mandatory(name: str) -> None:
    assert PACK[name].enforcement_level == EnforcementLevel.MANDATORY


@pytest.mark.parametrize(
    ("check", "resources"),
    [
        (default_storage_class_encrypted, [_storage_class("gp3", True, "false")]),
        (backup_buckets_locked, _backup_bucket(lock=None)),
    ],
    ids=["default-storage-class-encrypted", "backup-buckets-locked"],
)
def test_the_day_one_stack_policies_report_through_the_pack(check: Any, resources: list[Any]) -> None:
    policy = PACK[next(r.name for r in STACK_RULES if r.check is check)]
    wrapped = [PolicyResource(t, p, f"urn:{n}", n, _options(), None, None, [], {}) for t, n, p in resources]
    reported: list[str] = []
    policy.validate(StackValidationArgs(wrapped), _collect(reported))
    assert reported == check(resources) and reported


PACK = {policy.name: policy for policy in policies()}


def test_the_pack_has_one_policy_per_rule() -> None:
    # PolicyPack() itself starts the analyzer server the CLI talks to, so the policies are checked.
    assert set(PACK) == {r.name for r in RESOURCE_RULES} | {r.name for r in STACK_RULES}


@pytest.mark.parametrize("name", sorted(PACK))
def test_every_policy_is_mandatory(name: str) -> None:
    """Mandatory stops `pulumi up`; advisory would only print."""
    assert PACK[name].enforcement_level == EnforcementLevel.MANDATORY


def _options() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def _resource_args(resource_type: str, props: dict[str, Any]) -> ResourceValidationArgs:
    return ResourceValidationArgs(resource_type, props, f"urn:{resource_type}", "probe", _options(), None)


def _collect(into: list[str]) -> Any:
    return lambda message, _urn: into.append(message)


def _rule_named(function: Any) -> str:
    (rule,) = [r for r in RESOURCE_RULES if r.check is function]
    return rule.name


def test_a_stack_policy_reports_through_the_pack() -> None:
    policy = PACK[next(r.name for r in STACK_RULES if r.check is s3_buckets_locked_down)]
    tags = {"tags": TAGS}
    bucket = PolicyResource("aws:s3/bucket:Bucket", tags, "urn:b", "logs", _options(), None, None, [], {})
    reported: list[str] = []
    policy.validate(StackValidationArgs([bucket]), _collect(reported))
    assert len(reported) == 2


@pytest.mark.parametrize("stack", STACKS)
def test_every_rule_passes_on_every_resource_of_the_stack(stack: str) -> None:
    run = stack_run(stack)
    assert run.error is None
    violations = [
        f"{rule.name}: {r.type} {r.name}: {message}"
        for r in run.custom()
        for rule in RESOURCE_RULES
        for message in rule.check(r.type, r.inputs)
    ]
    violations += [
        m for rule in STACK_RULES for m in rule.check((r.type, r.name, r.inputs) for r in run.custom())
    ]
    assert violations == []
    checked = {r.type for r in run.custom()}
    assert {
        CLUSTER,
        NODE_GROUP,
        "aws:kms/key:Key",
        LAUNCH_TEMPLATE,
        STORAGE_CLASS,
        "aws:s3/bucket:Bucket",
    } <= checked
