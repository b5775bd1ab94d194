"""DataStacks: the data stacks and operators of the catalogue as Helm releases, installed wave by
wave, and the Kafka cluster its-kafka (Strimzi custom resources, KRaft)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.facts.paths import INFRASTRUCTURE
from infra.facts.redis import RedisFile, redis_settings
from infra.facts.stack_config import KafkaConfig
from infra.pulumi.catalogue import Catalogue, helm_release

KAFKA_NAME = "its-kafka"
KAFKA_NAMESPACE = "kafka"
KAFKA_NODE_POOL = "dual-role"
KAFKA_LISTENER, KAFKA_PORT = "tls", 9093
STRIMZI_RELEASE = "strimzi-kafka-operator"
STRIMZI_API = "kafka.strimzi.io/v1beta2"
REDIS_RELEASE = "redis"
# The brokers' JMX exporter rules: the file the local brokers' javaagent reads, so both platforms
# export the same names (infrastructure/prometheus/exporters.yaml, strimzi-kafka).
KAFKA_METRICS_FILE = INFRASTRUCTURE / "kafka" / "jmx-exporter.yaml"
KAFKA_METRICS_CONFIG_MAP, KAFKA_METRICS_KEY = f"{KAFKA_NAME}-metrics", "kafka-metrics-config.yml"


# The Secret (namespace data) that carries Redis's credentials for the redis-ha release. It is
# not created here yet: the day-one issue makes the program create it from generated passwords
# (docs/runbooks/provisioning.md, "Day one"). Its keys:
REDIS_AUTH_SECRET = "redis-auth"  # noqa: S105 - the Secret's name, not a password
REDIS_AUTH_KEYS = {
    # requirepass and masterauth: the default user, which the chart's own scripts (init,
    # split-brain fix, probes, exporter sidecar) log in as.
    "auth": "auth",
    # The Sentinels' requirepass (redis-ha knows no Sentinel ACL users).
    "sentinel": "sentinel-password",
    # The ACL file of redis.yaml's users with their password hashes and the default user's
    # (RedisFile.acl_file("redis", passwords, default_password=<auth>)).
    "acl": "users.acl",
}
REDIS_ACL_DIR = "/its-acl"


def redis_release_values(settings: RedisFile) -> dict[str, Any]:
    """infrastructure/redis/redis.yaml in the redis-ha chart's terms: the one definition of the
    master name, the topology, every Redis and Sentinel directive and the ACL users, injected by
    the program so the release's values files never repeat them. No server or Sentinel answers
    without a password: `auth` with the Secret above, Sentinel auth, and redis.yaml's users from
    the Secret's ACL file (which keeps the default user on, for the chart's scripts, with the
    `auth` password: a file without it would turn it on with no password at all)."""
    return {
        "replicas": 1 + settings.replicas,
        "auth": True,
        "existingSecret": REDIS_AUTH_SECRET,
        "authKey": REDIS_AUTH_KEYS["auth"],
        "redis": {
            "masterGroupName": settings.master_name,
            "config": {
                **{key: str(value) for key, value in settings.config.items()},
                "aclfile": f"{REDIS_ACL_DIR}/{REDIS_AUTH_KEYS['acl']}",
            },
            "extraVolumeMounts": [{"name": "its-acl", "mountPath": REDIS_ACL_DIR, "readOnly": True}],
        },
        "extraVolumes": [
            {
                "name": "its-acl",
                "secret": {
                    "secretName": REDIS_AUTH_SECRET,
                    "items": [{"key": REDIS_AUTH_KEYS["acl"], "path": REDIS_AUTH_KEYS["acl"]}],
                    "defaultMode": 0o440,
                },
            }
        ],
        "sentinel": {
            "quorum": settings.sentinel.quorum,
            "config": {key: str(value) for key, value in settings.sentinel.config.items()},
            "auth": True,
            "existingSecret": REDIS_AUTH_SECRET,
            "authKey": REDIS_AUTH_KEYS["sentinel"],
        },
    }


# Values only the program holds, per release: facts of infrastructure/ in a chart's terms.
PROGRAM_VALUES = {REDIS_RELEASE: lambda: redis_release_values(redis_settings())}


def program_values(release: str, given: Mapping[str, Mapping[str, Any]]) -> dict[str, Any] | None:
    """What the program sets in a release's values: this module's facts and other components'."""
    if release not in PROGRAM_VALUES and release not in given:
        return None
    own = PROGRAM_VALUES[release]() if release in PROGRAM_VALUES else {}
    return merged_values(own, given.get(release, {}))


def merged_values(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Maps merge, anything else replaces; never copies a leaf (a leaf may be an Output, which
    cannot be deep-copied)."""
    out = dict(base)
    for key, value in over.items():
        both_maps = isinstance(value, Mapping) and isinstance(out.get(key), Mapping)
        out[key] = merged_values(out[key], value) if both_maps else value
    return out


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
    # Namespaces whose pods may reach the Kafka listener (the app, KEDA's lag scaler).
    kafka_client_namespaces: Sequence[str] = ()
    # Values other components hold for a release (cloud outputs: a key id, an IRSA role's ARN,
    # the VPC's id), merged over PROGRAM_VALUES.
    release_values: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


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


def kafka_spec(kafka: KafkaConfig, client_namespaces: Sequence[str] = ()) -> dict[str, Any]:
    """client_namespaces: who may reach the listener. Strimzi turns them into the listener's
    NetworkPolicy (its only allowed peers); none would let every namespace in."""
    internal_replication = kafka.replication_factor
    return {
        "kafka": {
            "version": kafka.version,
            # One listener, the one the app names (its-kafka-kafka-bootstrap.kafka.svc:9093): TLS,
            # and every client logs in with SCRAM-SHA-512 as a KafkaUser of the its-kafka-topics
            # chart (infrastructure/kafka/users.yaml). No plain listener: NetworkPolicies limit
            # who reaches a port, not who a client says it is.
            "listeners": [
                {
                    "name": KAFKA_LISTENER,
                    "port": KAFKA_PORT,
                    "type": "internal",
                    "tls": True,
                    "authentication": {"type": "scram-sha-512"},
                    "networkPolicyPeers": [
                        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}
                        for namespace in client_namespaces
                    ],
                },
            ],
            # Kafka's StandardAuthorizer: only the KafkaUsers' ACLs grant anything (Kafka's
            # allow.everyone.if.no.acl.found stays false; Strimzi's own components are super
            # users through their TLS identities).
            "authorization": {"type": "simple"},
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
            # The JMX exporter on every broker (port tcp-prometheus, 9404), with the shared rules
            # (the ConfigMap _kafka makes from KAFKA_METRICS_FILE).
            "metricsConfig": {
                "type": "jmxPrometheusExporter",
                "valueFrom": {
                    "configMapKeyRef": {"name": KAFKA_METRICS_CONFIG_MAP, "key": KAFKA_METRICS_KEY}
                },
            },
        },
        # The cluster CA is the program's (infra/pulumi/secrets.py: <name>-cluster-ca and -cert,
        # made before this Kafka): the app's and KEDA's namespace hold its certificate from the
        # first sync. Strimzi then neither generates nor renews it; `pulumi up` renews it in its
        # last year and raises the generation annotations, and Strimzi rolls to the new one.
        "clusterCa": {"generateCertificateAuthority": False},
        "entityOperator": {"topicOperator": {}, "userOperator": {}},
        # Consumer group lag (kafka_consumergroup_lag) for the worker's group, and partitions.
        "kafkaExporter": {"topicRegex": ".*", "groupRegex": ".*"},
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
                    program_values=program_values(release.name, args.release_values),
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
        metrics = k8s.core.v1.ConfigMap(
            f"{name}-kafka-metrics",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=KAFKA_METRICS_CONFIG_MAP,
                namespace=KAFKA_NAMESPACE,
                labels={"app.kubernetes.io/part-of": "its-camera-ai"},
            ),
            data={KAFKA_METRICS_KEY: KAFKA_METRICS_FILE.read_text()},
            opts=pulumi.ResourceOptions(
                parent=self, provider=args.provider, depends_on=[self.releases[STRIMZI_RELEASE]]
            ),
        )
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
            spec=kafka_spec(args.kafka, args.kafka_client_namespaces),
            # The metrics ConfigMap first: Strimzi refuses a metricsConfig it cannot read.
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[metrics])),
        )
        return [node_pool, cluster]
