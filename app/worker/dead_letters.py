"""Inspect and replay the worker's dead letters (docs/runbooks/dead-letters.md).

  python -m app.worker.dead_letters show [--reason R] [--bootstrap B]
      one JSON line per dead letter, oldest first in each partition: where it sits on the
      dead-letter topic ("at": partition:offset), where it came from, why, and its original value
  python -m app.worker.dead_letters replay PARTITION:OFFSET [...] [--bootstrap B]
      produce each one's original value, with its original key, back onto its original topic
      (acks=all); the worker then handles it like any event, and a frame already recorded counts
      nothing twice. Fix the cause first, or it comes straight back.

Reading joins no consumer group and commits nothing: the worker's offsets are never touched.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from app.common.clients import kafka_config
from app.common.contracts import DEAD_LETTERS_TOPIC, DeadLetterEvent
from app.common.secrets import Credentials
from app.common.settings import Settings


@dataclass(frozen=True)
class Stored:
    partition: int
    offset: int
    letter: DeadLetterEvent

    @property
    def at(self) -> str:
        return f"{self.partition}:{self.offset}"


def read(connection: dict[str, Any], timeout: float = 30) -> list[Stored]:
    """Every dead letter on the topic now, read up to each partition's end. `connection`: the
    librdkafka settings of who reads (bootstrap servers, SASL login)."""
    consumer = Consumer(
        {
            **connection,
            "group.id": f"its-dead-letters-reader-{uuid.uuid4().hex}",  # never joined, never committed
            "enable.auto.commit": False,
        }
    )
    try:
        metadata = consumer.list_topics(DEAD_LETTERS_TOPIC, timeout=timeout)
        if DEAD_LETTERS_TOPIC not in metadata.topics or metadata.topics[DEAD_LETTERS_TOPIC].error:
            raise RuntimeError(f"topic {DEAD_LETTERS_TOPIC} not found")
        ends: dict[int, int] = {}
        starts = []
        for partition in metadata.topics[DEAD_LETTERS_TOPIC].partitions:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(DEAD_LETTERS_TOPIC, partition), timeout=timeout
            )
            if high > low:
                ends[partition] = high
                starts.append(TopicPartition(DEAD_LETTERS_TOPIC, partition, low))
        consumer.assign(starts)
        found: list[Stored] = []
        deadline = time.monotonic() + timeout
        while ends and time.monotonic() < deadline:
            message = consumer.poll(1)
            if message is None or message.error():
                continue
            partition, offset = message.partition() or 0, message.offset() or 0
            letter = DeadLetterEvent.model_validate_json(message.value() or b"")
            found.append(Stored(partition, offset, letter))
            if offset + 1 >= ends.get(partition, 0):
                ends.pop(partition, None)
        if ends:
            raise TimeoutError(f"{DEAD_LETTERS_TOPIC} partitions {sorted(ends)} not read within {timeout}s")
        return found
    finally:
        consumer.close()


def replay(connection: dict[str, Any], letters: list[Stored], timeout: float = 30) -> None:
    """Produce each letter's original value and key onto its original topic; raise unless acknowledged."""
    for stored in letters:
        if stored.letter.value_truncated:
            raise ValueError(f"{stored.at}: only part of the original value was kept; it cannot be replayed")
    producer = Producer({**connection, "acks": "all", "enable.idempotence": True})
    failures: list[KafkaError] = []

    def delivered(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            failures.append(error)

    for stored in letters:
        letter = stored.letter
        producer.produce(letter.topic, key=letter.key, value=letter.original_value(), on_delivery=delivered)
    if producer.flush(timeout) or failures:
        raise RuntimeError(f"replay not acknowledged by Kafka: {failures[:3]}")


def _show_line(stored: Stored) -> str:
    shown = stored.letter.model_dump(mode="json", exclude={"value_base64"})
    value = stored.letter.original_value().decode("utf-8", errors="backslashreplace")
    return json.dumps({"at": stored.at, **shown, "value": value})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bootstrap", help="Kafka bootstrap servers (default: ITS_KAFKA_BOOTSTRAP_SERVERS)")
    # Kafka answers no one who does not log in: an operator's user that may read the dead-letter
    # topic and write camera-events (the platform's admin locally; docs/runbooks/dead-letters.md).
    parser.add_argument("--user", default=os.environ.get("ITS_KAFKA_USERNAME"), help="(ITS_KAFKA_USERNAME)")
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("show", help="print the dead letters as JSON lines")
    show.add_argument("--reason", help="only this reason (undecodable_event, object_missing, ...)")
    again = commands.add_parser("replay", help="produce dead letters back onto their original topic")
    again.add_argument("at", nargs="+", metavar="PARTITION:OFFSET", help='as "at" in the show output')
    args = parser.parse_args(argv)
    settings = Settings()
    password = os.environ.get("ITS_KAFKA_PASSWORD")
    if not args.user or password is None:
        parser.error("a Kafka login is needed: --user (or ITS_KAFKA_USERNAME) and ITS_KAFKA_PASSWORD")
    connection = kafka_config(settings, Credentials(args.user, password))
    if args.bootstrap:
        connection["bootstrap.servers"] = args.bootstrap
    letters = read(connection)
    if args.command == "show":
        for stored in letters:
            if args.reason in (None, stored.letter.reason):
                print(_show_line(stored))
        return 0
    by_position = {stored.at: stored for stored in letters}
    unknown = [at for at in args.at if at not in by_position]
    if unknown:
        print(f"no dead letter at {', '.join(unknown)} on {DEAD_LETTERS_TOPIC}", file=sys.stderr)
        return 1
    replay(connection, [by_position[at] for at in args.at])
    print(f"replayed {len(args.at)} dead letters")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
