"""infrastructure/kafka/users.yaml: the app's Kafka identities and their ACLs, topics by role."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Literal

from pydantic import Field, field_validator

from infra.facts._load import Strict, load
from infra.facts.paths import INFRASTRUCTURE
from infra.facts.topics import TopicsFile, topics

USERS_FILE = INFRASTRUCTURE / "kafka" / "users.yaml"

# Strimzi's spelling of Kafka's ACL operations, by the resource they apply to.
TopicOperation = Literal["Read", "Write", "Describe", "DescribeConfigs"]
GroupOperation = Literal["Read", "Describe"]
ClusterOperation = Literal["IdempotentWrite"]
ResourceType = Literal["topic", "group", "cluster"]
# Kafka's name of the cluster resource (what an ACL on the cluster is bound to).
CLUSTER_RESOURCE = "kafka-cluster"


class TopicGrant(Strict):
    role: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    operations: list[TopicOperation] = Field(min_length=1)


class GroupGrant(Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9.-]*$")
    operations: list[GroupOperation] = Field(min_length=1)


class KafkaUser(Strict):
    description: str = Field(min_length=1)
    topics: list[TopicGrant] = Field(default_factory=list)
    groups: list[GroupGrant] = Field(default_factory=list)
    cluster: list[ClusterOperation] = Field(default_factory=list)


@dataclass(frozen=True, order=True)
class Acl:
    """One ALLOW binding, literal pattern, any host: what the brokers and Strimzi both hold."""

    principal: str  # User:<name>
    resource_type: ResourceType
    resource_name: str
    operation: str


class KafkaUsersFile(Strict):
    users: dict[str, KafkaUser]

    @field_validator("users")
    @classmethod
    def _names(cls, value: dict[str, KafkaUser]) -> dict[str, KafkaUser]:
        for name in value:
            # A SCRAM user name, a Strimzi KafkaUser name and a Vault path segment at once.
            if not name.replace("-", "").isalnum() or not name[0].isalpha() or name != name.lower():
                raise ValueError(f"{name!r}: lower-case letters, digits and '-' only")
        return value

    def names(self) -> list[str]:
        return list(self.users)

    def topic_grants(self, user: str, shared: TopicsFile) -> list[tuple[str, TopicGrant]]:
        """(topic name, grant) for each topic role of `user` that topics.yaml defines; a role it
        does not define yet is skipped (see skipped_roles)."""
        return [
            (getattr(shared.topics, grant.role).name, grant)
            for grant in self.users[user].topics
            if grant.role in type(shared.topics).model_fields
        ]

    def skipped_roles(self, shared: TopicsFile) -> list[str]:
        """Topic roles named here that topics.yaml does not define (their grants wait for them)."""
        return sorted(
            {
                grant.role
                for user in self.users.values()
                for grant in user.topics
                if grant.role not in type(shared.topics).model_fields
            }
        )

    def acls(self, user: str, shared: TopicsFile) -> list[Acl]:
        principal = f"User:{user}"
        spec = self.users[user]
        found = [
            Acl(principal, "topic", name, operation)
            for name, grant in self.topic_grants(user, shared)
            for operation in grant.operations
        ]
        found += [
            Acl(principal, "group", group.name, operation)
            for group in spec.groups
            for operation in group.operations
        ]
        found += [Acl(principal, "cluster", CLUSTER_RESOURCE, operation) for operation in spec.cluster]
        return sorted(set(found))

    def all_acls(self, shared: TopicsFile | None = None) -> list[Acl]:
        shared = shared or topics()
        return [acl for user in self.users for acl in self.acls(user, shared)]


def secret_name(user: str) -> str:
    """The key of a Kafka identity's generated password in the local platform's secrets."""
    return "kafka_" + user.replace("-", "_")


@cache
def kafka_users() -> KafkaUsersFile:
    return load(KafkaUsersFile, USERS_FILE)
