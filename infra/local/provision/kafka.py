"""Kafka: storage formatted once per node, topics created from infrastructure/kafka/topics.yaml."""

from __future__ import annotations

import base64
import subprocess
import uuid
from typing import Any

import yaml
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic

from infra.local.config import HOST, SHARED, LocalPlatformConfig
from infra.local.secrets import PlatformSecrets


def format_storage(cfg: LocalPlatformConfig, secrets: PlatformSecrets) -> None:
    """KRaft needs each log dir formatted with the cluster id before the first start."""
    if not secrets.get("kafka_cluster_id"):
        secrets["kafka_cluster_id"] = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    for node in range(1, 4):
        if (cfg.path("kafka", f"node{node}", "meta.properties")).exists():
            continue
        subprocess.run(
            [
                "java",
                "-cp",
                f"{cfg.tools.kafka_home / 'libs'}/*",
                f"-Dlog4j2.configurationFile={cfg.conf_dir / 'log4j2.properties'}",
                "kafka.tools.StorageTool",
                "format",
                "-t",
                secrets["kafka_cluster_id"],
                "-c",
                str(cfg.conf_dir / f"kafka{node - 1}.properties"),
            ],
            check=True,
            capture_output=True,
        )


def topic_specs() -> list[dict[str, Any]]:
    """Each topic with the defaults of topics.yaml merged in: the one definition."""
    data = yaml.safe_load(SHARED["topics"].read_text())
    defaults = data["defaults"]
    specs = []
    for topic in data["topics"]:
        specs.append(
            {
                "name": topic["name"],
                "partitions": topic["partitions"],
                "replication_factor": topic.get("replication_factor", defaults["replication_factor"]),
                "config": {**defaults["config"], **topic.get("config", {})},
            }
        )
    return specs


def admin_client(cfg: LocalPlatformConfig) -> AdminClient:
    bootstrap = ",".join(f"{HOST}:{port}" for port in cfg.ports.many("kafka_broker"))
    return AdminClient({"bootstrap.servers": bootstrap})


def provision(cfg: LocalPlatformConfig) -> str:
    admin = admin_client(cfg)
    existing = admin.list_topics(timeout=10).topics
    wanted = topic_specs()
    new = [
        NewTopic(
            t["name"],
            num_partitions=t["partitions"],
            replication_factor=t["replication_factor"],
            config=t["config"],
        )
        for t in wanted
        if t["name"] not in existing
    ]
    if new:
        for future in admin.create_topics(new, operation_timeout=30).values():
            future.result()
    # Topics that already exist get their declared config re-applied (idempotent).
    resources = [
        ConfigResource(
            ConfigResource.Type.TOPIC,
            t["name"],
            incremental_configs=[
                ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
                for key, value in t["config"].items()
            ],
        )
        for t in wanted
    ]
    for future in admin.incremental_alter_configs(resources).values():
        future.result()
    return f"topics {', '.join(t['name'] for t in wanted)} ({len(new)} created)"
