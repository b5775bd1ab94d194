"""The data stacks of the local platform, one module each, registered in start order: each
starts once the ones before it are healthy. Adding a stack is one new module and one line here."""

from __future__ import annotations

from infra.local.stacks.app import App
from infra.local.stacks.base import Context, Stack
from infra.local.stacks.cameras import Cameras
from infra.local.stacks.kafka import Kafka
from infra.local.stacks.minio import Minio
from infra.local.stacks.monitoring import Monitoring
from infra.local.stacks.postgres import Postgres
from infra.local.stacks.redis import Redis
from infra.local.stacks.vault import Vault

START_ORDER: tuple[type[Stack], ...] = (Postgres, Redis, Kafka, Minio, Vault, Monitoring, Cameras, App)

__all__ = [
    "START_ORDER",
    "App",
    "Cameras",
    "Context",
    "Kafka",
    "Minio",
    "Monitoring",
    "Postgres",
    "Redis",
    "Stack",
    "Vault",
]
