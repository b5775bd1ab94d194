"""testinfra (local backend) against the running local platform: every service is listening
and configured as infrastructure/ declares it."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import hvac
import psycopg
import pytest
from confluent_kafka.admin import AdminClient, ConfigResource
from minio import Minio

from infra.facts.buckets import buckets
from infra.facts.paths import INFRASTRUCTURE
from infra.facts.redis import redis_settings
from infra.facts.topics import topics
from infra.facts.vault import vault_layout
from infra.local.stacks import Kafka, Redis
from infra.local.stacks import Minio as MinioStack
from tests.conftest import RunningPlatform

pytestmark = pytest.mark.platform


def test_every_service_listens_on_loopback_only(local_platform: RunningPlatform, host: Any) -> None:
    ports = local_platform.cfg.file.ports
    for name, offsets in ports.items():
        for offset in offsets if isinstance(offsets, list) else [offsets]:
            port = local_platform.cfg.port_base + offset
            if name in {"etcd_peer", "minio_console"}:
                continue  # peers and consoles answer only when used
            assert host.socket(f"tcp://127.0.0.1:{port}").is_listening, f"{name} not listening on {port}"
            assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening, f"{name} listens on every address"


def test_every_supervised_program_is_running(local_platform: RunningPlatform) -> None:
    states = {name: info["statename"] for name, info in local_platform.supervisor.info().items()}
    assert states and all(state == "RUNNING" for state in states.values()), states


def test_postgres_streams_to_a_synchronous_standby(local_platform: RunningPlatform) -> None:
    with psycopg.connect(local_platform.database_dsn) as conn:
        rows = conn.execute("SELECT state, sync_state FROM pg_stat_replication").fetchall()
        assert rows == [("streaming", "sync")]
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"cameras", "frames", "users", "roles", "alembic_version"} <= tables


def test_pgbouncer_serves_the_app_role(local_platform: RunningPlatform, host: Any) -> None:
    p = local_platform.cfg.ports
    password = local_platform.platform.secrets["postgres_app"]
    psql = f"psql -h 127.0.0.1 -p {p.pgbouncer} -U its_app -d its -tAc 'select current_user'"
    cmd = host.run(f"PGPASSWORD='{password}' {psql}")
    assert cmd.rc == 0, cmd.stderr
    assert cmd.stdout.strip() == "its_app"


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


def test_app_identity_of_minio_is_scoped_by_its_policy(local_platform: RunningPlatform) -> None:
    secrets = local_platform.platform.secrets
    user, b = buckets().users.app, buckets().buckets
    app = Minio(
        f"127.0.0.1:{local_platform.cfg.ports.minio_api}", user.name, secrets[user.secret_name], secure=False
    )
    assert app.bucket_exists(b.frames.name)
    with pytest.raises(Exception, match="Access Denied"):
        app.list_objects(b.backups.name).__next__()


def test_vault_is_unsealed_and_delivers_the_app_secrets_by_approle(local_platform: RunningPlatform) -> None:
    env = local_platform.app_env("its-worker")
    vault = hvac.Client(url=env["ITS_VAULT_ADDR"], timeout=5)
    assert vault.sys.is_initialized() and not vault.sys.is_sealed()
    secret_id = open(env["ITS_VAULT_SECRET_ID_FILE"]).read()  # noqa: PTH123,SIM115
    vault.auth.approle.login(role_id=env["ITS_VAULT_ROLE_ID"], secret_id=secret_id)
    data = vault.secrets.kv.v2.read_secret_version(
        path="its/shared/postgres", mount_point="secret", raise_on_deleted_version=True
    )
    assert data["data"]["data"]["username"] == "its_app"
    assert sorted(local_platform.platform.secrets["vault_policies_checked"]) == sorted(
        role_policy for role in vault_layout().approles for role_policy in role.policies
    )


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
