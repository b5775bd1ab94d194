"""The data plane trusts no one: on the running local platform, Kafka and Redis (every server and
every Sentinel) refuse whoever does not authenticate, and each app identity, logged in with the
credentials Vault delivers to it, can do what infrastructure/kafka/users.yaml and the users of
infrastructure/redis/redis.yaml grant and nothing else."""

from __future__ import annotations

import logging
import socket
import struct
import time
import uuid
from collections.abc import Callable
from typing import Any, cast

import httpx
import hvac
import pytest
import redis
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from redis.backoff import NoBackoff
from redis.retry import Retry

from app.smoke import run_smoke
from infra.facts.redis import redis_settings
from infra.facts.topics import topics
from infra.kernel.health import wait_until
from infra.kernel.layout import HOST
from infra.local.alerts import AlertReceiver
from infra.local.stacks import Redis
from infra.local.stacks.cameras import STREAM_CAMERAS
from tests.conftest import RunningPlatform

pytestmark = pytest.mark.platform

CAMERA_EVENTS = topics().topics.camera_events.name
ALERTS = topics().topics.alerts.name
MASTER = redis_settings().master_name
# A camera id the refusal tests below put into the keys they are refused, so the ACL LOG check
# can tell their deliberate refusals from the app's.
PROBE = "auth-probe"


def vault_credentials(platform: RunningPlatform, identity: str, path: str) -> dict[str, str]:
    """What Vault delivers to `identity` at `path`, read as the app reads it (AppRole, KV v2)."""
    env = platform.app_env(identity)
    vault = hvac.Client(url=env["ITS_VAULT_ADDR"], timeout=5)
    with open(env["ITS_VAULT_SECRET_ID_FILE"]) as secret_id:  # noqa: PTH123
        vault.auth.approle.login(role_id=env["ITS_VAULT_ROLE_ID"], secret_id=secret_id.read().strip())
    response = vault.secrets.kv.v2.read_secret_version(
        path=path, mount_point="secret", raise_on_deleted_version=True
    )
    return dict(response["data"]["data"])


def kafka_login(platform: RunningPlatform, identity: str) -> dict[str, Any]:
    """librdkafka settings of an app identity, with the credentials Vault delivers to it."""
    prefix = identity.removeprefix("its-")
    creds = vault_credentials(platform, identity, f"its/{prefix}/kafka")
    return {
        "bootstrap.servers": platform.kafka_config()["bootstrap.servers"],
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": creds["username"],
        "sasl.password": creds["password"],
    }


def redis_login(platform: RunningPlatform, identity: str) -> dict[str, str]:
    prefix = identity.removeprefix("its-")
    return vault_credentials(platform, identity, f"its/{prefix}/redis")


class _ClientLog(logging.Handler):
    """What librdkafka logs (through the client's `logger`), kept for the assertions."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _client_log() -> tuple[logging.Logger, _ClientLog]:
    handler = _ClientLog()
    logger = logging.getLogger(f"rdkafka.{uuid.uuid4().hex[:8]}")
    logger.propagate = False
    logger.addHandler(handler)
    return logger, handler


# A broker (or controller) dropping a client that did not start a SASL handshake, as librdkafka
# tells it: the broker closes the connection on the client's first request after ApiVersions.
DROPPED = ("connection closed by peer", "Broken pipe", "Connection reset")


def _produce_once(
    config: dict[str, Any], topic: str, value: bytes
) -> tuple[KafkaError | None, set[int], str]:
    """Produce one message; return its delivery error, the error codes the client reported and
    what it logged."""
    reported: set[int] = set()
    delivered: list[KafkaError | None] = []
    logger, log = _client_log()
    producer = Producer(
        {
            **config,
            "message.timeout.ms": 6000,
            "error_cb": lambda error: reported.add(error.code()),
            "logger": logger,
        }
    )
    producer.produce(topic, value=value, on_delivery=lambda error, _message: delivered.append(error))
    producer.flush(10)
    assert delivered, "no delivery report"
    return delivered[0], reported, "\n".join(log.lines)


def _read_from(platform: RunningPlatform, topic: str, start: dict[int, int]) -> list[bytes]:
    """Every value of `topic` from the offsets `start`, read as the platform's admin."""
    consumer = Consumer({**platform.kafka_config(), "group.id": f"auth-check-{uuid.uuid4().hex[:6]}"})
    try:
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in start}
        consumer.assign([TopicPartition(topic, p, offset) for p, offset in start.items()])
        values: list[bytes] = []
        done = {p for p, end in ends.items() if end <= start[p]}
        deadline = time.monotonic() + 30
        while len(done) < len(start) and time.monotonic() < deadline:
            message = consumer.poll(1)
            if message is None or message.error():
                continue
            values.append(message.value() or b"")
            if int(message.offset() or 0) + 1 >= ends[int(message.partition() or 0)]:
                done.add(int(message.partition() or 0))
        assert len(done) == len(start), "could not read the topic to its end"
        return values
    finally:
        consumer.close()


def _high_watermarks(platform: RunningPlatform, topic: str) -> dict[int, int]:
    consumer = Consumer({**platform.kafka_config(), "group.id": f"auth-check-{uuid.uuid4().hex[:6]}"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions
        }
    finally:
        consumer.close()


def _acl_log(client: redis.Redis) -> list[dict[str, Any]]:
    return [dict(entry) for entry in client.acl_log()]


# What the probes below ask as each user, refused on purpose, by the command the ACL log names
# (a refused key carries PROBE in its name). Per user: a command one identity uses (the API's
# INCR for its rate limit) must still count as a refusal for it.
PROBED = {
    "its-api": {"flushall", "config|get", "config|set", "keys", "hset"}
    | {"sentinel|failover", "sentinel|set", "sentinel|remove"},
    "its-ingest": {"flushall", "hgetall", "incr"},
}


def _deliberate(entry: dict[str, Any]) -> bool:
    """Refusals the tests of this module provoke on purpose (strangers, the probes)."""
    if entry.get("reason") == "auth":
        return entry.get("username") in {"default", "stranger"}
    user = str(entry.get("username"))
    return user in PROBED and (PROBE in str(entry.get("object")) or entry.get("object") in PROBED[user])


def test_the_app_runs_without_a_single_acl_refusal(local_platform: RunningPlatform) -> None:
    """Frame in, detections and latest counts out through the API (the API's rate limiter, the
    worker's counts, the replica read, Sentinel discovery by both, replication, the Sentinels'
    own work, the exporter's scrapes), then every server's and Sentinel's ACL LOG: no identity
    was refused a command it needs. (The exporter is refused CONFIG GET on purpose: redis.yaml
    says why.)"""
    result = run_smoke(local_platform.api_url, local_platform.operator_key, 120)
    # A streaming camera's health: the ingest writes it (its membership too, every second), the
    # API reads it from a replica.
    streaming = httpx.get(
        f"{local_platform.api_url}/v1/cameras/{STREAM_CAMERAS[0]}",
        headers={"X-API-Key": local_platform.operator_key},
        timeout=10,
    )
    assert streaming.status_code == 200 and streaming.json()["stream"]["reader"], streaming.text
    # The worker writes the latest counts after the detections, and the API reads them from a
    # replica: poll until the smoke frame's counts arrive (through both identities' Redis users).
    deadline = time.monotonic() + 60
    latest = None
    while time.monotonic() < deadline:
        latest = httpx.get(
            f"{local_platform.api_url}/v1/cameras/smoke-cam/counts/latest",
            headers={"X-API-Key": local_platform.operator_key},
            timeout=10,
        )
        assert latest.status_code == 200, latest.text
        if latest.json()["frame_id"] == result.frame_id:
            break
        time.sleep(0.5)
    assert latest is not None and latest.json()["frame_id"] == result.frame_id, result
    time.sleep(6)  # a scrape of every target by Prometheus (5 s interval)
    redis_stack = local_platform.platform.stack(Redis)
    refused: list[str] = []
    for port in local_platform.cfg.ports.many("redis") + local_platform.cfg.ports.many("sentinel"):
        for entry in _acl_log(redis_stack.client(port)):
            if _deliberate(entry):
                continue
            if entry.get("username") == "exporter" and entry.get("object") == "config|get":
                continue
            refused.append(f"{port}: {entry.get('username')} {entry.get('reason')} {entry.get('object')}")
    assert not refused, refused


def test_a_restarted_server_replays_the_app_s_transactions(local_platform: RunningPlatform) -> None:
    """The worker's latest counts are a MULTI/EXEC transaction; a replica restarted after one
    loads it back from its append-only file. Redis 7.0 replays a transaction as the default
    user, which is off yet keeps the rights to (infra/facts/redis.py): without them the
    transaction is refused at load and the key is gone."""
    redis_stack = local_platform.platform.stack(Redis)
    sentinel = redis_stack.client(local_platform.cfg.ports.many("sentinel")[0])
    master = cast(dict[str, Any], sentinel.sentinel_master(MASTER))
    ports = local_platform.cfg.ports.many("redis")
    replica = next(port for port in ports if port != int(master["port"]))
    creds = redis_login(local_platform, "its-worker")
    worker = redis.Redis(
        host=master["ip"], port=int(master["port"]), username=creds["username"], password=creds["password"]
    )
    key = f"its:counts:latest:{PROBE}-{uuid.uuid4().hex[:6]}"
    with worker.pipeline(transaction=True) as pipe:  # what the worker sends
        pipe.delete(key)
        pipe.hset(key, mapping={"car": 3, "frame_id": "probe"})
        pipe.expire(key, 600)
        pipe.execute()
    deadline = time.monotonic() + 10
    while not redis_stack.client(replica).exists(key) and time.monotonic() < deadline:
        time.sleep(0.2)
    name = f"redis{ports.index(replica)}"
    local_platform.supervisor.stop(name)  # a clean shutdown writes the append-only file out
    local_platform.supervisor.start(name)
    wait_until("redis", redis_stack.health, 60, log=lambda _: None)
    restarted = redis_stack.client(replica)
    replayed = [e for e in _acl_log(restarted) if e.get("username") == "default"]
    assert not replayed, replayed
    assert restarted.hget(key, "car") == b"3", "the transaction was not replayed"
    redis_stack.client(int(master["port"]), host=master["ip"]).delete(key)


@pytest.mark.parametrize("login", ["none", "unknown user"])
def test_kafka_refuses_a_stranger_and_nothing_reaches_camera_events(
    local_platform: RunningPlatform, login: str
) -> None:
    before = _high_watermarks(local_platform, CAMERA_EVENTS)
    marker = f"stranger-{uuid.uuid4().hex}".encode()
    config: dict[str, Any] = {"bootstrap.servers": local_platform.kafka_config()["bootstrap.servers"]}
    if login != "none":
        config |= {
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": "stranger",
            "sasl.password": "guessed",
        }
    error, reported, logged = _produce_once(config, CAMERA_EVENTS, marker)
    assert error is not None and error.code() == KafkaError._MSG_TIMED_OUT, error
    if login == "none":
        # No SASL at all: the broker drops the connection before it serves any request.
        assert any(words in logged for words in DROPPED), logged
    else:
        assert KafkaError._AUTHENTICATION in reported, (reported, logged)
        assert "Authentication failed" in logged and "invalid credentials" in logged, logged
    assert marker not in _read_from(local_platform, CAMERA_EVENTS, before)


def _metadata_request() -> bytes:
    """A Kafka Metadata v0 request (all topics), as a client sends it without logging in."""
    client = b"probe"
    body = struct.pack(">hhih", 3, 0, 1, len(client)) + client + struct.pack(">i", 0)
    return struct.pack(">i", len(body)) + body


@pytest.mark.parametrize("listener", ["kafka_broker", "kafka_controller"])
def test_every_kafka_listener_drops_a_client_that_does_not_log_in(
    local_platform: RunningPlatform, listener: str
) -> None:
    """A request before a SASL handshake: the broker or controller closes the connection instead
    of answering (a PLAINTEXT listener would answer with the cluster's metadata)."""
    for port in local_platform.cfg.ports.many(listener):
        with socket.create_connection((HOST, port), timeout=5) as conn:
            conn.sendall(_metadata_request())
            try:
                answer = conn.recv(4096)
            except ConnectionResetError:
                answer = b""
        assert answer == b"", f"{listener} {port} answered a client that did not log in"


def test_the_controller_listener_refuses_a_guessed_password(local_platform: RunningPlatform) -> None:
    """The KRaft controllers' own listener: SASL/PLAIN with the controllers' generated password."""
    controller = f"{HOST}:{local_platform.cfg.ports.many('kafka_controller')[0]}"
    config: dict[str, Any] = {
        "bootstrap.servers": controller,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "PLAIN",
        "sasl.username": "controller",
        "sasl.password": "guessed",
    }
    reported: set[int] = set()
    logger, log = _client_log()
    producer = Producer({**config, "error_cb": lambda error: reported.add(error.code()), "logger": logger})
    deadline = time.monotonic() + 20
    while KafkaError._AUTHENTICATION not in reported and time.monotonic() < deadline:
        producer.poll(0.5)
    assert KafkaError._AUTHENTICATION in reported, (reported, log.lines)
    assert any("Authentication failed" in line for line in log.lines), log.lines


def test_the_api_kafka_user_can_neither_consume_camera_events_nor_write_alerts(
    local_platform: RunningPlatform,
) -> None:
    api = kafka_login(local_platform, "its-api")
    assert api["sasl.username"] == "its-api"
    error, _, _ = _produce_once(api, ALERTS, b"the api never raises alerts")
    assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, error
    # In the worker's consumer group: the group is not the API's.
    refused = KafkaError.GROUP_AUTHORIZATION_FAILED
    errors = _consume_errors(
        {**api, "group.id": "its-worker"}, lambda c: c.subscribe([CAMERA_EVENTS]), refused
    )
    assert refused in errors, errors
    # Partitions assigned by hand, from offset 0, outside any group's offsets: fetching from the
    # topic itself is refused (librdkafka insists on a group.id; that group is refused too).
    refused = KafkaError.TOPIC_AUTHORIZATION_FAILED
    errors = _consume_errors(
        {**api, "group.id": f"probe-{uuid.uuid4().hex[:6]}"},
        lambda c: c.assign([TopicPartition(CAMERA_EVENTS, 0, 0)]),
        refused,
    )
    assert refused in errors, errors


def test_the_ingest_kafka_user_writes_camera_events_only(local_platform: RunningPlatform) -> None:
    ingest = kafka_login(local_platform, "its-ingest")
    assert ingest["sasl.username"] == "its-ingest"
    error, _, _ = _produce_once(ingest, ALERTS, b"the ingest never raises alerts")
    assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, error
    refused = KafkaError.GROUP_AUTHORIZATION_FAILED
    errors = _consume_errors(
        {**ingest, "group.id": "its-worker"}, lambda c: c.subscribe([CAMERA_EVENTS]), refused
    )
    assert refused in errors, errors


def test_the_ingest_redis_user_is_confined_to_its_membership_and_health(
    local_platform: RunningPlatform,
) -> None:
    creds = redis_login(local_platform, "its-ingest")
    sentinel = redis.Redis(
        host=HOST,
        port=local_platform.cfg.ports.many("sentinel")[0],
        username=creds["sentinel_username"],
        password=creds["sentinel_password"],
        socket_timeout=2,
    )
    masters = cast(dict[str, dict[str, Any]], sentinel.sentinel_masters())
    master = redis.Redis(
        host=str(masters[MASTER]["ip"]),
        port=int(masters[MASTER]["port"]),
        username=creds["username"],
        password=creds["password"],
        socket_timeout=2,
    )
    # What the ingest sends: its membership and a camera's health, each in MULTI/EXEC.
    members, health = f"its:ingest:{PROBE}-members", f"its:ingest:camera:{PROBE}-cam"
    with master.pipeline(transaction=True) as pipe:
        pipe.zadd(members, {"probe-replica": time.time() + 5})
        pipe.zremrangebyscore(members, "-inf", time.time())
        pipe.zrangebyscore(members, time.time(), "+inf")
        pipe.hset(health, mapping={"state": "online"})
        pipe.expire(health, 60)
        assert pipe.execute()[2] == [b"probe-replica"]
    assert master.zrem(members, "probe-replica") == 1
    refused = redis.exceptions.NoPermissionError
    with pytest.raises(refused):
        master.hset(f"its:counts:latest:{PROBE}", "car", 1)  # the worker's keys
    with pytest.raises(refused):
        master.incr(f"its:ratelimit:{PROBE}")  # the API's
    with pytest.raises(refused):
        master.hgetall(health)  # it writes health; the API reads it
    with pytest.raises(refused):
        master.flushall()
    local_platform.platform.stack(Redis).client(int(masters[MASTER]["port"])).delete(health)


def test_the_worker_kafka_user_cannot_write_camera_events(local_platform: RunningPlatform) -> None:
    worker = kafka_login(local_platform, "its-worker")
    error, _, _ = _produce_once(worker, CAMERA_EVENTS, b"the worker never writes frames")
    assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, error


def _consume_errors(config: dict[str, Any], start: Callable[[Consumer], None], wanted: int) -> set[int]:
    """Poll until the consumer reports `wanted` (or 20 s pass); every error code it reported."""
    consumer = Consumer({**config, "auto.offset.reset": "earliest", "enable.auto.commit": False})
    errors: set[int] = set()
    try:
        start(consumer)
        deadline = time.monotonic() + 20
        while wanted not in errors and time.monotonic() < deadline:
            try:
                message = consumer.poll(1)
            except KafkaException as error:
                errors.add(error.args[0].code())
                continue
            failure = message.error() if message is not None else None
            if failure is not None:
                errors.add(failure.code())
            elif message is not None:
                pytest.fail(f"read a message it may not read: offset {message.offset()}")
    finally:
        consumer.close()
    return errors


def test_redis_and_every_sentinel_refuse_an_unauthenticated_ping(local_platform: RunningPlatform) -> None:
    ports = local_platform.cfg.ports
    for port in ports.many("redis") + ports.many("sentinel"):
        # RESP2: the client sends PING itself (RESP3 would send HELLO first, refused as well).
        with pytest.raises(redis.AuthenticationError, match=r"Authentication required"):
            _once(port, protocol=2).ping()
        with pytest.raises(redis.AuthenticationError, match=r"HELLO must be called with the client already"):
            _once(port, protocol=3).ping()
        # The default user is off: no password makes it answer.
        with pytest.raises(redis.AuthenticationError):
            _once(port, password="guessed").ping()
        with pytest.raises(redis.AuthenticationError):
            _once(port, username="stranger", password="x").ping()


def _once(
    port: int, protocol: int = 2, username: str | None = None, password: str | None = None
) -> redis.Redis:
    """A client that tries once: redis-py retries an AuthenticationError (a ConnectionError)
    three times with backoff by default, seconds per refusal."""
    return redis.Redis(
        host=HOST,
        port=port,
        protocol=protocol,
        username=username,
        password=password,
        socket_timeout=2,
        retry=Retry(NoBackoff(), 0),
    )


def test_the_api_redis_user_is_confined_to_its_keys_and_commands(local_platform: RunningPlatform) -> None:
    creds = redis_login(local_platform, "its-api")
    assert creds["username"] == "its-api"
    sentinel_port = local_platform.cfg.ports.many("sentinel")[0]
    sentinel = redis.Redis(
        host=HOST,
        port=sentinel_port,
        username=creds["sentinel_username"],
        password=creds["sentinel_password"],
        socket_timeout=2,
    )
    # What redis-py's Sentinel client asks (and all the API's Sentinel user may ask).
    masters = cast(dict[str, dict[str, Any]], sentinel.sentinel_masters())
    host, port = str(masters[MASTER]["ip"]), int(masters[MASTER]["port"])
    master = redis.Redis(
        host=host, port=port, username=creds["username"], password=creds["password"], socket_timeout=2
    )
    assert master.ping()
    # What the API does: a rate-limit counter.
    key = f"its:ratelimit:{PROBE}:{uuid.uuid4().hex[:6]}"
    assert master.incr(key) == 1 and master.expire(key, 60)
    refused = redis.exceptions.NoPermissionError
    with pytest.raises(refused):
        master.flushall()
    with pytest.raises(refused):
        master.config_get("*")
    with pytest.raises(refused):
        master.config_set("maxmemory", "1mb")
    with pytest.raises(refused):
        master.keys("*")
    with pytest.raises(refused, match="key"):
        master.incr(f"outside:{PROBE}")  # a key outside its:*
    with pytest.raises(refused):
        master.hset(f"its:counts:latest:{PROBE}", "car", 1)  # the worker's keys: read only
    # On the Sentinels: discovery only, none of the commands that move or forget the master.
    with pytest.raises(refused):
        sentinel.sentinel_failover(MASTER)
    with pytest.raises(refused):
        sentinel.sentinel_set(MASTER, "quorum", "1")
    with pytest.raises(refused):
        sentinel.sentinel_remove(MASTER)
    local_platform.platform.stack(Redis).client(port, host=host).delete(key)


def test_vault_gives_each_identity_its_own_data_plane_credentials(local_platform: RunningPlatform) -> None:
    seen: dict[str, str] = {}
    for identity in ("its-api", "its-worker", "its-ingest"):
        prefix = identity.removeprefix("its-")
        for store in ("kafka", "redis"):
            creds = vault_credentials(local_platform, identity, f"its/{prefix}/{store}")
            assert creds["username"] == identity
            seen[f"{identity}/{store}"] = creds["password"]
    assert len(set(seen.values())) == len(seen), "two identities or stores share a password"


def test_the_alert_receiver_refuses_a_page_without_the_platform_s_token(
    local_platform: RunningPlatform,
) -> None:
    """Alertmanager logs in to the receiver (the live alert tests see its deliveries arrive);
    a client without the generated token can neither post a page nor read one."""
    cfg = local_platform.cfg
    url = f"http://{HOST}:{cfg.ports.alert_receiver}"
    page = {"status": "firing", "receiver": "pages", "alerts": [{"labels": {"alertname": PROBE}}]}
    assert httpx.post(f"{url}/pages", json=page, timeout=5).status_code == 401
    assert httpx.get(url, timeout=5).status_code == 401
    token_file = cfg.alert_receiver_token_file
    assert token_file.stat().st_mode & 0o777 == 0o600
    rendered = (cfg.conf_dir / "alertmanager.yml").read_text()
    assert f"credentials_file: {token_file}" in rendered
    assert token_file.read_text().strip() not in rendered
    received = AlertReceiver.of(cfg).received()
    assert not [a for n in received for a in n.alerts if a.name == PROBE]
