"""The drills. Each takes the running platform, breaks one thing under load, measures, and
puts the platform back (restarts what it stopped, waits until the stack is healthy)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import tempfile
import time
import uuid
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis
from confluent_kafka import Consumer, Producer, TopicPartition
from redis.sentinel import Sentinel

from infra.facts.buckets import buckets
from infra.facts.database import database_roles
from infra.facts.redis import redis_settings
from infra.kernel.health import wait_until
from infra.kernel.layout import HOST
from infra.local import backup
from infra.local.platform import Platform
from infra.local.stacks import App, Kafka, Postgres, Redis, Vault
from infra.local.stacks import Minio as MinioStack
from loadtests.failover.load import DrillResult, WriteLoad

RECOVERY_TIMEOUT = 120
MASTER = redis_settings().master_name
LOGS_BUCKET = buckets().buckets.logs.name


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _quiet(_: str) -> None:
    return None


def _fault_under_load(load: WriteLoad, fault: Callable[[], None], acks_after: int = 20) -> float:
    """Let the load settle, inject the fault, return seconds until writes succeed again."""
    load.wait_for_acks(20)
    fault_at = time.monotonic()
    fault()
    recovery = load.recovery_after(fault_at, RECOVERY_TIMEOUT)
    load.wait_for_acks(acks_after)
    return recovery


def _kill_program(platform: Platform, name: str) -> Callable[[], None]:
    """SIGKILL a supervised program and keep it down (supervisord would restart it)."""

    def fault() -> None:
        platform.supervisor.signal(name, "KILL")
        platform.supervisor.stop(name)

    return fault


def redis_master_kill(platform: Platform) -> DrillResult:
    """Kill the Redis master; Sentinel promotes a replica; a client that discovers the master
    through Sentinel follows. A write counts as acknowledged once one replica has it (WAIT)."""
    cfg = platform.cfg
    # The platform's admin identity: the default user is off on every server and Sentinel.
    login = platform.stack(Redis).connection_kwargs()
    sentinel = Sentinel([(HOST, port) for port in cfg.ports.many("sentinel")], socket_timeout=1, **login)  # type: ignore[no-untyped-call]
    # redis-py's Sentinel API is untyped.
    client = sentinel.master_for(MASTER, socket_timeout=1, retry_on_timeout=False)  # type: ignore[no-untyped-call]
    run = uuid.uuid4().hex[:8]

    def write(number: int) -> None:
        client.set(f"drill:{run}:{number}", number, ex=3600)
        if int(client.execute_command("WAIT", 1, 1000)) < 1:
            raise redis.ReadOnlyError("not replicated")

    _, port = sentinel.discover_master(MASTER)  # type: ignore[no-untyped-call]
    victim = f"redis{cfg.ports.many('redis').index(int(port))}"
    with WriteLoad(write) as load:
        recovery = _fault_under_load(load, _kill_program(platform, victim))
    new_master = sentinel.discover_master(MASTER)  # type: ignore[no-untyped-call]
    platform.supervisor.start(victim)  # comes back as a replica of the new master
    wait_until("redis", platform.stack(Redis).health, 60, log=_quiet)
    reader = sentinel.master_for(MASTER, socket_timeout=2)  # type: ignore[no-untyped-call]
    values = reader.mget([f"drill:{run}:{n}" for n in load.acknowledged])
    lost = sum(value is None for value in values)
    return DrillResult(
        "redis-master-kill",
        recovery,
        len(load.acknowledged),
        lost,
        len(load.failures),
        {"killed": victim, "new_master": f"{new_master[0]}:{new_master[1]}"},
    )


def _postmaster_pid(platform: Platform, member: str) -> int:
    pid_file = platform.cfg.path("postgres", member, "data", "postmaster.pid")
    return int(pid_file.read_text().split()[0])


def postgres_primary_kill(platform: Platform) -> DrillResult:
    """Kill the primary's Patroni and PostgreSQL (a lost node); Patroni promotes the
    synchronous standby once the leader key expires; every committed row is on it."""
    with psycopg.connect(platform.stack(Postgres).superuser_dsn("its"), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS drill_writes (run text, n integer, PRIMARY KEY (run, n))")
        conn.execute(f"GRANT SELECT, INSERT ON drill_writes TO {database_roles().worker}")
    run = uuid.uuid4().hex[:8]
    # The worker's identity through PgBouncer: the path the app's writes take.
    app_dsn = platform.stack(Postgres).role_dsn(database_roles().worker)
    connection: list[psycopg.Connection[tuple[object, ...]]] = []

    def write(number: int) -> None:
        if not connection or connection[0].closed:
            connection[:] = [psycopg.connect(app_dsn, autocommit=True, connect_timeout=3)]
        try:
            connection[0].execute("INSERT INTO drill_writes VALUES (%s, %s)", (run, number))
        except psycopg.Error:
            connection[0].close()
            raise

    primary = platform.stack(Postgres).health().detail["primary"]
    assert isinstance(primary, str), "no primary before the drill"
    index = int(primary.removeprefix("pg"))
    victim = f"patroni{index}"
    postmaster = _postmaster_pid(platform, primary)

    def lose_the_node() -> None:
        os.kill(postmaster, signal.SIGKILL)
        _kill_program(platform, victim)()

    with WriteLoad(write, interval=0.05) as load:
        recovery = _fault_under_load(load, lose_the_node)
    platform.supervisor.start(victim)  # rejoins as a replica (pg_rewind)
    health = wait_until("postgres", platform.stack(Postgres).health, 120, log=_quiet)
    with psycopg.connect(platform.stack(Postgres).superuser_dsn("its")) as conn:
        stored = {row[0] for row in conn.execute("SELECT n FROM drill_writes WHERE run = %s", (run,))}
    lost = len(set(load.acknowledged) - stored)
    return DrillResult(
        "postgres-primary-kill",
        recovery,
        len(load.acknowledged),
        lost,
        len(load.failures),
        {"killed": primary, "new_primary": health.detail["primary"]},
    )


def kafka_broker_kill(platform: Platform) -> DrillResult:
    """Kill one broker of three; an idempotent producer with acks=all goes on (RF 3,
    min.insync 2); every acknowledged message is read back."""
    # The platform's admin identity: every listener authenticates.
    login = platform.stack(Kafka).client_config()
    producer = Producer({**login, "acks": "all", "enable.idempotence": True, "linger.ms": 0})
    run = uuid.uuid4().hex[:8]
    topic = "alerts"

    def write(number: int) -> None:
        errors: list[object] = []
        producer.produce(topic, key=run, value=str(number), on_delivery=lambda err, _msg: errors.append(err))
        producer.flush(10)
        if not errors or errors[0] is not None:
            raise RuntimeError(f"not acknowledged: {errors}")

    victim = "kafka1"
    with WriteLoad(write) as load:
        recovery = _fault_under_load(load, _kill_program(platform, victim), acks_after=50)
    platform.supervisor.start(victim)
    wait_until("kafka", platform.stack(Kafka).health, 120, log=_quiet)
    seen = _read_run(login, topic, run)
    lost = len(set(load.acknowledged) - seen)
    return DrillResult(
        "kafka-broker-kill", recovery, len(load.acknowledged), lost, len(load.failures), {"killed": victim}
    )


def _read_run(login: dict[str, Any], topic: str, run: str) -> set[int]:
    consumer = Consumer({**login, "group.id": f"drill-{run}", "enable.auto.commit": False})
    metadata = consumer.list_topics(topic, timeout=10)
    partitions = [TopicPartition(topic, p, 0) for p in metadata.topics[topic].partitions]
    ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in partitions}
    consumer.assign(partitions)
    seen: set[int] = set()
    done: set[int] = {p for p, end in ends.items() if end == 0}
    deadline = time.monotonic() + 60
    while len(done) < len(partitions) and time.monotonic() < deadline:
        message = consumer.poll(1)
        if message is None or message.error():
            continue
        partition, offset = int(message.partition() or 0), int(message.offset() or 0)
        if message.key() == run.encode():
            seen.add(int(message.value() or b"-1"))
        if offset + 1 >= ends[partition]:
            done.add(partition)
    consumer.close()
    return seen


def minio_drive_loss(platform: Platform) -> DrillResult:
    """Take one of the four drives away; erasure coding keeps reads and writes going; put an
    empty drive back and MinIO heals it."""
    cfg = platform.cfg
    client = platform.stack(MinioStack).root_client()
    run = uuid.uuid4().hex[:8]

    def write(number: int) -> None:
        body = f"{run}:{number}".encode()
        client.put_object(LOGS_BUCKET, f"drill/{run}/{number}", BytesIO(body), len(body))

    drive = cfg.path("minio", "drive2")
    parked = cfg.path("minio", "drive2.removed")
    with WriteLoad(write, interval=0.05) as load:
        recovery = _fault_under_load(load, lambda: _park(drive, parked), acks_after=40)
    offline = _drives_offline(platform)
    # An empty replacement drive (MinIO may already have recreated the directory itself).
    drive.mkdir(exist_ok=True)
    healed = _wait_drive_healed(platform, drive)
    shutil.rmtree(parked)
    missing = 0
    for number in load.acknowledged:
        response = client.get_object(LOGS_BUCKET, f"drill/{run}/{number}")
        try:
            missing += response.read() != f"{run}:{number}".encode()
        finally:
            response.close()
            response.release_conn()
    return DrillResult(
        "minio-drive-loss",
        recovery,
        len(load.acknowledged),
        missing,
        len(load.failures),
        {"drive": drive.name, "offline_seen": offline, "healed_seconds": healed},
    )


def _park(drive: Path, parked: Path) -> None:
    drive.rename(parked)


def _drives_offline(platform: Platform) -> float:
    text = httpx.get(f"http://{HOST}:{platform.cfg.ports.minio_api}/minio/v2/metrics/cluster", timeout=5).text
    for line in text.splitlines():
        if line.startswith("minio_cluster_drive_offline_total"):
            return float(line.split()[-1])
    return -1


def _wait_drive_healed(platform: Platform, drive_dir: Path, timeout: float = 120) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if _drives_offline(platform) == 0 and any(drive_dir.iterdir()):
            return time.monotonic() - start
        time.sleep(1)
    raise TimeoutError("the replacement drive was not healed in time")


def vault_restart(platform: Platform) -> DrillResult:
    """Restart Vault: it comes back sealed; the platform's unsealer unseals it. The app keeps
    serving meanwhile (its secrets are cached) — the app's readiness is sampled throughout."""
    api = f"{platform.stack(App).api_url}/v1/cameras"
    headers = {"X-API-Key": platform.secrets.api_credentials().operator}

    def app_serves(number: int) -> None:
        response = httpx.get(api, headers=headers, timeout=3)
        response.raise_for_status()

    def vault_unsealed() -> bool:
        return platform.stack(Vault).health().healthy

    with WriteLoad(app_serves, interval=0.1) as load:
        load.wait_for_acks(5)
        fault_at = time.monotonic()
        platform.supervisor.stop("vault")
        platform.supervisor.start("vault")
        unsealed_after = _wait(vault_unsealed, RECOVERY_TIMEOUT) - fault_at
        # At least ten requests after the unseal, and twenty in all: on a busy machine the
        # requests during the restart can be few.
        load.wait_for_acks(max(10, 20 - len(load.acknowledged)))
    return DrillResult(
        "vault-restart",
        unsealed_after,
        len(load.acknowledged),
        0,
        len(load.failures),
        {"app_requests_failed_during_restart": len(load.failures)},
    )


def _wait(condition: Callable[[], bool], timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return time.monotonic()
        time.sleep(0.2)
    raise TimeoutError("condition not met in time")


def postgres_backup_restore(platform: Platform) -> DrillResult:
    """Back PostgreSQL up to MinIO under a steady write load, then restore the newest backup into
    a new server as if both members were lost. Every write acknowledged before the backup began
    must be in the restore; `recovery_seconds` is the restore's time to a queryable server,
    measured against the 15 min RTO."""
    cfg, secrets = platform.cfg, platform.secrets
    with psycopg.connect(platform.stack(Postgres).superuser_dsn("its"), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS drill_writes (run text, n integer, PRIMARY KEY (run, n))")
    run = uuid.uuid4().hex[:8]
    connection = [psycopg.connect(platform.stack(Postgres).superuser_dsn("its"), autocommit=True)]

    def write(number: int) -> None:
        connection[0].execute("INSERT INTO drill_writes VALUES (%s, %s)", (run, number))

    with WriteLoad(write, interval=0.05) as load:
        load.wait_for_acks(20)
        owed = list(load.acknowledged)  # acknowledged before the backup starts
        taken = backup.backup(cfg, secrets)
        load.wait_for_acks(10)
    connection[0].close()
    target = Path(tempfile.mkdtemp(prefix="its-restore-", dir=cfg.state_dir))
    port = free_port()
    try:
        restored = backup.restore(cfg, secrets, target / "data", port)
        with psycopg.connect(restored.dsn(secrets)) as conn:
            rows = conn.execute("SELECT n FROM drill_writes WHERE run = %s", (run,)).fetchall()
        in_restore = {row[0] for row in rows}
    finally:
        backup.stop(cfg, target / "data")
        shutil.rmtree(target, ignore_errors=True)
    return DrillResult(
        "postgres-backup-restore",
        restored.seconds,
        len(owed),
        len(set(owed) - in_restore),
        len(load.failures),
        {"backup": taken.key, "backup_seconds": round(taken.seconds, 1), "backup_bytes": taken.bytes,
         "restore_mb_per_s": round(taken.bytes / 1e6 / restored.seconds, 1),
         "rows_in_restore": len(in_restore), "rows_acknowledged_in_total": len(load.acknowledged)},
        recovered="restored server answering",
    )  # fmt: skip


DRILLS: dict[str, Callable[[Platform], DrillResult]] = {
    "redis": redis_master_kill,
    "postgres": postgres_primary_kill,
    "kafka": kafka_broker_kill,
    "minio": minio_drive_loss,
    "vault": vault_restart,
    "postgres-restore": postgres_backup_restore,
}
