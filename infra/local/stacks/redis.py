"""Redis: a master, its replicas and the Sentinels, all from infrastructure/redis/redis.yaml.

Each config file is written once, when missing: Redis and Sentinel rewrite their own files on a
failover (replicaof, the known master), so a later `up` must not put the old topology back.
"""

from __future__ import annotations

from typing import Any, cast

import redis

from infra.facts.redis import RedisFile, redis_settings
from infra.kernel.health import Health
from infra.kernel.layout import HOST
from infra.kernel.programs import Program
from infra.local.stacks.base import Stack, endpoints


def redis_conf(settings: RedisFile, name: str, port: int, directory: str, master_port: int | None) -> str:
    lines = [
        f"# Redis {name}: written once by infra/local/stacks/redis.py, then owned by Redis and Sentinel.",
        f"bind {HOST}",
        f"port {port}",
        "protected-mode yes",
        f"dir {directory}",
        "dbfilename dump.rdb",
        *(f"{key} {value}" for key, value in settings.config.items()),
        f"replica-announce-ip {HOST}",
    ]
    if master_port is not None:
        lines.append(f"replicaof {HOST} {master_port}")
    return "\n".join(lines) + "\n"


def sentinel_conf(settings: RedisFile, name: str, port: int, directory: str, master_port: int) -> str:
    master, s = settings.master_name, settings.sentinel
    lines = [
        f"# Sentinel {name}: written once by infra/local/stacks/redis.py, then rewritten by Sentinel.",
        f"bind {HOST}",
        f"port {port}",
        f"dir {directory}",
        "sentinel resolve-hostnames no",
        f"sentinel announce-ip {HOST}",
        f"sentinel monitor {master} {HOST} {master_port} {s.quorum}",
        *(f"sentinel {key} {master} {value}" for key, value in s.config.items()),
    ]
    return "\n".join(lines) + "\n"


class Redis(Stack):
    name = "redis"
    start_timeout = 60

    @property
    def settings(self) -> RedisFile:
        return redis_settings()

    def _ports(self) -> tuple[list[int], list[int]]:
        s = self.settings
        servers = self.require_ports("redis", 1 + s.replicas, "a master and redis.yaml's replicas")
        sentinels = self.require_ports("sentinel", s.sentinel.count, "redis.yaml's sentinel.count")
        return servers, sentinels

    def render(self) -> None:
        servers, sentinels = self._ports()
        for index, port in enumerate(servers):
            target = self.cfg.path("redis", f"redis{index}", "redis.conf")
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                master = servers[0] if index else None
                target.write_text(
                    redis_conf(self.settings, f"redis{index}", port, str(target.parent), master)
                )
        for index, port in enumerate(sentinels):
            target = self.cfg.path("redis", f"sentinel{index}", "sentinel.conf")
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                text = sentinel_conf(self.settings, f"sentinel{index}", port, str(target.parent), servers[0])
                target.write_text(text)

    def programs(self) -> list[Program]:
        servers, sentinels = self._ports()
        conf = self.cfg.path("redis")
        return [
            Program(f"redis{i}", self.name, ["redis-server", str(conf / f"redis{i}" / "redis.conf")])
            for i in range(len(servers))
        ] + [
            Program(
                f"sentinel{i}",
                self.name,
                ["redis-server", str(conf / f"sentinel{i}" / "sentinel.conf"), "--sentinel"],
            )
            for i in range(len(sentinels))
        ]

    def sentinel_addresses(self) -> list[tuple[str, int]]:
        return [(HOST, port) for port in self.ports.many("sentinel")]

    def health(self) -> Health:
        s = self.settings
        servers, sentinels = self._ports()
        detail: dict[str, Any] = {}
        try:
            sentinel = redis.Redis(host=HOST, port=sentinels[0], socket_timeout=2)
            master = cast(dict[str, Any], sentinel.sentinel_master(s.master_name))
            detail = {
                "master": f"{master['ip']}:{master['port']}",
                "replicas": int(master["num-slaves"]),
                "sentinels": int(master["num-other-sentinels"]) + 1,
                "flags": master["flags"],
            }
            client = redis.Redis(host=master["ip"], port=int(master["port"]), socket_timeout=2)
            healthy = (
                bool(client.ping())
                and detail["replicas"] == s.replicas
                and detail["sentinels"] == s.sentinel.count
            )
        except (redis.RedisError, KeyError):
            healthy = False
        return Health(healthy, detail, endpoints(*servers, *sentinels))
