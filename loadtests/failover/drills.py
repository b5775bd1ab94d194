"""The drills. Each takes the running platform, breaks one thing under a concurrent write load,
measures from the outside and puts the platform back (restarts what it stopped, waits until
the stack is healthy).

What every drill measures: writes acknowledged, and lost (read back afterwards); writes that
failed during the outage (none: the fault never reached the writes, and the drill fails with
"fault not confirmed"); who leads before and after, as the store itself reports it (Sentinel's
master address, Patroni's leader, Kafka's partition leader, the Vault server's process); the
seconds from the fault to the first write acknowledged after the outage began; and the alert of
the fault (AlertWatch): the seconds to its firing on Prometheus, its delivery to the platform's
receiver and its resolved notification, each within the bound its rule and the rendered configs
give (the fault stays in place until the alert is delivered, as it would until someone is told).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import hvac
import psutil
import psycopg
import redis
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import NewTopic
from minio import Minio
from minio.error import S3Error
from redis.sentinel import Sentinel

from infra.facts.buckets import buckets
from infra.facts.database import database_roles
from infra.facts.redis import redis_settings
from infra.facts.vault import vault_layout
from infra.kernel.health import Health, wait_until
from infra.kernel.layout import HOST
from infra.kernel.ports import free_port
from infra.local import backup
from infra.local.alerts import AlertReceiver, Timings, fired_at, rule
from infra.local.platform import Platform
from infra.local.stacks import App, Kafka, Postgres, Redis, Vault
from infra.local.stacks import Minio as MinioStack
from loadtests.failover.load import AlertLogEntry, DrillResult, Outage, WriteLoad, fault_problems

RECOVERY_TIMEOUT = 120
# Seconds a fault has to show as failed writes; a kill of the process that serves the writes
# shows within one write timeout.
CONFIRM_WITHIN = 20
# Vault stays down at least this long before it is started again: long enough for the app's
# requests (sampled five times a second) to show whether it serves without Vault; and at least a
# scrape interval, so that a probe of Vault lands while it is away and its alert can fire.
VAULT_DOWN_SECONDS = 3
MASTER = redis_settings().master_name
LOGS_BUCKET = buckets().buckets.logs.name
# Acknowledged objects the MinIO drill reads whole after the drive loss (a random sample).
MINIO_BODIES_READ = 200


def _quiet(_: str) -> None:
    return None


def _rate(load: WriteLoad, seconds: float) -> float:
    """Writes attempted per second over the drill (acknowledged or not)."""
    attempted = len(load.acknowledged) + sum(len(a.numbers) for a in load.failures)
    return round(attempted / seconds, 1) if seconds > 0 else 0.0


def lose_program(platform: Platform, name: str, extra_pids: Iterable[int] = ()) -> float:
    """Lose a supervised program as a node is lost: freeze it (and `extra_pids`, e.g. a
    postmaster its parent let go), SIGKILL it with every descendant, and keep it down. Returns
    the moment of the fault. Killing the parent alone would leave children serving writes."""
    leaders = [platform.supervisor.pid(name), *extra_pids]
    fault_at = time.monotonic()
    for pid in leaders:
        os.kill(pid, signal.SIGSTOP)  # frozen: from here on nothing of it answers or forks
    doomed = set(leaders)
    for pid in leaders:
        doomed |= {child.pid for child in psutil.Process(pid).children(recursive=True)}
    platform.supervisor.begin_stop(name)  # once it dies, supervisord keeps it down
    for pid in doomed:
        with contextlib.suppress(ProcessLookupError):  # a child that exited meanwhile
            os.kill(pid, signal.SIGKILL)
    platform.supervisor.wait_stopped(name)
    return fault_at


def _measure(load: WriteLoad, fault: Callable[[], float], settle: int = 200) -> Outage:
    """Let the load settle, inject the fault, watch the outage, then let writes run on."""
    load.wait_for_acks(settle)
    fault_at = fault()
    outage = load.outage(fault_at, CONFIRM_WITHIN, RECOVERY_TIMEOUT)
    load.wait_for_acks(settle)
    return outage


# -- Alerts ------------------------------------------------------------------------------------


def _wall(moment: float) -> float:
    """A monotonic moment on the epoch clock the alert receiver and Prometheus stamp with."""
    return time.time() - (time.monotonic() - moment)


@dataclass
class AlertWatch:
    """The alert a drill's fault must raise, followed from the fault (`fault_at`, monotonic) to
    its resolved notification. Every bound comes from the rule and the rendered timings: the
    alert's condition holds from `detectable_s` after the fault (a fault seen at once, or the
    new leader a failover makes), then scrape, evaluation, `for` and group_wait; a rule over a
    window clears a window after it fired, then scrape, evaluation and group_interval."""

    platform: Platform
    name: str
    fault_at: float
    labels: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    fired_s: float | None = None
    delivered_s: float | None = None
    resolved_s: float | None = None
    receiver: str = ""

    def __post_init__(self) -> None:
        self.rule = rule(self.name)
        self.timings = Timings.of(self.platform.cfg)
        self.receiver_of = AlertReceiver.of(self.platform.cfg)
        self.fault_wall = _wall(self.fault_at)

    def delivered(self, detectable_s: float) -> None:
        """Wait for the firing notification within its bound; then when Prometheus fired it."""
        bound = detectable_s + self.timings.first_notification_bound(self.rule.for_s)
        try:
            got = self.receiver_of.wait_for(
                self.name, "firing", timeout=max(0.0, self.fault_wall + bound - time.time()),
                since=self.fault_wall, labels=self.labels,
            )  # fmt: skip
        except TimeoutError as missing:
            self.problems.append(
                f"alert {self.name} not delivered within {bound:.0f}s of the fault: {missing}"
            )
            return
        self.receiver, self.delivered_s = got.receiver, got.received_at - self.fault_wall
        if self.delivered_s > bound:
            self.problems.append(
                f"alert {self.name} delivered {self.delivered_s:.0f}s after the fault, bound {bound:.0f}s"
            )
        fired = fired_at(self.platform.cfg, self.name, self.fault_wall, self.labels)
        if fired is None:
            self.problems.append(f"alert {self.name} delivered but never firing on Prometheus")
        else:
            self.fired_s = fired - self.fault_wall

    def resolved(self, repaired_at: float) -> None:
        """After the repair (monotonic moment): wait for the resolved notification in its bound."""
        if self.delivered_s is None:
            return  # never delivered: that problem is recorded already
        fired = self.fault_wall + (self.fired_s if self.fired_s is not None else self.delivered_s)
        clears = max(_wall(repaired_at), fired + self.rule.lookback_s)
        deadline = clears + self.timings.resolution_bound()
        try:
            got = self.receiver_of.wait_for(
                self.name, "resolved", timeout=max(0.0, deadline - time.time()),
                since=self.fault_wall, labels=self.labels,
            )  # fmt: skip
        except TimeoutError as missing:
            bound = deadline - self.fault_wall
            self.problems.append(
                f"alert {self.name} not resolved within {bound:.0f}s of the fault: {missing}"
            )
            return
        self.resolved_s = got.received_at - self.fault_wall

    def onto(self, result: DrillResult) -> DrillResult:
        """The drill's result with the alert's times, its problems, and who got it."""
        result.alert = self.name
        result.alert_fired_s, result.alert_delivered_s = self.fired_s, self.delivered_s
        result.alert_resolved_s = self.resolved_s
        result.problems.extend(self.problems)
        result.detail["alert_receiver"] = self.receiver
        result.alert_log = self.receiver_log()
        return result

    def receiver_log(self) -> list[AlertLogEntry]:
        """What the receiver recorded of this alert since the fault, oldest first."""
        return [
            AlertLogEntry(round(n.received_at - self.fault_wall, 1), n.receiver, status)
            for n in self.receiver_of.received(self.fault_wall)
            for status in ("firing", "resolved")
            if n.matching(self.name, status, self.labels)
        ]


def _failed_during(load: WriteLoad, outage: Outage) -> int:
    end = outage.recovered_at if outage.recovered_at is not None else time.monotonic()
    return load.failed_between(outage.fault_at, end)


# -- Redis -------------------------------------------------------------------------------------


def _redis_program(platform: Platform, port: int) -> str:
    return f"redis{platform.cfg.ports.many('redis').index(int(port))}"


def redis_master_kill(platform: Platform, victim: str | None = None) -> DrillResult:
    """Kill the Redis master (or `victim`, a program name: a replica shows what an unconfirmed
    fault looks like); Sentinel promotes a replica; a client that discovers the master through
    Sentinel follows. Writes are pipelined; a batch counts as acknowledged once WAIT says one
    replica has it (WAIT in the same pipeline: it covers its own connection's writes only)."""
    redis_stack = platform.stack(Redis)
    # The platform's admin identity: the default user is off on every server and Sentinel.
    sentinel = Sentinel(redis_stack.sentinel_addresses(), socket_timeout=1, **redis_stack.connection_kwargs())  # type: ignore[no-untyped-call]
    # redis-py's Sentinel API is untyped.
    client = sentinel.master_for(MASTER, socket_timeout=1, retry_on_timeout=False)  # type: ignore[no-untyped-call]
    run = uuid.uuid4().hex[:8]

    def write(numbers: list[int]) -> Collection[int]:
        pipe = client.pipeline(transaction=False)
        for number in numbers:
            pipe.set(f"drill:{run}:{number}", number, ex=3600)
        pipe.execute_command("WAIT", 1, 1000)
        if int(pipe.execute()[-1]) < 1:
            raise redis.ReadOnlyError("not replicated")
        return numbers

    old_master = _redis_program(platform, sentinel.discover_master(MASTER)[1])  # type: ignore[no-untyped-call]
    victim = victim or old_master
    started = time.monotonic()
    with WriteLoad(write, workers=2, batch=50) as load:
        outage = _measure(load, lambda: lose_program(platform, victim))
    seconds = time.monotonic() - started
    new_master = _redis_program(platform, sentinel.discover_master(MASTER)[1])  # type: ignore[no-untyped-call]
    alert = AlertWatch(platform, "RedisMasterChanged", outage.fault_at, {"master_name": MASTER})
    if outage.recovery_seconds is not None:  # a failover happened: Sentinel names a new master
        alert.delivered(outage.recovery_seconds)
    platform.supervisor.start(victim)  # comes back as a replica of the new master
    wait_until("redis", redis_stack.health, 60, log=_quiet)
    if outage.recovery_seconds is not None:
        alert.resolved(time.monotonic())
    reader = sentinel.master_for(MASTER, socket_timeout=5)  # type: ignore[no-untyped-call]
    acknowledged = load.acknowledged
    lost = 0
    for chunk in range(0, len(acknowledged), 1000):
        keys = [f"drill:{run}:{n}" for n in acknowledged[chunk : chunk + 1000]]
        lost += sum(value is None for value in reader.mget(keys))
    failed = _failed_during(load, outage)
    problems = fault_problems(failed, old_master, new_master)
    result = DrillResult(
        "redis-master-kill" if victim == old_master else f"redis-kill-{victim}", not problems,
        outage.recovery_seconds, len(acknowledged), lost, failed,
        old_master, new_master, problems,
        {"killed": victim, "writes_per_second": _rate(load, seconds),
         "failed_attempts_in_all": sum(len(a.numbers) for a in load.failures)},
    )  # fmt: skip
    # An unconfirmed fault (a replica killed) raises no failover alert: nothing to wait for.
    return alert.onto(result) if outage.recovery_seconds is not None else result


# -- PostgreSQL --------------------------------------------------------------------------------


def _postmaster_pid(platform: Platform, member: str) -> int:
    pid_file = platform.cfg.path("postgres", member, "data", "postmaster.pid")
    return int(pid_file.read_text().split()[0])


def _patroni_leader(platform: Platform) -> str | None:
    leaders = [n for n, m in platform.stack(Postgres).members().items() if m["role"] == "leader"]
    return leaders[0] if leaders else None


@dataclass
class _Connections:
    """One connection per writer thread (a psycopg connection is not shared across threads)."""

    dsn: str
    local: threading.local = field(default_factory=threading.local)

    def get(self) -> psycopg.Connection[tuple[Any, ...]]:
        conn: psycopg.Connection[tuple[Any, ...]] | None = getattr(self.local, "conn", None)
        if conn is None or conn.closed:
            conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=3)
            self.local.conn = conn
        return conn


def _row_writer(dsn: str, run: str) -> Callable[[list[int]], Collection[int]]:
    """A batch of rows in one INSERT, committed (synchronously replicated) or not at all."""
    connections = _Connections(dsn)

    def write(numbers: list[int]) -> Collection[int]:
        conn = connections.get()
        try:
            conn.execute("INSERT INTO drill_writes SELECT %s, unnest(%s::integer[])", (run, numbers))
        except psycopg.Error:
            conn.close()
            raise
        return numbers

    return write


def _drill_table(platform: Platform, grant_to: str | None) -> None:
    with psycopg.connect(platform.stack(Postgres).superuser_dsn("its"), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS drill_writes (run text, n integer, PRIMARY KEY (run, n))")
        if grant_to:
            conn.execute(f"GRANT SELECT, INSERT ON drill_writes TO {grant_to}")


def postgres_primary_kill(platform: Platform, victim: str | None = None) -> DrillResult:
    """Lose the primary's node: Patroni, the postmaster and every backend killed at once (a
    postmaster killed alone leaves its backends committing); Patroni promotes the synchronous
    standby once the leader key expires, and every committed row is on it. `victim` (a member
    name) kills another member instead."""
    pg = platform.stack(Postgres)
    _drill_table(platform, database_roles().worker)
    run = uuid.uuid4().hex[:8]
    # The worker's identity through PgBouncer: the path the app's writes take.
    write = _row_writer(pg.role_dsn(database_roles().worker), run)
    old_primary = _patroni_leader(platform)
    assert old_primary is not None, "no primary before the drill"
    victim = victim or old_primary
    program = f"patroni{int(victim.removeprefix('pg'))}"
    postmaster = _postmaster_pid(platform, victim)
    started = time.monotonic()
    with WriteLoad(write, workers=4, batch=20) as load:
        outage = _measure(load, lambda: lose_program(platform, program, [postmaster]))
    seconds = time.monotonic() - started
    new_primary = _patroni_leader(platform) or "none"
    alert = AlertWatch(platform, "PostgresPrimaryChanged", outage.fault_at, {"member": new_primary})
    # The promotion happened by the time writes came back (through HAProxy, on the new primary).
    alert.delivered(outage.recovery_seconds if outage.recovery_seconds is not None else RECOVERY_TIMEOUT)
    platform.supervisor.start(program)  # rejoins as a replica (pg_rewind)
    wait_until("postgres", pg.health, 120, log=_quiet)
    alert.resolved(time.monotonic())
    with psycopg.connect(pg.superuser_dsn("its")) as conn:
        stored = {row[0] for row in conn.execute("SELECT n FROM drill_writes WHERE run = %s", (run,))}
    acknowledged = load.acknowledged
    failed = _failed_during(load, outage)
    problems = fault_problems(failed, old_primary, new_primary)
    return alert.onto(DrillResult(
        "postgres-primary-kill", not problems, outage.recovery_seconds, len(acknowledged),
        len(set(acknowledged) - stored), failed, old_primary, new_primary, problems,
        {"killed": f"{program} and postmaster {postmaster} with its children",
         "writes_per_second": _rate(load, seconds)},
    ))  # fmt: skip


# -- Kafka -------------------------------------------------------------------------------------


def _partition_leader(platform: Platform, topic: str) -> int:
    """The broker id Kafka's metadata names as the leader of the topic's partition 0 (-1: none)."""
    metadata = platform.stack(Kafka).admin().list_topics(topic, timeout=10)
    return int(metadata.topics[topic].partitions[0].leader)


def _create_drill_topic(platform: Platform, topic: str) -> None:
    """A topic of the drill's own, as durable as the app's: replication 3, min.insync 2."""
    admin = platform.stack(Kafka).admin()
    spec = NewTopic(topic, num_partitions=1, replication_factor=3, config={"min.insync.replicas": "2"})
    admin.create_topics([spec], operation_timeout=30)[topic].result()
    wait_until("drill topic leader", lambda: Health(_partition_leader(platform, topic) > 0), 30, log=_quiet)


def _kafka_writer(login: dict[str, Any], topic: str) -> Callable[[list[int]], Collection[int]]:
    """Idempotent, acks=all; a message not acknowledged within 3 s is a failed write (without
    that bound the producer retries through any outage and no write ever fails)."""
    producer = Producer(
        {**login, "acks": "all", "enable.idempotence": True, "linger.ms": 5,
         "message.timeout.ms": 3000, "request.timeout.ms": 2000}
    )  # fmt: skip

    def write(numbers: list[int]) -> Collection[int]:
        acked: list[int] = []

        def delivered(err: object, message: Any) -> None:
            if err is None:
                acked.append(json.loads(message.value())["n"])

        for number in numbers:
            producer.produce(topic, value=json.dumps({"n": number}), on_delivery=delivered)
        producer.flush(10)
        return acked

    return write


def kafka_broker_kill(platform: Platform) -> DrillResult:
    """Kill the broker that leads the drill topic's partition; another in-sync replica takes the
    lead and an idempotent producer with acks=all goes on (RF 3, min.insync 2); every
    acknowledged message is read back. The topic is the drill's own, deleted afterwards."""
    kafka = platform.stack(Kafka)
    login = kafka.client_config()
    topic = f"drill-{uuid.uuid4().hex[:8]}"
    _create_drill_topic(platform, topic)
    try:
        old_leader = _partition_leader(platform, topic)
        victim = f"kafka{old_leader - 1}"  # node ids are 1..3 (infra/local/stacks/kafka.py)
        started = time.monotonic()
        with WriteLoad(_kafka_writer(login, topic), workers=1, batch=500) as load:
            outage = _measure(load, lambda: lose_program(platform, victim))
        seconds = time.monotonic() - started
        new_leader = _partition_leader(platform, topic)
        alert = AlertWatch(platform, "KafkaBrokerDown", outage.fault_at)
        # Fenced by the time another broker leads (writes back); kept down until the page came.
        alert.delivered(outage.recovery_seconds if outage.recovery_seconds is not None else RECOVERY_TIMEOUT)
        platform.supervisor.start(victim)
        wait_until("kafka", kafka.health, 120, log=_quiet)
        alert.resolved(time.monotonic())
        seen = _read_topic(login, topic)
    finally:
        admin = kafka.admin()  # held until the result: a client destroyed early fails its futures
        admin.delete_topics([topic], operation_timeout=30)[topic].result()
    acknowledged = load.acknowledged
    failed = _failed_during(load, outage)
    problems = fault_problems(failed, f"broker {old_leader}", f"broker {new_leader}")
    return alert.onto(DrillResult(
        "kafka-leader-kill", not problems, outage.recovery_seconds, len(acknowledged),
        len(set(acknowledged) - seen), failed, f"broker {old_leader}", f"broker {new_leader}", problems,
        {"killed": victim, "topic": topic, "writes_per_second": _rate(load, seconds)},
    ))  # fmt: skip


def _read_topic(login: dict[str, Any], topic: str) -> set[int]:
    """Every write number in the topic's partition, read from the start to its end offset."""
    consumer = Consumer({**login, "group.id": f"{topic}-reader", "enable.auto.commit": False})
    partition = TopicPartition(topic, 0, 0)
    end = consumer.get_watermark_offsets(partition, timeout=10)[1]
    consumer.assign([partition])
    seen: set[int] = set()
    deadline = time.monotonic() + 60
    offset = -1
    while offset + 1 < end and time.monotonic() < deadline:
        message = consumer.poll(1)
        if message is None:
            continue
        if message.error():
            raise KafkaException(message.error())
        offset = int(message.offset() or 0)
        seen.add(int(json.loads(message.value() or b"{}")["n"]))
    consumer.close()
    return seen


# -- MinIO -------------------------------------------------------------------------------------


def minio_drive_loss(platform: Platform) -> DrillResult:
    """Take one of the four drives away; erasure coding keeps reads and writes going, so here
    the fault is confirmed by MinIO itself reporting the drive offline, not by failed writes.
    Then an empty drive is put back and MinIO heals it: recovery is the seconds from the
    replacement to MinIO reporting no drive offline."""
    cfg = platform.cfg
    client = platform.stack(MinioStack).root_client()
    run = uuid.uuid4().hex[:8]

    def write(numbers: list[int]) -> Collection[int]:
        for number in numbers:
            body = f"{run}:{number}".encode()
            client.put_object(LOGS_BUCKET, f"drill/{run}/{number}", BytesIO(body), len(body))
        return numbers

    drive = cfg.path("minio", "drive2")
    parked = cfg.path("minio", "drive2.removed")
    offline_before = _drives_offline(platform)
    started = time.monotonic()
    with WriteLoad(write, workers=4) as load:
        load.wait_for_acks(100)
        fault_at = time.monotonic()
        drive.rename(parked)
        # A file where the drive was: MinIO cannot recreate the directory, so every I/O on the
        # drive fails, as on a dead disk (a missing directory it would simply make again).
        drive.write_bytes(b"")
        offline = _wait_offline(platform)
        seen_offline_s = time.monotonic() - fault_at
        load.wait_for_acks(100)  # writes while a drive is away
        alert = AlertWatch(platform, "MinioDriveOffline", fault_at)
        alert.delivered(seen_offline_s)  # the drive stays away until the ticket came
        failed = load.failed_between(fault_at, time.monotonic())
        drive.unlink()
        drive.mkdir()  # an empty replacement drive
        healed = _wait_drive_healed(platform, drive)
        alert.resolved(time.monotonic())
    seconds = time.monotonic() - started
    shutil.rmtree(parked)

    # Every acknowledged object read back in one listing (tens of thousands: the load runs
    # through the alert's minute): present, with the ETag of its body (a single PUT's ETag is
    # the MD5 of what was written). A listing reads metadata only, so a random sample is also
    # read whole: its bytes must come back through the erasure set that lost a drive.
    stored = {
        item.object_name: item.etag
        for item in client.list_objects(LOGS_BUCKET, prefix=f"drill/{run}/", recursive=True)
    }
    lost = {
        number
        for number in load.acknowledged
        if stored.get(f"drill/{run}/{number}") != hashlib.md5(f"{run}:{number}".encode()).hexdigest()  # noqa: S324 - S3's ETag, not a security hash
    }
    sample = random.sample(sorted(load.acknowledged), min(MINIO_BODIES_READ, len(load.acknowledged)))
    unreadable = {n for n in sample if _body(client, f"drill/{run}/{n}") != f"{run}:{n}".encode()}
    missing = len(lost | unreadable)
    problems = [] if offline >= 1 else ["fault not confirmed: MinIO never reported the drive offline"]
    return alert.onto(DrillResult(
        "minio-drive-loss", not problems, healed, len(load.acknowledged), missing, failed,
        f"{offline_before:.0f} drives offline", f"{offline:.0f} offline, then healed", problems,
        {"drive": drive.name, "writes_per_second": _rate(load, seconds), "bodies_read": len(sample),
         "bodies_unreadable": len(unreadable)},
        recovered="replacement drive healed",
    ))  # fmt: skip


def _body(client: Minio, name: str) -> bytes | None:
    """An object's bytes, or None when it cannot be read."""
    try:
        response = client.get_object(LOGS_BUCKET, name)
    except S3Error:
        return None
    try:
        return bytes(response.read())
    finally:
        response.close()
        response.release_conn()


def _drives_offline(platform: Platform) -> float:
    text = httpx.get(f"http://{HOST}:{platform.cfg.ports.minio_api}/minio/v2/metrics/cluster", timeout=5).text
    for line in text.splitlines():
        if line.startswith("minio_cluster_drive_offline_total"):
            return float(line.split()[-1])
    raise ValueError("MinIO's cluster metrics have no minio_cluster_drive_offline_total")


def _wait_offline(platform: Platform, timeout: float = 60) -> float:
    """MinIO's own count of offline drives, once it is at least one (or when time is up)."""
    deadline = time.monotonic() + timeout
    offline = _drives_offline(platform)
    while offline < 1 and time.monotonic() < deadline:
        time.sleep(0.5)
        offline = _drives_offline(platform)
    return offline


def _wait_drive_healed(platform: Platform, drive_dir: Path, timeout: float = 120) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if _drives_offline(platform) == 0 and any(drive_dir.iterdir()):
            return time.monotonic() - start
        time.sleep(0.5)
    raise TimeoutError("the replacement drive was not healed in time")


# -- Vault -------------------------------------------------------------------------------------


class _Sampler:
    """Calls probe() every `every` seconds in a thread and keeps (moment, what it said)."""

    def __init__(self, probe: Callable[[], str], every: float) -> None:
        self.probe, self.every = probe, every
        self.samples: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                said = self.probe()
            except Exception as error:
                said = type(error).__name__
            self.samples.append((time.monotonic(), said))
            self._stop.wait(self.every)

    def __enter__(self) -> _Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def between(self, start: float, end: float) -> list[str]:
        return [said for moment, said in list(self.samples) if start <= moment <= end]


def _vault_writer(address: str, token: str, mount: str, run: str) -> Callable[[list[int]], Collection[int]]:
    """Each write a secret of its own at the KV v2 data path the app reads (the local server
    keeps v1 semantics under it, so the v2 envelope is written, as the provisioner does)."""
    local = threading.local()

    def write(numbers: list[int]) -> Collection[int]:
        http: httpx.Client | None = getattr(local, "http", None)
        if http is None:
            http = local.http = httpx.Client(headers={"X-Vault-Token": token}, timeout=2)
        for number in numbers:
            body = {"data": {"n": number}, "metadata": {"version": 1}}
            http.post(f"{address}/v1/{mount}/data/drill/{run}/{number}", json=body).raise_for_status()
        return numbers

    return write


def _unsealer_unseals(platform: Platform) -> int:
    """How often the platform's unsealer has found Vault sealed and unsealed it (its log)."""
    log = platform.cfg.log_dir / "vault-unsealer.log"
    return log.read_text(errors="replace").count("vault was sealed: unsealed") if log.exists() else 0


def _seal_state(address: str) -> str:
    data = httpx.get(f"{address}/v1/sys/seal-status", timeout=1).json()
    return "sealed" if data.get("sealed") else "unsealed"


def vault_restart(platform: Platform) -> DrillResult:
    """Kill Vault and start it again: it comes back sealed; the platform's unsealer unseals it.
    Measured: secret writes at the app's KV path (failed while Vault is away or sealed, read back
    afterwards through the app's KV v2 call), the seal state sampled throughout (sealed must be
    seen, then unsealed), and the app's authenticated requests during the outage (it serves
    from its cached secrets, so none may fail)."""
    vault = platform.stack(Vault)
    mount, token = vault_layout().kv_mount, platform.secrets["vault_init"]["root_token"]
    run = uuid.uuid4().hex[:8]
    api = f"{platform.stack(App).api_url}/v1/cameras"
    headers = {"X-API-Key": platform.secrets.api_credentials().operator}

    def app_serves() -> str:
        return str(httpx.get(api, headers=headers, timeout=3).status_code)

    old_pid = platform.supervisor.pid("vault")
    down_seconds = max(VAULT_DOWN_SECONDS, Timings.of(platform.cfg).scrape_interval)
    unseals_before = _unsealer_unseals(platform)
    started = time.monotonic()
    # The API's per-key rate limit is 10 requests a second: sample it at 5.
    with (
        _Sampler(lambda: _seal_state(vault.address), 0.02) as seal,
        _Sampler(app_serves, 0.2) as app,
        WriteLoad(_vault_writer(vault.address, token, mount, run), workers=4) as load,
    ):

        def restart() -> float:
            fault_at = lose_program(platform, "vault")
            time.sleep(down_seconds)
            platform.supervisor.start("vault")
            return fault_at

        outage = _measure(load, restart, settle=100)
        unsealed = wait_until("vault unsealed", vault.health, 60, log=_quiet)
    seconds = time.monotonic() - started  # the load's span: the write rate is over it alone
    alert = AlertWatch(platform, "VaultWasUnavailable", outage.fault_at)
    alert.delivered(0.0)  # a probe fails from the fault on
    alert.resolved(time.monotonic())
    new_pid = platform.supervisor.pid("vault")
    end = outage.recovered_at if outage.recovered_at is not None else time.monotonic()
    seal_states = seal.between(outage.fault_at, end)
    app_answers = app.between(outage.fault_at, end)
    app_failed = sum(answer != "200" for answer in app_answers)
    reader = hvac.Client(url=vault.address, token=token, timeout=10)
    lost = 0
    for number in load.acknowledged:
        secret = reader.secrets.kv.v2.read_secret_version(
            path=f"drill/{run}/{number}", mount_point=mount, raise_on_deleted_version=True
        )
        lost += secret["data"]["data"] != {"n": number}
    failed = _failed_during(load, outage)
    fault = fault_problems(failed, f"pid {old_pid}", f"pid {new_pid}")
    # The unsealer says when it found Vault sealed; the 20 ms samples can miss a short window.
    unseals = _unsealer_unseals(platform) - unseals_before
    if "sealed" not in seal_states and unseals < 1:
        fault.append("fault not confirmed: Vault was never seen sealed after the restart")
    problems = list(fault)
    if not unsealed.healthy:
        problems.append("the unsealer did not unseal Vault")
    if app_failed or not app_answers:
        problems.append(f"the app did not keep serving: {app_failed} of {len(app_answers)} requests failed")
    return alert.onto(DrillResult(
        "vault-restart", not fault, outage.recovery_seconds, len(load.acknowledged), lost, failed,
        f"vault pid {old_pid}", f"vault pid {new_pid}", problems,
        {"seal_states_seen": sorted(set(seal_states)), "unsealer_unseals": unseals,
         "app_requests_during_outage": len(app_answers),
         "app_requests_failed_during_outage": app_failed, "writes_per_second": _rate(load, seconds)},
    ))  # fmt: skip


# -- PostgreSQL backup and restore -------------------------------------------------------------


def postgres_backup_restore(platform: Platform) -> DrillResult:
    """Back PostgreSQL up to MinIO under a steady write load, then restore the newest backup into
    a new server as if both members were lost. Every write acknowledged before the backup began
    must be in the restore; `recovery_seconds` is the restore's time to a queryable server,
    measured against the 15 min RTO. The fault is confirmed when the answering server is
    another one than the primary (its own data directory)."""
    cfg, secrets = platform.cfg, platform.secrets
    _drill_table(platform, None)
    run = uuid.uuid4().hex[:8]
    primary = _patroni_leader(platform) or "none"
    with psycopg.connect(platform.stack(Postgres).superuser_dsn("its")) as conn:
        primary_dir = str(conn.execute("SHOW data_directory").fetchone()[0])  # type: ignore[index]
    with WriteLoad(
        _row_writer(platform.stack(Postgres).superuser_dsn("its"), run), workers=2, batch=20
    ) as load:
        load.wait_for_acks(200)
        owed = list(load.acknowledged)  # acknowledged before the backup starts
        taken = backup.backup(cfg, secrets)
        load.wait_for_acks(200)
    target = Path(tempfile.mkdtemp(prefix="its-restore-", dir=cfg.state_dir))
    port = free_port()
    try:
        restored = backup.restore(cfg, secrets, target / "data", port)
        with psycopg.connect(restored.dsn(secrets)) as conn:
            rows = conn.execute("SELECT n FROM drill_writes WHERE run = %s", (run,)).fetchall()
            restored_dir = str(conn.execute("SHOW data_directory").fetchone()[0])  # type: ignore[index]
        in_restore = {row[0] for row in rows}
    finally:
        backup.stop(cfg, target / "data")
        shutil.rmtree(target, ignore_errors=True)
    problems = [] if restored_dir != primary_dir else ["fault not confirmed: the primary answered"]
    return DrillResult(
        "postgres-backup-restore", not problems, restored.seconds, len(owed), len(set(owed) - in_restore),
        sum(len(a.numbers) for a in load.failures), f"{primary} ({primary_dir})",
        f"restored ({restored_dir})", problems,
        {"backup": taken.key, "backup_seconds": round(taken.seconds, 1), "backup_bytes": taken.bytes,
         "restore_mb_per_s": round(taken.bytes / 1e6 / restored.seconds, 1),
         "rows_in_restore": len(in_restore), "rows_acknowledged_in_total": len(load.acknowledged)},
        recovered="restored server answering",
        # The live cluster never goes down: the backup is taken beside it and restored into a
        # new server, so no alert's condition ever holds; its clock is the RTO, not an alert.
        alert="none (no outage of the live cluster)",
    )  # fmt: skip


DRILLS: dict[str, Callable[[Platform], DrillResult]] = {
    "redis": redis_master_kill,
    "postgres": postgres_primary_kill,
    "kafka": kafka_broker_kill,
    "minio": minio_drive_loss,
    "vault": vault_restart,
    "postgres-restore": postgres_backup_restore,
}
