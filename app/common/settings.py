"""All configuration of the API and the worker, read once from ITS_* environment variables.

The same settings run the local platform (infra/local renders them into the supervisor
config) and the cluster (the Helm chart sets them); secrets are never settings: they come
from Vault at start-up (app.common.secrets).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.common.timescale_switch import TimescaleMode
from infra.facts.redis import redis_settings

VEHICLE_CLASSES = ("car", "truck", "bus", "motorcycle", "bicycle")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ITS_", extra="ignore", frozen=True)

    environment: str = "local"
    log_level: str = "INFO"

    # PostgreSQL (through PgBouncer). The URL carries no password: Vault supplies it.
    database_url: str = "postgresql://its_app@127.0.0.1:6432/its"
    database_pool_size: int = Field(default=10, ge=1, le=100)
    timescale: TimescaleMode = "auto"

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_consumer_group: str = "its-worker"
    # The brokers authenticate every client (SCRAM; user name and password from Vault): plain
    # loopback locally, TLS in a cluster. There is no unauthenticated choice.
    kafka_security_protocol: Literal["SASL_PLAINTEXT", "SASL_SSL"] = "SASL_PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256"] = "SCRAM-SHA-512"
    # CA bundle that signed the brokers' TLS certificates (SASL_SSL); unset: the system's.
    kafka_ssl_ca_location: Path | None = None

    redis_sentinels: str = "127.0.0.1:26379"
    # The one definition is infrastructure/redis/redis.yaml (the chart sets it from there too).
    redis_master_name: str = Field(default_factory=lambda: redis_settings().master_name)

    minio_endpoint: str = "127.0.0.1:9000"
    minio_secure: bool = False
    minio_region: str = "us-east-1"
    # The CA that signed MinIO's certificate (the cluster's: a private CA of the Pulumi program);
    # unset: the system store.
    minio_ca_file: Path | None = None

    vault_addr: str = "http://127.0.0.1:8200"
    vault_auth_method: Literal["approle", "kubernetes"] = "approle"
    vault_role: str = "its-api"
    vault_role_id: str | None = None
    vault_secret_id_file: Path | None = None
    vault_kv_mount: str = "secret"
    # The CA that signed Vault's certificate (the cluster's OpenBao CA); unset: the system store.
    vault_ca_file: Path | None = None

    # API. The request limit is the frame limit plus room for the multipart envelope (part
    # headers, boundaries, the captured_at field); the guard refuses anything larger unread.
    max_frame_bytes: int = Field(default=5 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    request_overhead_bytes: int = Field(default=64 * 1024, ge=1024, le=1024 * 1024)
    # Checked from the image header before any pixel is decoded: 16 MP covers a 4K camera with
    # room to spare and bounds a decode to ~64 MB of RGBA; no side beyond 8192 px.
    max_frame_pixels: int = Field(default=16_777_216, ge=64 * 64, le=100_000_000)
    max_frame_side: int = Field(default=8192, ge=64, le=65_500)
    rate_limit_per_minute: int = Field(default=600, ge=1, le=1_000_000)
    # Refused authentications per client address per minute before every request from that
    # address gets 429 until the minute ends (key guessing is not free).
    auth_failures_per_minute: int = Field(default=20, ge=1, le=10_000)
    # /docs, /redoc and /openapi.json: on locally, off in production (GitOps values).
    api_docs_enabled: bool = True
    counts_cache_ttl_seconds: int = Field(default=300, ge=1)

    # Worker
    model_uri: str = "file://app/worker/models/its-vehicles-yolo11n.pt"
    device: str = "cpu"
    worker_batch_size: int = Field(default=8, ge=1, le=256)
    worker_batch_timeout_ms: int = Field(default=200, ge=1)
    worker_confidence: float = Field(default=0.35, gt=0, lt=1)
    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_port: int = 9100
    congestion_threshold: int = Field(default=20, ge=1)
    vehicle_classes: tuple[str, ...] = VEHICLE_CLASSES

    # Stream ingest (app/ingest). A camera with no sampled frame for this long is offline (the
    # API applies the same bound to what the ingest reported).
    stream_offline_after_seconds: float = Field(default=10, ge=2, le=600)
    ingest_metrics_host: str = "127.0.0.1"
    ingest_metrics_port: int = 9101
    # This replica's name among the ingest's members (the pod's name in a cluster); unset: the
    # host name and process id.
    ingest_replica_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]{1,120}$")
    # Each replica renews its membership every tick; a replica silent for member_ttl is gone and
    # its cameras move to the others within member_ttl + one tick (+ the new reader's connect).
    ingest_tick_seconds: float = Field(default=1, ge=0.2, le=30)
    ingest_member_ttl_seconds: float = Field(default=5, ge=1, le=300)
    # How often the cameras with a stream are re-read from the database.
    ingest_cameras_refresh_seconds: float = Field(default=5, ge=1, le=600)
    # Reconnects: capped exponential backoff with full jitter.
    ingest_reconnect_min_seconds: float = Field(default=0.5, gt=0, le=60)
    ingest_reconnect_max_seconds: float = Field(default=15, gt=0, le=600)
    # A stream that delivers no packet for this long is dropped and reconnected.
    ingest_read_timeout_seconds: float = Field(default=5, ge=1, le=120)
    ingest_jpeg_quality: int = Field(default=85, ge=30, le=95)

    @field_validator("redis_sentinels")
    @classmethod
    def _sentinels_are_host_port(cls, value: str) -> str:
        for item in value.split(","):
            host, _, port = item.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"ITS_REDIS_SENTINELS: {item!r} is not host:port")
        return value

    @property
    def max_request_bytes(self) -> int:
        """The largest request body the API reads: a frame and its multipart envelope."""
        return self.max_frame_bytes + self.request_overhead_bytes

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        pairs = (item.strip().rpartition(":") for item in self.redis_sentinels.split(","))
        return [(host, int(port)) for host, _, port in pairs]


@cache
def get_settings() -> Settings:
    return Settings()
