"""Backups that leave the cluster: the environment's S3 bucket (versioned, object-locked, KMS,
expiring, never public, TLS only), the database's IRSA role scoped to it, and the way its name,
region and role reach the its-databases chart (the root Application's `platform` values)."""

from __future__ import annotations

import json

from infra.facts.recovery import recovery
from infra.facts.stack_config import load_stack_file
from infra.pulumi.backups import CURRENT_VERSION_MARGIN_DAYS, backup_bucket_name
from infra.pulumi.gitops_root import bootstrap_source
from infra.pulumi.project_charts import project_chart_values
from tests.pulumi.mock_program import ACCOUNT_ID
from tests.pulumi.stacks import Resource, StackRun

S3 = "aws:s3/"


def _of_bucket(run: StackRun, kind: str, bucket: str) -> Resource:
    (found,) = [r for r in run.of_type(f"{S3}{kind}") if r.inputs["bucket"] == bucket]
    return found


def test_one_backup_bucket_per_environment_versioned_and_object_locked(run: StackRun) -> None:
    cfg = load_stack_file(run.stack)
    backups = [
        b for b in run.of_type(f"{S3}bucket:Bucket") if b.inputs["tags"].get("its.ai/purpose") == "backups"
    ]
    bucket = run.named(f"{S3}bucket:Bucket", "postgres-backups-bucket")
    assert backups == [bucket]  # one per environment: OpenBao's snapshots have a bucket of their own
    name = backup_bucket_name(cfg.cluster_name, ACCOUNT_ID)
    assert bucket.inputs["bucket"] == name == f"its-camera-ai-{run.stack}-postgres-backups-{ACCOUNT_ID}"
    assert bucket.inputs["objectLockEnabled"] is True
    assert bucket.inputs.get("forceDestroy") is not True
    versioning = _of_bucket(run, "bucketVersioning:BucketVersioning", name)
    assert versioning.inputs["versioningConfiguration"] == {"status": "Enabled"}
    lock = _of_bucket(run, "bucketObjectLockConfiguration:BucketObjectLockConfiguration", name)
    assert lock.inputs["rule"]["defaultRetention"] == {
        "mode": cfg.postgres_backups.object_lock_mode,
        "days": recovery().object_lock_days,
    }
    assert cfg.postgres_backups.object_lock_mode == ("COMPLIANCE" if run.stack == "prod" else "GOVERNANCE")
    assert versioning.name in lock.options.depends_on


def test_the_bucket_is_kms_encrypted_private_and_tls_only(run: StackRun) -> None:
    bucket = run.named(f"{S3}bucket:Bucket", "postgres-backups-bucket")
    name = bucket.inputs["bucket"]
    key = run.named("aws:kms/key:Key", "postgres-backups-key")
    assert key.inputs["enableKeyRotation"] is True
    (rule,) = _of_bucket(
        run, "bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", name
    ).inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {
        "sseAlgorithm": "aws:kms",
        "kmsMasterKeyId": f"arn:aws:mock:eu-west-1:{ACCOUNT_ID}:{key.name}",
    }
    block = _of_bucket(run, "bucketPublicAccessBlock:BucketPublicAccessBlock", name).inputs
    assert all(
        block[f] is True
        for f in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    )
    ownership = _of_bucket(run, "bucketOwnershipControls:BucketOwnershipControls", name).inputs
    assert ownership["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    (statement,) = json.loads(_of_bucket(run, "bucketPolicy:BucketPolicy", name).inputs["policy"])[
        "Statement"
    ]
    assert statement["Effect"] == "Deny" and statement["Principal"] == "*" and statement["Action"] == "s3:*"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert len(statement["Resource"]) == 2 and statement["Resource"][1].endswith("/*")


def test_the_lifecycle_expires_what_the_recovery_window_retired(run: StackRun) -> None:
    bucket = run.named(f"{S3}bucket:Bucket", "postgres-backups-bucket")
    (rule,) = _of_bucket(
        run, "bucketLifecycleConfiguration:BucketLifecycleConfiguration", bucket.inputs["bucket"]
    ).inputs["rules"]
    facts = recovery()
    assert rule["status"] == "Enabled"
    assert rule["expiration"]["days"] == facts.retention_days + CURRENT_VERSION_MARGIN_DAYS
    # Never before the window: a backup inside it is never expired by S3.
    assert rule["expiration"]["days"] > facts.retention_days
    assert rule["noncurrentVersionExpiration"]["noncurrentDays"] > facts.object_lock_days
    assert rule["abortIncompleteMultipartUpload"]["daysAfterInitiation"] >= 1


def test_the_backup_role_is_the_database_s_and_reaches_only_its_bucket(run: StackRun) -> None:
    cluster = project_chart_values("its-databases", run.stack)["cluster"]["name"]
    role = run.named("aws:iam/role:Role", "postgres-backups-backup-tool")
    (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert f"system:serviceaccount:data:{cluster}" in trust["Condition"]["StringEquals"].values()
    policy = run.named("aws:iam/policy:Policy", "postgres-backups-backup-tool")
    statements = {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
    bucket = run.named("aws:s3/bucket:Bucket", "postgres-backups-bucket").inputs["bucket"]
    bucket_arn = f"arn:aws:s3:::{bucket}"
    assert statements["ListTheBucket"]["Resource"] == [bucket_arn]
    assert statements["BackupObjects"]["Resource"] == [f"{bucket_arn}/*"]
    assert statements["BucketKey"]["Resource"] == [
        f"arn:aws:mock:eu-west-1:{ACCOUNT_ID}:postgres-backups-key"
    ]
    actions = {a for s in statements.values() for a in s["Action"]}
    # No way around the lock, no bucket settings, nothing but this bucket and its key.
    assert not {a for a in actions if "Bypass" in a or ("Put" in a and a != "s3:PutObject")}
    assert all(a.startswith(("s3:", "kms:")) and "*" not in a for a in actions)


def test_the_root_application_hands_the_bucket_region_and_role_to_the_charts(run: StackRun) -> None:
    """The one mechanism: the program's outputs as `platform` in the root Application's values."""
    cfg = load_stack_file(run.stack)
    (root,) = [
        r
        for r in run.of_type("kubernetes:argoproj.io/v1alpha1:Application")
        if r.inputs["metadata"]["name"] == "its-bootstrap"
    ]
    platform = bootstrap_source(root.inputs)["helm"]["valuesObject"]["platform"]
    assert platform == {
        "postgresBackup": {
            "bucket": backup_bucket_name(cfg.cluster_name, ACCOUNT_ID),
            "region": cfg.region,
            "roleArn": f"arn:aws:iam::{ACCOUNT_ID}:role/postgres-backups-backup-tool",
        }
    }
    assert run.exports["postgresBackupBucket"] == platform["postgresBackup"]["bucket"]


def test_the_backup_operator_plugin_and_cert_manager_come_before_the_charts(run: StackRun) -> None:
    releases = {r.inputs["name"]: r for r in run.of_type("kubernetes:helm.sh/v3:Release")}
    plugin = releases["plugin-barman-cloud"]
    assert {"cert-manager", "cloudnative-pg"} <= set(plugin.options.depends_on)
    assert plugin.inputs["namespace"] == releases["cloudnative-pg"].inputs["namespace"]
    root = run.one("kubernetes:argoproj.io/v1alpha1:Application")
    assert {"plugin-barman-cloud", "cert-manager"} <= set(root.options.depends_on)


def test_every_bucket_of_the_platform_carries_the_same_controls(run: StackRun) -> None:
    """Backups and OpenBao's snapshots alike (infra/pulumi/aws_common.private_bucket_controls):
    versioned, encrypted with a key of the program's, never public, owner-enforced, TLS only."""
    buckets = [b.inputs["bucket"] for b in run.of_type(f"{S3}bucket:Bucket")]
    assert len(buckets) >= 2
    for bucket in buckets:
        versioning = _of_bucket(run, "bucketVersioning:BucketVersioning", bucket)
        assert versioning.inputs["versioningConfiguration"] == {"status": "Enabled"}, bucket
        (rule,) = _of_bucket(
            run, "bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", bucket
        ).inputs["rules"]
        default = rule["applyServerSideEncryptionByDefault"]
        assert default["sseAlgorithm"] == "aws:kms" and default["kmsMasterKeyId"], bucket
        block = _of_bucket(run, "bucketPublicAccessBlock:BucketPublicAccessBlock", bucket).inputs
        assert all(
            block[k] is True
            for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
        ), bucket
        ownership = _of_bucket(run, "bucketOwnershipControls:BucketOwnershipControls", bucket).inputs
        assert ownership["rule"] == {"objectOwnership": "BucketOwnerEnforced"}, bucket
        (deny,) = json.loads(_of_bucket(run, "bucketPolicy:BucketPolicy", bucket).inputs["policy"])[
            "Statement"
        ]
        assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}, (
            bucket
        )
