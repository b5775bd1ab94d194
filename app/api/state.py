"""What the API holds for its lifetime, created in the lifespan and shared through deps."""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg
from minio import Minio
from redis.asyncio.sentinel import Sentinel

from app.api.known_cameras import KnownCameras
from app.common.clients import AcknowledgedProducer
from app.common.frames import FrameSinks
from app.common.secrets import VaultSecrets
from app.common.settings import Settings


@dataclass
class AppState:
    settings: Settings
    secrets: VaultSecrets
    db: asyncpg.Pool
    sentinel: Sentinel
    store: Minio
    producer: AcknowledgedProducer
    cameras: KnownCameras = field(default_factory=KnownCameras)

    @property
    def frame_sinks(self) -> FrameSinks:
        return FrameSinks(self.db, self.store, self.producer)
