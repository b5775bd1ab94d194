"""MinIO: one server over four drives (an erasure set); buckets, versioning, lifecycle rules,
policies and service users from infrastructure/minio/, applied with the MinIO SDK."""

from __future__ import annotations

import json

from minio import Minio as MinioClient
from minio import MinioAdmin
from minio.commonconfig import ENABLED, Filter
from minio.credentials import StaticProvider
from minio.lifecycleconfig import Expiration, LifecycleConfig, NoncurrentVersionExpiration, Rule
from minio.objectlockconfig import DAYS, ObjectLockConfig
from minio.versioningconfig import VersioningConfig

from infra.facts.buckets import POLICIES_DIR, LifecycleRule, buckets
from infra.kernel.health import Health
from infra.kernel.layout import HOST
from infra.kernel.programs import Program
from infra.local.stacks.base import Stack, endpoints, http_ok

ROOT_USER = "its-root"
DRIVES = 4


def lifecycle(rules: list[LifecycleRule]) -> LifecycleConfig:
    return LifecycleConfig(
        [
            Rule(
                ENABLED,
                rule_filter=Filter(prefix=rule.prefix),
                rule_id=rule.id,
                expiration=Expiration(days=rule.expiration_days) if rule.expiration_days else None,
                noncurrent_version_expiration=(
                    NoncurrentVersionExpiration(noncurrent_days=rule.noncurrent_expiration_days)
                    if rule.noncurrent_expiration_days
                    else None
                ),
            )
            for rule in rules
        ]
    )


class Minio(Stack):
    name = "minio"
    start_timeout = 60
    generated_secrets = ("minio_root", *(user.secret_name for user in buckets().all_users()))

    @property
    def endpoint(self) -> str:
        return f"{HOST}:{self.ports.minio_api}"

    def render(self) -> None:
        for drive in range(1, DRIVES + 1):
            self.cfg.path("minio", f"drive{drive}").mkdir(parents=True, exist_ok=True)

    def programs(self) -> list[Program]:
        return [
            Program(
                "minio",
                self.name,
                [
                    str(self.cfg.tools.minio),
                    "server",
                    "--quiet",
                    "--address",
                    self.endpoint,
                    "--console-address",
                    f"{HOST}:{self.ports.minio_console}",
                    f"{self.cfg.path('minio')}/drive{{1...{DRIVES}}}",
                ],
                environment={
                    # Four drive directories on one disk form an erasure set only in CI/CD mode.
                    "MINIO_CI_CD": "1",
                    "MINIO_PROMETHEUS_AUTH_TYPE": "public",
                    "MINIO_BROWSER": "off",
                    "MINIO_ROOT_USER": ROOT_USER,
                    "MINIO_ROOT_PASSWORD": self.secrets["minio_root"],
                },
            )
        ]

    def health(self) -> Health:
        ok, detail = http_ok(f"http://{self.endpoint}/minio/health/cluster")
        return Health(ok, {"cluster": detail}, endpoints(self.ports.minio_api))

    def root_client(self) -> MinioClient:
        return MinioClient(self.endpoint, ROOT_USER, self.secrets["minio_root"], secure=False)

    def provision(self) -> str:
        spec = buckets()
        client = self.root_client()
        for bucket in spec.all():
            if not client.bucket_exists(bucket.name):
                client.make_bucket(bucket.name, object_lock=bucket.object_lock is not None)
            if bucket.object_lock:
                lock = bucket.object_lock
                client.set_object_lock_config(bucket.name, ObjectLockConfig(lock.mode, lock.days, DAYS))
            if bucket.versioning:
                client.set_bucket_versioning(bucket.name, VersioningConfig(ENABLED))
            client.set_bucket_lifecycle(bucket.name, lifecycle(bucket.lifecycle))
            # Buckets are private: no anonymous policy at all.
            client.delete_bucket_policy(bucket.name)
        admin = MinioAdmin(
            endpoint=self.endpoint,
            credentials=StaticProvider(ROOT_USER, self.secrets["minio_root"]),
            secure=False,
        )
        for policy_file in sorted(POLICIES_DIR.glob("*.json")):
            json.loads(policy_file.read_text())  # a malformed policy fails here, naming the file
            admin.policy_add(policy_file.stem, policy_file=str(policy_file))
        for user in spec.all_users():
            admin.user_add(user.name, self.secrets[user.secret_name])
            attached = json.loads(admin.user_info(user.name)).get("policyName", "")
            if user.policy not in attached.split(","):
                admin.attach_policy([user.policy], user=user.name)
        names = ", ".join(b.name for b in spec.all())
        return f"buckets {names}; users {', '.join(u.name for u in spec.all_users())}"
