"""DataStacks: the data stacks and operators of the catalogue as Helm releases, installed wave by
wave, and the Kafka cluster its-kafka (Strimzi custom resources, KRaft)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.facts.redis import RedisFile, redis_settings
from infra.facts.stack_config import KafkaConfig
from infra.pulumi.catalogue import Catalogue, helm_release

KAFKA_NAME = "its-kafka"
KAFKA_NAMESPACE = "kafka"
KAFKA_NODE_POOL = "dual-role"
STRIMZI_RELEASE = "strimzi-kafka-operator"
STRIMZI_API = "kafka.strimzi.io/v1beta2"
REDIS_RELEASE = "redis"


def redis_release_values(settings: RedisFile) -> dict[str, Any]:
    """infrastructure/redis/redis.yaml in the redis-ha chart's terms: the one definition of the
    master name, the topology and every Redis and Sentinel directive, injected by the program so
    the release's values files never repeat them."""
    return {
        "replicas": 1 + settings.replicas,
        "redis": {
            "masterGroupName": settings.master_name,
            "config": {key: str(value) for key, value in settings.config.items()},
        },
        "sentinel": {
            "quorum": settings.sentinel.quorum,
            "config": {key: str(value) for key, value in settings.sentinel.config.items()},
        },
    }


# Values only the program holds, per release: facts of infrastructure/ in a chart's terms.
PROGRAM_VALUES = {REDIS_RELEASE: lambda: redis_release_values(redis_settings())}


@dataclass(frozen=True)
class DataStacksArgs:
    environment: str
    catalogue: Catalogue
    # Releases of this component (the device plugin and the autoscaler belong to NodePools).
    releases: Sequence[str]
    kafka: KafkaConfig
    provider: k8s.Provider
    protect: bool
    depends_on: Sequence[pulumi.Resource] = ()


def kafka_node_pool_spec(kafka: KafkaConfig) -> dict[str, Any]:
    return {
        "replicas": kafka.replicas,
        # KRaft: every node is both controller and broker; a quorum of 3 survives one loss.
        "roles": ["controller", "broker"],
        "storage": {
            "type": "jbod",
            "volumes": [
                {
                    "id": 0,
                    "type": "persistent-claim",
                    "size": f"{kafka.storage_gib}Gi",
                    "deleteClaim": False,
                    "kraftMetadata": "shared",
                }
            ],
        },
        "template": {
            "pod": {
                "affinity": {
                    "podAntiAffinity": {
                        "preferredDuringSchedulingIgnoredDuringExecution": [
                            {
                                "weight": 100,
                                "podAffinityTerm": {
                                    "topologyKey": "topology.kubernetes.io/zone",
                                    "labelSelector": {"matchLabels": {"strimzi.io/cluster": KAFKA_NAME}},
                                },
                            }
                        ]
                    }
                }
            }
        },
    }


def kafka_spec(kafka: KafkaConfig) -> dict[str, Any]:
    internal_replication = kafka.replication_factor
    return {
        "kafka": {
            "version": kafka.version,
            # Plain 9092 is what the app's config names (its-kafka-kafka-bootstrap.kafka.svc:9092);
            # NetworkPolicies of the charts restrict who reaches it. 9093 is TLS for later clients.
            "listeners": [
                {"name": "plain", "port": 9092, "type": "internal", "tls": False},
                {"name": "tls", "port": 9093, "type": "internal", "tls": True},
            ],
            "config": {
                "default.replication.factor": kafka.replication_factor,
                "min.insync.replicas": kafka.min_insync_replicas,
                "offsets.topic.replication.factor": internal_replication,
                "transaction.state.log.replication.factor": internal_replication,
                "transaction.state.log.min.isr": kafka.min_insync_replicas,
                # Topics come from the its-kafka-topics chart (KafkaTopic objects), never from typos.
                "auto.create.topics.enable": False,
            },
            "rack": {"topologyKey": "topology.kubernetes.io/zone"},
        },
        "entityOperator": {"topicOperator": {}, "userOperator": {}},
    }


class DataStacks(pulumi.ComponentResource):
    def __init__(self, name: str, args: DataStacksArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("its:data:DataStacks", name, None, opts)
        self.releases: dict[str, k8s.helm.v3.Release] = {}
        previous_waves: list[pulumi.Resource] = list(args.depends_on)
        # A wave waits for every earlier wave: operators and their CRDs before what uses them.
        for _, wave in groupby(args.catalogue.in_wave_order(args.releases), key=lambda r: r.sync_wave):
            created = {
                release.name: helm_release(
                    release,
                    environment=args.environment,
                    provider=args.provider,
                    parent=self,
                    depends_on=previous_waves,
                    protect=args.protect,
                    program_values=PROGRAM_VALUES[release.name]() if release.name in PROGRAM_VALUES else None,
                )
                for release in wave
            }
            self.releases.update(created)
            previous_waves = [*previous_waves, *created.values()]

        self.kafka_resources: list[k8s.apiextensions.CustomResource] = []
        if STRIMZI_RELEASE in self.releases:
            self.kafka_resources = self._kafka(name, args)

        self.register_outputs({"releases": list(self.releases)})

    def _kafka(self, name: str, args: DataStacksArgs) -> list[k8s.apiextensions.CustomResource]:
        opts = pulumi.ResourceOptions(
            parent=self,
            provider=args.provider,
            depends_on=[self.releases[STRIMZI_RELEASE]],
            protect=args.protect,
        )
        labels = {"app.kubernetes.io/part-of": "its-camera-ai", "strimzi.io/cluster": KAFKA_NAME}
        node_pool = k8s.apiextensions.CustomResource(
            f"{name}-kafka-node-pool",
            api_version=STRIMZI_API,
            kind="KafkaNodePool",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=KAFKA_NODE_POOL, namespace=KAFKA_NAMESPACE, labels=labels
            ),
            spec=kafka_node_pool_spec(args.kafka),
            opts=opts,
        )
        cluster = k8s.apiextensions.CustomResource(
            f"{name}-kafka",
            api_version=STRIMZI_API,
            kind="Kafka",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=KAFKA_NAME,
                namespace=KAFKA_NAMESPACE,
                labels={"app.kubernetes.io/part-of": "its-camera-ai"},
            ),
            spec=kafka_spec(args.kafka),
            opts=opts,
        )
        return [node_pool, cluster]
