"""infrastructure/kafka/topics.yaml: the platform's Kafka topics, by the role each plays."""

from __future__ import annotations

from functools import cache

from pydantic import Field

from infra.facts._load import Strict, by_role, load
from infra.facts.paths import INFRASTRUCTURE

TOPICS_FILE = INFRASTRUCTURE / "kafka" / "topics.yaml"
TopicName = str


class TopicDefaults(Strict):
    replication_factor: int = Field(ge=1)
    config: dict[str, str]


class Topic(Strict):
    name: TopicName = Field(pattern=r"^[a-z][a-z0-9.-]{0,248}$")
    description: str = Field(min_length=1)
    partitions: int = Field(ge=1, le=1000)
    replication_factor: int | None = Field(default=None, ge=1)
    config: dict[str, str] = Field(default_factory=dict)


class TopicRoles(Strict):
    """The topics by role: a role the app names and the file lacks fails here, not at run time."""

    camera_events: Topic
    vehicle_detections: Topic
    alerts: Topic
    dead_letters: Topic


class TopicsFile(Strict):
    defaults: TopicDefaults
    topics: TopicRoles

    def all(self) -> list[Topic]:
        return by_role(self.topics)

    def replication_factor(self, topic: Topic) -> int:
        return topic.replication_factor or self.defaults.replication_factor

    def config(self, topic: Topic) -> dict[str, str]:
        """The topic's config with the defaults merged under it."""
        return {**self.defaults.config, **topic.config}


@cache
def topics() -> TopicsFile:
    return load(TopicsFile, TOPICS_FILE)
