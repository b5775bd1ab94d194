"""Client factories: one place that knows how the app reaches each store."""

from __future__ import annotations

import asyncio

import asyncpg
from confluent_kafka import KafkaError, Message, Producer
from minio import Minio
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

from app.common.secrets import VaultSecrets, identity_path
from app.common.settings import Settings


async def database_pool(settings: Settings, secrets: VaultSecrets) -> asyncpg.Pool:
    # statement_cache_size=0: PgBouncer hands a session's server connection to another client
    # after a failover; cached prepared statements would not exist there.
    return await asyncpg.create_pool(
        secrets.database_dsn(),
        min_size=1,
        max_size=settings.database_pool_size,
        statement_cache_size=0,
        command_timeout=10,
    )


def redis_sentinel(settings: Settings) -> Sentinel:
    return Sentinel(settings.sentinel_addresses, socket_timeout=1.0)  # type: ignore[no-untyped-call]


def rate_limit_redis(settings: Settings) -> Redis:
    """The master, for the per-key rate limit. It sits on every request's path, so it fails fast
    (short timeouts, no retries: redis-py's default retries take seconds on a refused port) and
    the limiter falls back to its in-process window instead of making requests wait."""

    def fast() -> dict[str, object]:
        return {"socket_timeout": 0.25, "socket_connect_timeout": 0.25, "retry": Retry(NoBackoff(), 0)}

    sentinel = Sentinel(settings.sentinel_addresses, sentinel_kwargs=fast(), **fast())  # type: ignore[no-untyped-call]
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
    )


def kafka_producer(settings: Settings) -> Producer:
    # acks=all with idempotence: an acknowledged event is on min.insync replicas, exactly once.
    return Producer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
            "message.timeout.ms": 10000,
        }
    )


async def produce_and_wait(producer: Producer, topic: str, key: str, value: bytes) -> None:
    """Produce one message and wait for the broker's acknowledgement (raises if refused)."""
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

    producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
    await loop.run_in_executor(None, producer.flush, 10)
    await asyncio.wait_for(done, timeout=12)
