"""Health checks of the local platform, one per service: what `status` prints and `up` waits on."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
import psycopg
import redis
from confluent_kafka.admin import AdminClient

from infra.local.config import HOST, LocalPlatformConfig
from infra.local.secrets import PlatformSecrets


@dataclass
class Health:
    healthy: bool
    endpoints: list[str]
    detail: dict[str, Any] = field(default_factory=dict)


def _endpoints(*ports: int) -> list[str]:
    return [f"{HOST}:{port}" for port in ports]


def _http_ok(url: str, timeout: float = 2.0) -> tuple[bool, str]:
    try:
        response = httpx.get(url, timeout=timeout)
    except httpx.HTTPError as error:
        return False, type(error).__name__
    return response.status_code == 200, f"HTTP {response.status_code}"


class HealthChecks:
    def __init__(self, cfg: LocalPlatformConfig, secrets: PlatformSecrets) -> None:
        self.cfg = cfg
        self.secrets = secrets
        self.p = cfg.ports

    def etcd(self) -> Health:
        ok, detail = _http_ok(f"http://{HOST}:{self.p.etcd_client}/health")
        return Health(ok, _endpoints(self.p.etcd_client), {"health": detail})

    def postgres(self, through_bouncer: bool = True) -> Health:
        """One leader, one streaming standby (from Patroni's view of the cluster) and, once the
        app role exists, a query through PgBouncer."""
        cluster: dict[str, Any] = {}
        for rest in self.p.many("patroni_rest"):
            try:
                cluster = httpx.get(f"http://{HOST}:{rest}/cluster", timeout=2).json()
                break
            except (httpx.HTTPError, ValueError):
                continue
        members = {
            m["name"]: {"role": m["role"], "state": m["state"], "lag": m.get("lag")}
            for m in cluster.get("members", [])
        }
        leaders = [name for name, m in members.items() if m["role"] == "leader" and m["state"] == "running"]
        streaming = [
            name for name, m in members.items() if m["role"] != "leader" and m["state"] == "streaming"
        ]
        bouncer = self._query_bouncer() if through_bouncer else None
        healthy = len(leaders) == 1 and len(streaming) == 1 and bouncer is not False
        return Health(
            healthy,
            _endpoints(self.p.pgbouncer, self.p.haproxy_primary, *self.p.many("postgres")),
            {"members": members, "primary": leaders[0] if leaders else None, "pgbouncer": bouncer},
        )

    def _query_bouncer(self) -> bool:
        try:
            with psycopg.connect(
                host=HOST,
                port=self.p.pgbouncer,
                dbname="its",
                user="its_app",
                password=self.secrets["postgres_app"],
                connect_timeout=2,
            ) as conn:
                return conn.execute("SELECT 1").fetchone() == (1,)
        except psycopg.Error:
            return False

    def redis(self) -> Health:
        master_name = "its-redis"
        detail: dict[str, Any] = {}
        try:
            sentinel = redis.Redis(host=HOST, port=self.p.many("sentinel")[0], socket_timeout=2)
            master = cast(dict[str, Any], sentinel.sentinel_master(master_name))
            detail = {
                "master": f"{master['ip']}:{master['port']}",
                "replicas": int(master["num-slaves"]),
                "sentinels": int(master["num-other-sentinels"]) + 1,
                "flags": master["flags"],
            }
            client = redis.Redis(host=master["ip"], port=int(master["port"]), socket_timeout=2)
            healthy = bool(client.ping()) and detail["replicas"] == 2 and detail["sentinels"] == 3
        except (redis.RedisError, KeyError):
            healthy = False
        return Health(healthy, _endpoints(*self.p.many("redis"), *self.p.many("sentinel")), detail)

    def kafka(self) -> Health:
        bootstrap = ",".join(_endpoints(*self.p.many("kafka_broker")))
        try:
            admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 3000})
            metadata = admin.list_topics(timeout=3)
            brokers = len(metadata.brokers)
            topics = sorted(t for t in metadata.topics if not t.startswith("__"))
        except Exception:
            return Health(False, bootstrap.split(","), {"brokers": 0})
        return Health(brokers == 3, bootstrap.split(","), {"brokers": brokers, "topics": topics})

    def minio(self) -> Health:
        ok, detail = _http_ok(f"http://{HOST}:{self.p.minio_api}/minio/health/cluster")
        return Health(ok, _endpoints(self.p.minio_api), {"cluster": detail})

    def vault(self) -> Health:
        try:
            data = httpx.get(f"http://{HOST}:{self.p.vault}/v1/sys/seal-status", timeout=2).json()
        except (httpx.HTTPError, ValueError):
            return Health(False, _endpoints(self.p.vault), {"reachable": False})
        initialized = self.secrets.get("vault_init") is not None
        return Health(
            initialized and data.get("sealed") is False,
            _endpoints(self.p.vault),
            {
                "sealed": data.get("sealed"),
                "initialized": initialized,
                "server": "RustyVault (Vault HTTP API); policies not enforced",
            },
        )

    def prometheus(self) -> Health:
        ok, detail = _http_ok(f"http://{HOST}:{self.p.prometheus}/-/ready")
        am_ok, am_detail = _http_ok(f"http://{HOST}:{self.p.alertmanager}/-/ready")
        return Health(
            ok and am_ok,
            _endpoints(self.p.prometheus, self.p.alertmanager),
            {"prometheus": detail, "alertmanager": am_detail},
        )

    def api(self) -> Health:
        ok, detail = _http_ok(f"http://{HOST}:{self.p.api}/readyz", timeout=5)
        return Health(
            ok,
            _endpoints(self.p.api),
            {"readyz": detail, "credentials_file": str(self.secrets.credentials_file)},
        )

    def worker(self) -> Health:
        ok, detail = _http_ok(f"http://{HOST}:{self.p.worker_metrics}/healthz")
        return Health(ok, _endpoints(self.p.worker_metrics), {"healthz": detail})

    def by_service(self) -> dict[str, Callable[[], Health]]:
        return {
            "etcd": self.etcd,
            "postgres": self.postgres,
            "redis": self.redis,
            "kafka": self.kafka,
            "minio": self.minio,
            "vault": self.vault,
            "prometheus": self.prometheus,
            "api": self.api,
            "worker": self.worker,
        }


def wait_until(check: Callable[[], Health], what: str, timeout: float, log: Callable[[str], None]) -> Health:
    """Poll a check until healthy, printing progress every 10 s; raise with the last detail."""
    start = time.monotonic()
    last_report = start
    while True:
        health = check()
        if health.healthy:
            return health
        now = time.monotonic()
        if now - start > timeout:
            raise TimeoutError(f"{what} not healthy after {timeout:.0f}s: {health.detail}")
        if now - last_report >= 10:
            log(f"    ... waiting for {what} ({now - start:.0f}s): {health.detail}")
            last_report = now
        time.sleep(1)
