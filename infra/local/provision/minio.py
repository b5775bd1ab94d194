"""MinIO: buckets, versioning and lifecycle rules, policies and service users from
infrastructure/minio/, applied with the MinIO SDK (idempotent)."""

from __future__ import annotations

import json
from typing import Any

import yaml
from minio import Minio, MinioAdmin
from minio.commonconfig import ENABLED, Filter
from minio.credentials import StaticProvider
from minio.lifecycleconfig import Expiration, LifecycleConfig, NoncurrentVersionExpiration, Rule
from minio.versioningconfig import VersioningConfig

from infra.local.config import HOST, SHARED, LocalPlatformConfig
from infra.local.secrets import PlatformSecrets

ROOT_USER = "its-root"


def bucket_specs() -> dict[str, Any]:
    return dict(yaml.safe_load(SHARED["buckets"].read_text()))


def lifecycle(rules: list[dict[str, Any]]) -> LifecycleConfig:
    return LifecycleConfig(
        [
            Rule(
                ENABLED,
                rule_filter=Filter(prefix=rule.get("prefix", "")),
                rule_id=rule["id"],
                expiration=Expiration(days=rule["expiration_days"]) if "expiration_days" in rule else None,
                noncurrent_version_expiration=(
                    NoncurrentVersionExpiration(noncurrent_days=rule["noncurrent_expiration_days"])
                    if "noncurrent_expiration_days" in rule
                    else None
                ),
            )
            for rule in rules
        ]
    )


def root_client(cfg: LocalPlatformConfig, secrets: PlatformSecrets) -> Minio:
    return Minio(f"{HOST}:{cfg.ports.minio_api}", ROOT_USER, secrets["minio_root"], secure=False)


def provision(cfg: LocalPlatformConfig, secrets: PlatformSecrets) -> str:
    spec = bucket_specs()
    client = root_client(cfg, secrets)
    for bucket in spec["buckets"]:
        name = bucket["name"]
        if not client.bucket_exists(name):
            client.make_bucket(name)
        if bucket.get("versioning"):
            client.set_bucket_versioning(name, VersioningConfig(ENABLED))
        client.set_bucket_lifecycle(name, lifecycle(bucket.get("lifecycle", [])))
        # Buckets are private: no anonymous policy at all.
        client.delete_bucket_policy(name)
    admin = MinioAdmin(
        endpoint=f"{HOST}:{cfg.ports.minio_api}",
        credentials=StaticProvider(ROOT_USER, secrets["minio_root"]),
        secure=False,
    )
    for policy_file in sorted(SHARED["minio_policies"].glob("*.json")):
        json.loads(policy_file.read_text())  # a malformed policy fails here, naming the file
        admin.policy_add(policy_file.stem, policy_file=str(policy_file))
    for user in spec["users"]:
        secret_name = "minio_" + user["name"].replace("-", "_")
        admin.user_add(user["name"], secrets[secret_name])
        attached = json.loads(admin.user_info(user["name"])).get("policyName", "")
        if user["policy"] not in attached.split(","):
            admin.attach_policy([user["policy"]], user=user["name"])
    buckets = ", ".join(b["name"] for b in spec["buckets"])
    return f"buckets {buckets}; users {', '.join(u['name'] for u in spec['users'])}"
