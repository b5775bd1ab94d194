"""Redis: a master, its replicas and the Sentinels, all from infrastructure/redis/redis.yaml,
every one of them behind ACL users (the `default` user off).

Each config file is written once, when missing: Redis and Sentinel rewrite their own files on a
failover (replicaof, the known master), so a later `up` must not put the old topology back.
The ACL files (users.acl beside each config) are the platform's: written on every `up` from
redis.yaml's users and the platform's generated passwords; one that changed under a running
server is loaded with ACL LOAD (which drops every authenticated connection, so only then).
They hold password hashes only; the config files hold the passwords a server presents itself
(masterauth, sentinel auth-pass and sentinel-pass), so both are mode 0600.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import redis

from infra.facts.redis import RedisFile, redis_settings, secret_name
from infra.kernel.health import Health
from infra.kernel.layout import HOST
from infra.kernel.programs import Program
from infra.local.config import PlatformConfigError
from infra.local.stacks.base import Context, Stack, endpoints

ACL_FILE = "users.acl"
# The platform's own identity: health checks, provisioning, drills.
ADMIN = "admin"


def redis_conf(
    settings: RedisFile,
    name: str,
    port: int,
    directory: str,
    master_port: int | None,
    replica_password: str,
) -> str:
    lines = [
        f"# Redis {name}: written once by infra/local/stacks/redis.py, then owned by Redis and Sentinel.",
        f"bind {HOST}",
        f"port {port}",
        "protected-mode yes",
        f"dir {directory}",
        "dbfilename dump.rdb",
        *(f"{key} {value}" for key, value in settings.config.items()),
        f"replica-announce-ip {HOST}",
        # Users come from the platform's ACL file (redis.yaml's users; default off).
        f"aclfile {directory}/{ACL_FILE}",
        # Every server may become a replica after a failover: each knows how to log in to a master.
        "masteruser replica",
        f"masterauth {replica_password}",
    ]
    if master_port is not None:
        lines.append(f"replicaof {HOST} {master_port}")
    return "\n".join(lines) + "\n"


def sentinel_conf(
    settings: RedisFile,
    name: str,
    port: int,
    directory: str,
    master_port: int,
    sentinel_password: str,
) -> str:
    master, s = settings.master_name, settings.sentinel
    lines = [
        f"# Sentinel {name}: written once by infra/local/stacks/redis.py, then rewritten by Sentinel.",
        f"bind {HOST}",
        f"port {port}",
        f"dir {directory}",
        "sentinel resolve-hostnames no",
        f"sentinel announce-ip {HOST}",
        # Clients log in as their own ACL user (the file beside this one; default off). ACL
        # users rather than requirepass: requirepass is the default user's password, and the
        # default user of a Sentinel may run SENTINEL SET, REMOVE and FAILOVER.
        f"aclfile {directory}/{ACL_FILE}",
        f"sentinel monitor {master} {HOST} {master_port} {s.quorum}",
        *(f"sentinel {key} {master} {value}" for key, value in s.config.items()),
        # The `sentinel` identity: to the servers (auth-user) and to the other Sentinels.
        f"sentinel auth-user {master} sentinel",
        f"sentinel auth-pass {master} {sentinel_password}",
        "sentinel sentinel-user sentinel",
        f"sentinel sentinel-pass {sentinel_password}",
    ]
    return "\n".join(lines) + "\n"


class Redis(Stack):
    name = "redis"
    start_timeout = 60
    generated_secrets = tuple(secret_name(user) for user in redis_settings().users)

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        # Ports of servers whose ACL file this render changed (loaded again by provision).
        self._acl_changed: list[int] = []

    @property
    def settings(self) -> RedisFile:
        return redis_settings()

    def password(self, user: str) -> str:
        return str(self.secrets[secret_name(user)])

    def passwords(self) -> dict[str, str]:
        return {user: self.password(user) for user in self.settings.users}

    def _ports(self) -> tuple[list[int], list[int]]:
        s = self.settings
        servers = self.require_ports("redis", 1 + s.replicas, "a master and redis.yaml's replicas")
        sentinels = self.require_ports("sentinel", s.sentinel.count, "redis.yaml's sentinel.count")
        return servers, sentinels

    def _dirs(self) -> tuple[list[Path], list[Path]]:
        servers, sentinels = self._ports()
        return (
            [self.cfg.path("redis", f"redis{i}") for i in range(len(servers))],
            [self.cfg.path("redis", f"sentinel{i}") for i in range(len(sentinels))],
        )

    def _write_once(self, target: Path, text: str) -> None:
        if target.exists():
            if "aclfile" not in target.read_text():
                raise PlatformConfigError(
                    f"{target} predates the data plane's authentication (no aclfile): "
                    "`make down`, remove the state directory's redis/ and kafka/ and `make up` again"
                )
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        target.chmod(0o600)

    def _write_acl(self, directory: Path, port: int, text: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / ACL_FILE
        if target.exists() and target.read_text() == text:
            return
        if target.exists():
            self._acl_changed.append(port)  # a running server still holds the old users
        tmp = target.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.chmod(0o600)
        tmp.replace(target)

    def render(self) -> None:
        servers, sentinels = self._ports()
        server_dirs, sentinel_dirs = self._dirs()
        passwords = self.passwords()
        self._acl_changed = []
        for index, (port, directory) in enumerate(zip(servers, server_dirs, strict=True)):
            self._write_acl(directory, port, self.settings.acl_file("redis", passwords))
            master = servers[0] if index else None
            text = redis_conf(
                self.settings, f"redis{index}", port, str(directory), master, passwords["replica"]
            )
            self._write_once(directory / "redis.conf", text)
        for index, (port, directory) in enumerate(zip(sentinels, sentinel_dirs, strict=True)):
            self._write_acl(directory, port, self.settings.acl_file("sentinel", passwords))
            text = sentinel_conf(
                self.settings, f"sentinel{index}", port, str(directory), servers[0], passwords["sentinel"]
            )
            self._write_once(directory / "sentinel.conf", text)

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

    def client(self, port: int, user: str = ADMIN, host: str = HOST, timeout: float = 2) -> redis.Redis:
        """A client of one server or Sentinel, logged in as one of redis.yaml's users."""
        return redis.Redis(
            host=host, port=port, username=user, password=self.password(user), socket_timeout=timeout
        )

    def connection_kwargs(self, user: str = ADMIN) -> dict[str, Any]:
        """Credentials of `user` for redis-py's Sentinel: for the servers and (sentinel_kwargs)
        for the Sentinels themselves."""
        auth = {"username": user, "password": self.password(user)}
        return {**auth, "sentinel_kwargs": dict(auth)}

    def health(self) -> Health:
        s = self.settings
        servers, sentinels = self._ports()
        detail: dict[str, Any] = {}
        try:
            sentinel = self.client(sentinels[0])
            master = cast(dict[str, Any], sentinel.sentinel_master(s.master_name))
            detail = {
                "master": f"{master['ip']}:{master['port']}",
                "replicas": int(master["num-slaves"]),
                "sentinels": int(master["num-other-sentinels"]) + 1,
                "flags": master["flags"],
            }
            client = self.client(int(master["port"]), host=master["ip"])
            healthy = (
                bool(client.ping())
                and detail["replicas"] == s.replicas
                and detail["sentinels"] == s.sentinel.count
            )
        except (redis.RedisError, KeyError):
            healthy = False
        return Health(healthy, detail, endpoints(*servers, *sentinels))

    def provision(self) -> str:
        """Load the ACL files that changed under running servers and Sentinels, so a rule
        changed in redis.yaml holds without a restart (a fresh start loaded its file already)."""
        servers, sentinels = self._ports()
        for port in self._acl_changed:
            self.client(port).acl_load()
        self._acl_changed = []
        return (
            f"ACL users {', '.join(self.settings.users_on('redis'))} on {len(servers)} servers, "
            f"{len(self.settings.users_on('sentinel'))} on {len(sentinels)} sentinels; default user off"
        )
