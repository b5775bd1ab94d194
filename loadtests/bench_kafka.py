"""Benchmark: the app's Kafka producer path against Kafka's own producer benchmark, same run.

`python -m loadtests.bench_kafka [--records N] [--concurrency C]` against the running platform
(`make up`). Both write records of a camera-event's size, acks=all, to a drill topic of this
run's own made like camera-events (its partitions, replication factor and min.insync from
infrastructure/kafka/topics.yaml), deleted afterwards, logged in as the platform's admin:

1. Kafka's ProducerPerformance (`kafka-producer-perf-test`), with the app's producer settings
   (acks=all, idempotence, the API's linger.ms of 0), throughput unbounded;
2. the API's path: `AcknowledgedProducer.send`, each send awaiting its own acknowledgement as
   a frame request does, from C concurrent senders.

Prints both rates and the ratio app / Kafka (goal >= 0.8). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from app.common.clients import AcknowledgedProducer
from app.common.contracts import FrameEvent, frame_id_for, frame_object_key
from infra.facts.topics import topics
from infra.local.config import LocalPlatformConfig
from infra.local.platform import Platform
from infra.local.stacks import Kafka

# The API's producer settings (app.common.clients.kafka_producer with the API's linger of 0).
APP_PRODUCER = {"acks": "all", "enable.idempotence": True, "linger.ms": 0, "message.timeout.ms": 10000}
PERF_RESULT = re.compile(r"(\d+) records sent, ([\d.]+) records/sec")


def camera_event_size() -> int:
    """The bytes of one camera-event as the API publishes it."""
    frame_id = frame_id_for("camera-0001", "bench")
    event = FrameEvent(
        frame_id=frame_id,
        camera_id="camera-0001",
        object_key=frame_object_key("camera-0001", frame_id, "0" * 16, "jpg"),
        captured_at=datetime.now(UTC),
        content_type="image/jpeg",
    )
    return len(event.model_dump_json().encode())


def create_topic(admin: AdminClient) -> str:
    shape = topics()
    model = shape.topics.camera_events
    name = f"bench-producer-{uuid.uuid4().hex[:8]}"
    spec = NewTopic(
        name,
        num_partitions=model.partitions,
        replication_factor=shape.replication_factor(model),
        config={"min.insync.replicas": shape.config(model)["min.insync.replicas"]},
    )
    admin.create_topics([spec])[name].result(30)
    return name


def perf_test(kafka: Kafka, topic: str, records: int, size: int, client: dict[str, Any]) -> float:
    """Kafka's own producer benchmark; its records/s."""
    with tempfile.TemporaryDirectory() as scratch:
        config = Path(scratch) / "producer.properties"
        jaas = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{client["sasl.username"]}" password="{client["sasl.password"]}";'
        )
        config.write_text(
            f"security.protocol={client['security.protocol']}\n"
            f"sasl.mechanism={client['sasl.mechanism']}\n"
            f"sasl.jaas.config={jaas}\n"
        )
        config.chmod(0o600)
        result = subprocess.run(
            [
                "java",
                "-cp",
                f"{kafka.cfg.tools.kafka_home / 'libs'}/*",
                "org.apache.kafka.tools.ProducerPerformance",
                "--topic",
                topic,
                "--num-records",
                str(records),
                "--record-size",
                str(size),
                "--throughput",
                "-1",
                "--producer.config",
                str(config),
                "--producer-props",
                f"bootstrap.servers={client['bootstrap.servers']}",
                *(f"{key}={str(value).lower()}" for key, value in APP_PRODUCER.items()),
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
    found = PERF_RESULT.findall(result.stdout)
    if not found:
        raise SystemExit(f"ProducerPerformance printed no result:\n{result.stdout}{result.stderr}")
    sent, rate = found[-1]
    if int(sent) != records:
        raise SystemExit(f"ProducerPerformance sent {sent} of {records} records")
    return float(rate)


async def app_path(client: dict[str, Any], topic: str, records: int, size: int, concurrency: int) -> float:
    """The API's path: each send awaits its own acknowledgement, C senders at once; records/s."""
    producer = AcknowledgedProducer(Producer({**client, **APP_PRODUCER}))
    value = b"x" * size
    remaining = iter(range(records))

    async def sender() -> None:
        for number in remaining:
            await producer.send(topic, f"camera-{number % 64:04d}", value)

    try:
        await producer.send(topic, "warm-up", value)  # metadata and connections, as a warm API has
        started = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(concurrency)))
        return records / (time.perf_counter() - started)
    finally:
        producer.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args(argv)
    platform = Platform(LocalPlatformConfig.load(), log=lambda _line: None)
    kafka = platform.stack(Kafka)
    client = kafka.client_config()
    admin = kafka.admin()
    size = camera_event_size()
    topic = create_topic(admin)
    try:
        kafka_rate = perf_test(kafka, topic, args.records, size, client)
        app_rate = asyncio.run(app_path(client, topic, args.records, size, args.concurrency))
    finally:
        admin.delete_topics([topic])[topic].result(30)
    print(f"records of {size} bytes (a camera-event), acks=all, to a topic shaped like camera-events")
    print(f"kafka-producer-perf-test: {kafka_rate:,.0f} records/s")
    print(f"the API's producer path ({args.concurrency} concurrent sends): {app_rate:,.0f} records/s")
    print(f"ratio app / Kafka: {app_rate / kafka_rate:.2f} (goal >= 0.8)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
