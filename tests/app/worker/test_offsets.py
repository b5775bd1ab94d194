"""The offsets the worker's pipeline commits and rewinds to, from the messages of its batches:
a batch commits past its own last message per partition (never the consumer's position, which
is already past the batches behind it), and a rewind goes back to the first message per
partition of every batch still in flight."""

from __future__ import annotations

from confluent_kafka import Message

from app.common.contracts import FRAMES_TOPIC
from app.worker.consumer import _first_offsets, _next_offsets


def _at(partition: int, offset: int) -> Message:
    return Message(topic=FRAMES_TOPIC, partition=partition, offset=offset, value=b"{}")


def test_a_batch_commits_the_offset_after_its_last_message_in_each_partition() -> None:
    batch = [_at(0, 7), _at(1, 40), _at(0, 9), _at(0, 8), _at(1, 41)]
    committed = {(tp.topic, tp.partition): tp.offset for tp in _next_offsets(batch)}
    assert committed == {(FRAMES_TOPIC, 0): 10, (FRAMES_TOPIC, 1): 42}


def test_a_rewind_goes_back_to_the_first_message_of_every_batch_in_flight() -> None:
    older, newer = [_at(0, 12), _at(2, 3)], [_at(0, 14), _at(1, 5), _at(2, 4)]
    assert _first_offsets(newer + older) == {0: 12, 1: 5, 2: 3}
    assert _first_offsets([]) == {}
