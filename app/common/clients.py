"""Client factories: one place that knows how the app reaches each store."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import asyncpg
import urllib3
from confluent_kafka import Consumer, KafkaError, Message, Producer
from minio import Minio
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

from app.common.secrets import Credentials, RedisCredentials, VaultSecrets, identity_path
from app.common.settings import Settings

# minio's own pool's connect and read timeouts (kept when only the CA changes).
MINIO_TIMEOUT_S = 300.0


async def database_pool(settings: Settings, secrets: VaultSecrets) -> asyncpg.Pool:
    # statement_cache_size=0: PgBouncer hands a session's server connection to another client
    # after a failover; cached prepared statements would not exist there.
    # A fixed, warm pool: every connection opened at start and kept however long it idles, so no
    # request after a quiet spell pays a login (SCRAM through HAProxy and PgBouncer) on its path.
    return await asyncpg.create_pool(
        secrets.database_dsn(),
        min_size=settings.database_pool_size,
        max_size=settings.database_pool_size,
        max_inactive_connection_lifetime=0,
        statement_cache_size=0,
        command_timeout=10,
    )


def redis_sentinel(settings: Settings, credentials: RedisCredentials, *, fail_fast: bool = False) -> Sentinel:
    """Sentinel discovery and the master/replica connections, each logged in as the identity's
    ACL user (the default user is off on every server and Sentinel).

    `fail_fast`: for what sits on every request's path (the per-key rate limit): short
    timeouts and no retries (redis-py's default retries take seconds on a refused port), so the
    caller falls back at once instead of making the request wait."""
    timeouts: dict[str, object] = (
        {"socket_timeout": 0.25, "socket_connect_timeout": 0.25, "retry": Retry(NoBackoff(), 0)}
        if fail_fast
        else {"socket_timeout": 1.0}
    )
    sentinel_login = {"username": credentials.sentinel.username, "password": credentials.sentinel.password}
    return Sentinel(  # type: ignore[no-untyped-call]
        settings.sentinel_addresses,
        sentinel_kwargs={**timeouts, **sentinel_login},
        username=credentials.server.username,
        password=credentials.server.password,
        **timeouts,
    )


def rate_limit_redis(settings: Settings, credentials: RedisCredentials) -> Redis:
    """The master, for the per-key rate limit: fails fast, and the limiter keeps its window in
    process until Redis answers again."""
    sentinel = redis_sentinel(settings, credentials, fail_fast=True)
    master: Redis = sentinel.master_for(settings.redis_master_name)
    return master


def object_store(settings: Settings, secrets: VaultSecrets) -> Minio:
    creds = secrets.get(identity_path(settings, "minio"))
    return Minio(
        settings.minio_endpoint,
        access_key=creds["access_key"],
        secret_key=creds["secret_key"],
        secure=settings.minio_secure,
        region=settings.minio_region,
        http_client=object_store_http(settings),
    )


def object_store_http(settings: Settings) -> urllib3.PoolManager | None:
    """Verifies MinIO against its own CA when one is named (minio's default pool trusts
    SSL_CERT_FILE or certifi's bundle), with minio's own pool settings otherwise."""
    if settings.minio_ca_file is None:
        return None
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=MINIO_TIMEOUT_S, read=MINIO_TIMEOUT_S),
        maxsize=10,
        cert_reqs="CERT_REQUIRED",
        ca_certs=str(settings.minio_ca_file),
        retries=urllib3.Retry(total=5, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
    )


def kafka_config(settings: Settings, credentials: Credentials) -> dict[str, Any]:
    """librdkafka settings every client of the app shares: where the brokers are and how it
    logs in (SCRAM as its own identity, over TLS in a cluster)."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "security.protocol": settings.kafka_security_protocol,
        "sasl.mechanism": settings.kafka_sasl_mechanism,
        "sasl.username": credentials.username,
        "sasl.password": credentials.password,
    }
    if settings.kafka_ssl_ca_location is not None:
        config["ssl.ca.location"] = str(settings.kafka_ssl_ca_location)
    return config


def kafka_producer(settings: Settings, credentials: Credentials, *, linger_ms: int = 5) -> Producer:
    """acks=all with idempotence: an acknowledged event is on min.insync replicas, exactly once.
    `linger_ms`: how long a message waits for others to share its batch (the API, whose
    requests each wait for their own acknowledgement, batches for nobody: 0)."""
    return Producer(
        {
            **kafka_config(settings, credentials),
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": linger_ms,
            "message.timeout.ms": 10000,
        }
    )


def kafka_consumer(settings: Settings, credentials: Credentials) -> Consumer:
    """The worker's consumer: offsets committed by hand, after the database transaction."""
    return Consumer(
        {
            **kafka_config(settings, credentials),
            "group.id": settings.kafka_consumer_group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "partition.assignment.strategy": "cooperative-sticky",
        }
    )


class AcknowledgedProducer:
    """The API's producer: each request awaits its own message's acknowledgement.

    A thread of its own serves librdkafka's delivery reports (poll), so nothing calls flush()
    per request: flush() waits for every message in flight, so concurrent requests would each
    wait for the others' acknowledgements, and each would hold a thread of the default executor
    while it waits."""

    def __init__(self, producer: Producer, poll_interval: float = 0.05, ack_timeout: float = 12) -> None:
        self.producer = producer
        # A backstop over librdkafka's own message.timeout.ms (10 s), which reports a failure.
        self.ack_timeout = ack_timeout
        self._stopped = threading.Event()
        self._poller = threading.Thread(
            target=self._serve_delivery_reports, args=(poll_interval,), name="kafka-delivery", daemon=True
        )
        self._poller.start()

    def _serve_delivery_reports(self, interval: float) -> None:
        while not self._stopped.is_set():
            self.producer.poll(interval)

    async def send(self, topic: str, key: str, value: bytes) -> None:
        """Produce one message and return once the brokers acknowledged it (raises if refused
        or not acknowledged within the timeout)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def on_delivery(error: KafkaError | None, _message: Message) -> None:
            def settle() -> None:
                if done.done():
                    return
                if error is None:
                    done.set_result(None)
                else:
                    done.set_exception(RuntimeError(f"kafka did not acknowledge: {error}"))

            loop.call_soon_threadsafe(settle)

        self.producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
        await asyncio.wait_for(done, timeout=self.ack_timeout)

    def list_topics(self, topic: str, timeout: float) -> Any:
        return self.producer.list_topics(topic, timeout)

    def close(self, timeout: float = 5) -> int:
        """Stop serving reports and deliver what is queued; returns the messages left over."""
        self._stopped.set()
        self._poller.join(timeout=1)
        return int(self.producer.flush(timeout))
