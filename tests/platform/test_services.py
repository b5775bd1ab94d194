"""testinfra (local backend) against the running local platform: every service is listening
and configured as infrastructure/ declares it."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import hvac
import psycopg
import pytest
from confluent_kafka.admin import AdminClient, ConfigResource
from minio import Minio
from minio.error import S3Error

from app.common.settings import Settings
from infra.facts.buckets import ServiceUser, buckets
from infra.facts.database import database_roles
from infra.facts.paths import INFRASTRUCTURE
from infra.facts.redis import redis_settings
from infra.facts.topics import topics
from infra.facts.vault import POLICIES_DIR, vault_layout
from infra.local.stacks import Kafka, Postgres, Redis
from infra.local.stacks import Minio as MinioStack
from infra.local.stacks.postgres import password_secret
from tests.conftest import RunningPlatform

pytestmark = pytest.mark.platform


def test_every_service_listens_on_loopback_only(local_platform: RunningPlatform, host: Any) -> None:
    ports = local_platform.cfg.file.ports
    for name, offsets in ports.items():
        for offset in offsets if isinstance(offsets, list) else [offsets]:
            port = local_platform.cfg.port_base + offset
            if name in {"etcd_peer", "minio_console", "ingest_handover_metrics"}:
                # Peers and consoles answer only when used; the second ingest replica runs only
                # during the handover test (tests/ingest).
                continue
            assert host.socket(f"tcp://127.0.0.1:{port}").is_listening, f"{name} not listening on {port}"
            assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening, f"{name} listens on every address"


def test_every_supervised_program_is_running(local_platform: RunningPlatform) -> None:
    states = {name: info["statename"] for name, info in local_platform.supervisor.info().items()}
    assert states and all(state == "RUNNING" for state in states.values()), states


def test_the_worker_runs_only_on_cpu_time_nobody_else_wants(local_platform: RunningPlatform) -> None:
    """Locally the worker shares two cores with the API and the stores: SCHED_IDLE, every thread
    of it (torch's included), so a request never waits behind an inference."""
    pid = local_platform.supervisor.pid("worker")
    threads = [int(task.name) for task in Path(f"/proc/{pid}/task").iterdir()]
    assert len(threads) > 1
    assert {os.sched_getscheduler(thread) for thread in threads} == {os.SCHED_IDLE}
    assert os.sched_getscheduler(local_platform.supervisor.pid("api")) == os.SCHED_OTHER


def test_postgres_streams_to_a_synchronous_standby(local_platform: RunningPlatform) -> None:
    with psycopg.connect(local_platform.database_dsn) as conn:
        rows = conn.execute("SELECT state, sync_state FROM pg_stat_replication").fetchall()
        assert rows == [("streaming", "sync")]
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"cameras", "frames", "users", "roles", "alembic_version"} <= tables


def test_each_database_identity_has_only_its_privileges(local_platform: RunningPlatform) -> None:
    """roles.yaml enforced by the server: the API cannot drop or change what it only reads, the
    worker cannot register cameras or delete frames, neither can run the partition keeper's DDL
    directly; the owner, through the migrations, holds the schema."""
    postgres = local_platform.platform.stack(Postgres)
    roles = database_roles()
    refused = {
        roles.api: ["DROP TABLE detections", "DELETE FROM frames", "DELETE FROM cameras",
                    "INSERT INTO detections (ts, camera_id, frame_id, class, confidence, x1, y1, x2, y2)"
                    " VALUES (now(), 'c', gen_random_uuid(), 'car', 0.5, 0, 0, 1, 1)",
                    "SELECT its_maintain()", "CREATE TABLE intruder (id int)"],
        roles.worker: ["DROP TABLE frames", "INSERT INTO cameras (id, name) VALUES ('zz-cam', 'x')",
                       "DELETE FROM frames", "SELECT * FROM vehicle_counts_1m", "TRUNCATE detections"],
    }  # fmt: skip
    for role, statements in refused.items():
        with psycopg.connect(postgres.role_dsn(role, through_bouncer=False), autocommit=True) as conn:
            for statement in statements:
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)
    with psycopg.connect(postgres.role_dsn(roles.worker, through_bouncer=False), autocommit=True) as conn:
        conn.execute("SELECT its_maintain()")  # granted: it runs as the owner
        assert conn.execute("SELECT count(*) FROM cameras").fetchone() is not None
    with psycopg.connect(local_platform.database_dsn) as conn:
        owners = conn.execute(
            "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    assert owners == [(roles.owner,)]


def test_pgbouncer_serves_the_app_role(local_platform: RunningPlatform, host: Any) -> None:
    p = local_platform.cfg.ports
    role = database_roles().api
    password = local_platform.platform.secrets[password_secret(role)]
    psql = f"psql -h 127.0.0.1 -p {p.pgbouncer} -U {role} -d its -tAc 'select current_user'"
    cmd = host.run(f"PGPASSWORD='{password}' {psql}")
    assert cmd.rc == 0, cmd.stderr
    assert cmd.stdout.strip() == role


def redis_cli(local_platform: RunningPlatform, port: int) -> str:
    """redis-cli logged in as the platform's admin (the password in the environment, where
    redis-cli reads it, not on the command line)."""
    password = local_platform.platform.stack(Redis).password("admin")
    return f"REDISCLI_AUTH='{password}' redis-cli --user admin -p {port}"


def test_sentinels_see_the_master_two_replicas_and_quorum(local_platform: RunningPlatform, host: Any) -> None:
    declared = redis_settings()
    name = declared.master_name
    for port in local_platform.cfg.ports.many("sentinel"):
        cli = redis_cli(local_platform, port)
        replicas = host.run(f"{cli} --json sentinel replicas {name}")
        assert len(json.loads(replicas.stdout)) == declared.replicas
        quorum = host.run(f"{cli} sentinel ckquorum {name}")
        assert quorum.stdout.startswith("OK 3 usable Sentinels"), quorum.stdout
        master = json.loads(host.run(f"{cli} --json sentinel master {name}").stdout)
        assert int(master["quorum"]) == declared.sentinel.quorum
        assert int(master["down-after-milliseconds"]) == declared.sentinel.config["down-after-milliseconds"]


def test_redis_runs_with_the_declared_memory_settings(local_platform: RunningPlatform, host: Any) -> None:
    declared = redis_settings().config
    for port in local_platform.cfg.ports.many("redis"):
        cli = redis_cli(local_platform, port)
        policy = host.run(f"{cli} config get maxmemory-policy").stdout.split()
        assert policy == ["maxmemory-policy", declared["maxmemory-policy"]]
        maxmemory = int(host.run(f"{cli} config get maxmemory").stdout.split()[1])
        assert maxmemory == int(str(declared["maxmemory"]).removesuffix("mb")) * 1024 * 1024


def test_kafka_has_three_brokers_and_the_declared_topics(local_platform: RunningPlatform) -> None:
    admin: AdminClient = local_platform.platform.stack(Kafka).admin()
    metadata = admin.list_topics(timeout=10)
    assert len(metadata.brokers) == 3
    declared = topics()
    for spec in declared.all():
        topic = metadata.topics[spec.name]
        assert len(topic.partitions) == spec.partitions
        assert all(len(p.replicas) == declared.replication_factor(spec) for p in topic.partitions.values())
        resource = ConfigResource(ConfigResource.Type.TOPIC, spec.name)
        config = admin.describe_configs([resource])[resource].result()
        for key, value in declared.config(spec).items():
            assert config[key].value == value, f"{spec.name}: {key}"


def test_minio_has_the_buckets_lifecycle_and_four_drives(local_platform: RunningPlatform) -> None:
    client = local_platform.platform.stack(MinioStack).root_client()
    for bucket in buckets().all():
        assert client.bucket_exists(bucket.name)
        lifecycle = client.get_bucket_lifecycle(bucket.name)
        assert lifecycle is not None, f"{bucket.name}: no lifecycle"
        rules = {rule.rule_id for rule in lifecycle.rules}
        assert rules == {rule.id for rule in bucket.lifecycle}
        assert (client.get_bucket_versioning(bucket.name).status == "Enabled") == bucket.versioning
    health = httpx.get(
        f"http://127.0.0.1:{local_platform.cfg.ports.minio_api}/minio/health/cluster", timeout=5
    )
    assert health.status_code == 200
    assert health.headers["x-minio-write-quorum"] == "3"  # an erasure set of 4 drives


def _as(local_platform: RunningPlatform, user: ServiceUser) -> Minio:
    secret = local_platform.platform.secrets[user.secret_name]
    # The region is given, as the app does: a policy need not grant the bucket-location lookup.
    region = Settings.model_fields["minio_region"].default
    endpoint = f"127.0.0.1:{local_platform.cfg.ports.minio_api}"
    return Minio(endpoint, user.name, secret, secure=False, region=region)


def test_each_identity_of_minio_is_scoped_by_its_policy(local_platform: RunningPlatform) -> None:
    users, b = buckets().users, buckets().buckets
    api, worker = _as(local_platform, users.api), _as(local_platform, users.worker)
    ingest = _as(local_platform, users.ingest)
    body = b"frame"
    api.put_object(b.frames.name, "frames/scope-test/a.jpg", BytesIO(body), len(body))
    ingest.put_object(b.frames.name, "frames/scope-test/streamed.jpg", BytesIO(body), len(body))
    assert worker.get_object(b.frames.name, "frames/scope-test/a.jpg").read() == body
    assert worker.get_object(b.frames.name, "frames/scope-test/streamed.jpg").read() == body
    denied: list[Callable[[], object]] = [
        lambda: ingest.get_object(b.frames.name, "frames/scope-test/a.jpg"),  # writes, never reads
        lambda: ingest.put_object(b.models.name, "models/x.pt", BytesIO(body), len(body)),
        lambda: ingest.put_object(b.frames.name, "elsewhere/c.jpg", BytesIO(body), len(body)),
        lambda: api.get_object(b.frames.name, "frames/scope-test/a.jpg"),  # the API never reads frames
        lambda: worker.put_object(b.frames.name, "frames/scope-test/b.jpg", BytesIO(body), len(body)),
        lambda: api.put_object(b.frames.name, "elsewhere/c.jpg", BytesIO(body), len(body)),
        lambda: api.put_object(b.models.name, "models/x.pt", BytesIO(body), len(body)),
        lambda: next(iter(worker.list_objects(b.backups.name))),
    ]
    for attempt in denied:
        with pytest.raises(S3Error, match="Access Denied"):
            attempt()


def test_backups_are_object_locked_against_their_own_writer(local_platform: RunningPlatform) -> None:
    """A version in the backups bucket cannot be deleted before its retention ends, not even by
    the identity that wrote it."""
    lock = buckets().buckets.backups.object_lock
    assert lock is not None
    backup = _as(local_platform, buckets().users.backup)
    name = buckets().buckets.backups.name
    written = backup.put_object(name, "postgres/lock-test/object", BytesIO(b"base"), 4)
    config = local_platform.platform.stack(MinioStack).root_client().get_object_lock_config(name)
    assert (config.mode, config.duration, config.duration_unit) == (lock.mode, lock.days, "Days")
    with pytest.raises(S3Error, match=r"WORM|retention|locked|Access Denied"):
        backup.remove_object(name, "postgres/lock-test/object", version_id=written.version_id)
    assert backup.stat_object(name, "postgres/lock-test/object", version_id=written.version_id).size == 4


def test_vault_is_unsealed_and_delivers_the_app_secrets_by_approle(local_platform: RunningPlatform) -> None:
    env = local_platform.app_env("its-worker")
    vault = hvac.Client(url=env["ITS_VAULT_ADDR"], timeout=5)
    assert vault.sys.is_initialized() and not vault.sys.is_sealed()
    secret_id = open(env["ITS_VAULT_SECRET_ID_FILE"]).read()  # noqa: PTH123,SIM115
    vault.auth.approle.login(role_id=env["ITS_VAULT_ROLE_ID"], secret_id=secret_id)
    data = vault.secrets.kv.v2.read_secret_version(
        path="its/worker/postgres", mount_point=vault_layout().kv_mount, raise_on_deleted_version=True
    )
    assert data["data"]["data"]["username"] == database_roles().worker
    # Every policy file was parsed before provisioning (the cluster-only ones too, such as the
    # OpenBao snapshot job's), and every AppRole's policy is one of them.
    checked = set(local_platform.platform.secrets["vault_policies_checked"])
    assert checked == {path.stem for path in POLICIES_DIR.glob("*.hcl")}
    assert {policy for role in vault_layout().approles for policy in role.policies} <= checked


def test_every_prometheus_target_is_up_and_the_rules_are_loaded(local_platform: RunningPlatform) -> None:
    url = f"http://127.0.0.1:{local_platform.cfg.ports.prometheus}"
    deadline = time.monotonic() + 60
    down: list[str] = ["not scraped yet"]
    while down and time.monotonic() < deadline:
        targets = httpx.get(f"{url}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
        down = [
            f"{t['labels']['job']} {t['labels']['instance']}: {t['lastError']}"
            for t in targets
            if t["health"] != "up"
        ]
        time.sleep(2)
    assert not down, down
    groups = httpx.get(f"{url}/api/v1/rules", timeout=5).json()["data"]["groups"]
    loaded = {g["file"].rsplit("/", 1)[-1] for g in groups}
    assert loaded == {p.name for p in (INFRASTRUCTURE / "prometheus" / "rules").glob("*.yaml")}


def test_up_twice_is_harmless(local_platform: RunningPlatform) -> None:
    before = {name: info["pid"] for name, info in local_platform.supervisor.info().items()}
    secrets_before = dict(local_platform.platform.secrets.values)
    local_platform.platform.up(smoke=False)
    after = {name: info["pid"] for name, info in local_platform.supervisor.info().items()}
    assert after == before, "a second `up` restarted programs"
    assert local_platform.platform.secrets.values == secrets_before
    report = local_platform.platform.status()
    assert all(service["healthy"] for service in report.values()), report
