"""Kafka: three KRaft nodes (broker and controller each) from the Apache jars; storage formatted
once per node; topics from infrastructure/kafka/topics.yaml."""

from __future__ import annotations

import base64
import subprocess
import uuid
from pathlib import Path

from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic

from infra.facts.paths import INFRASTRUCTURE
from infra.facts.topics import topics
from infra.kernel.health import Health
from infra.kernel.layout import HOST
from infra.kernel.programs import Program
from infra.local.stacks.base import TEMPLATES, Stack, endpoints

NODES = 3
JMX_EXPORTER_CONFIG = INFRASTRUCTURE / "kafka" / "jmx-exporter.yaml"


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (Kafka's own form)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def format_command(kafka_home: Path, log4j: Path, cluster_id: str, properties: Path) -> list[str]:
    # `--cluster-id=ID` in one word: an id may start with "-" (one in 64 does), and as a word of
    # its own the storage tool would read it as an option.
    return [
        "java",
        "-cp",
        f"{kafka_home / 'libs'}/*",
        f"-Dlog4j2.configurationFile={log4j}",
        "kafka.tools.StorageTool",
        "format",
        f"--cluster-id={cluster_id}",
        f"--config={properties}",
    ]


class Kafka(Stack):
    name = "kafka"
    start_timeout = 120

    def _nodes(self) -> list[tuple[int, int, int]]:
        brokers = self.require_ports("kafka_broker", NODES, "one per KRaft node")
        controllers = self.require_ports("kafka_controller", NODES, "one per KRaft node")
        jmx = self.require_ports("kafka_jmx", NODES, "one per KRaft node")
        return list(zip(brokers, controllers, jmx, strict=True))

    def bootstrap(self) -> str:
        return ",".join(endpoints(*self.ports.many("kafka_broker")))

    def render(self) -> None:
        nodes = self._nodes()
        voters = ",".join(f"{index + 1}@{HOST}:{c}" for index, (_, c, _) in enumerate(nodes))
        for index, (broker, controller, _) in enumerate(nodes):
            self.ctx.render(
                "kafka/kafka.properties.j2",
                self.cfg.conf_dir / f"kafka{index}.properties",
                mode=0o644,
                node_id=index + 1,
                voters=voters,
                broker_port=broker,
                controller_port=controller,
                data_dir=self.cfg.path("kafka", f"node{index + 1}"),
                defaults=topics().defaults,
            )
        log4j = self.cfg.conf_dir / "log4j2.properties"
        log4j.write_text((TEMPLATES / "kafka" / "log4j2.properties").read_text())

    def programs(self) -> list[Program]:
        cfg = self.cfg
        home = cfg.tools.kafka_home
        jmx_agent = home / "agents" / "jmx_prometheus_javaagent.jar"
        heap = cfg.file.kafka.heap
        return [
            Program(
                f"kafka{index}",
                self.name,
                [
                    "java",
                    f"-Xms{heap}",
                    f"-Xmx{heap}",
                    "-XX:+UseG1GC",
                    "-XX:MaxGCPauseMillis=20",
                    "-Djava.awt.headless=true",
                    "-Djava.net.preferIPv4Stack=true",  # plain IPv4 loopback sockets
                    f"-Dlog4j2.configurationFile={cfg.conf_dir / 'log4j2.properties'}",
                    f"-javaagent:{jmx_agent}={HOST}:{jmx}:{JMX_EXPORTER_CONFIG}",
                    "-cp",
                    f"{home / 'libs'}/*",
                    "kafka.Kafka",
                    str(cfg.conf_dir / f"kafka{index}.properties"),
                ],
                stopwaitsecs=40,
                startsecs=5,
            )
            for index, (_, _, jmx) in enumerate(self._nodes())
        ]

    def start(self) -> None:
        self.format_storage()
        super().start()

    def format_storage(self) -> None:
        """KRaft needs each log dir formatted with the cluster id before the first start."""
        if not self.secrets.get("kafka_cluster_id"):
            self.secrets["kafka_cluster_id"] = new_cluster_id()
        for node in range(1, NODES + 1):
            if self.cfg.path("kafka", f"node{node}", "meta.properties").exists():
                continue
            command = format_command(
                self.cfg.tools.kafka_home,
                self.cfg.conf_dir / "log4j2.properties",
                self.secrets["kafka_cluster_id"],
                self.cfg.conf_dir / f"kafka{node - 1}.properties",
            )
            subprocess.run(command, check=True, capture_output=True)

    def admin(self) -> AdminClient:
        return AdminClient({"bootstrap.servers": self.bootstrap(), "socket.timeout.ms": 3000})

    def health(self) -> Health:
        bootstrap = self.bootstrap()
        try:
            metadata = self.admin().list_topics(timeout=3)
        except Exception:
            return Health(False, {"brokers": 0}, bootstrap.split(","))
        names = sorted(t for t in metadata.topics if not t.startswith("__"))
        detail = {"brokers": len(metadata.brokers), "topics": names}
        return Health(len(metadata.brokers) == NODES, detail, bootstrap.split(","))

    def provision(self) -> str:
        admin = self.admin()
        existing = admin.list_topics(timeout=10).topics
        facts = topics()
        new = [
            NewTopic(
                t.name,
                num_partitions=t.partitions,
                replication_factor=facts.replication_factor(t),
                config=facts.config(t),
            )
            for t in facts.all()
            if t.name not in existing
        ]
        if new:
            for future in admin.create_topics(new, operation_timeout=30).values():
                future.result()
        # Topics that already exist get their declared config re-applied (idempotent).
        resources = [
            ConfigResource(
                ConfigResource.Type.TOPIC,
                t.name,
                incremental_configs=[
                    ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
                    for key, value in facts.config(t).items()
                ],
            )
            for t in facts.all()
        ]
        for future in admin.incremental_alter_configs(resources).values():
            future.result()
        return f"topics {', '.join(t.name for t in facts.all())} ({len(new)} created)"
