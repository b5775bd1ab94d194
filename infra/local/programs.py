"""The supervised programs of the local platform, in start order, grouped by data stack."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field

from app.common.paths import REPO_ROOT
from infra.local.config import SHARED, LocalPlatformConfig
from infra.local.secrets import PlatformSecrets

# Groups start in this order, each once the previous ones are healthy.
START_ORDER = ("etcd", "postgres", "redis", "kafka", "minio", "vault", "monitoring", "app")


@dataclass(frozen=True)
class Program:
    name: str
    group: str
    command: list[str]
    directory: str = str(REPO_ROOT)
    environment: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    stopsignal: str = "TERM"
    stopwaitsecs: int = 20
    startsecs: int = 2
    autorestart: str = "unexpected"

    def render_command(self) -> str:
        return " ".join(shlex.quote(part) for part in self.command)

    def render_environment(self) -> str:
        # supervisord's format: KEY="value",KEY2="value2" (quotes and % escaped).
        def quote(value: str) -> str:
            return '"' + value.replace("%", "%%").replace('"', '\\"') + '"'

        return ",".join(f"{key}={quote(value)}" for key, value in sorted(self.environment.items()))


def postgres_user() -> str | None:
    """PostgreSQL refuses to run as root: when the platform runs as root, its members run as
    the Debian package's `postgres` user."""
    return "postgres" if os.geteuid() == 0 else None


def build_programs(
    cfg: LocalPlatformConfig, secrets: PlatformSecrets, app_env: dict[str, dict[str, str]]
) -> list[Program]:
    """app_env: the ITS_* environment of each app identity (its-api, its-worker)."""
    p, t, s = cfg.ports, cfg.tools, cfg.state_dir
    py = str(t.python)
    programs: list[Program] = [
        Program(
            "etcd",
            "etcd",
            [
                "etcd",
                "--name=its-etcd",
                f"--data-dir={s / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{p.etcd_client}",
                f"--advertise-client-urls=http://127.0.0.1:{p.etcd_client}",
                f"--listen-peer-urls=http://127.0.0.1:{p.etcd_peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{p.etcd_peer}",
                f"--initial-cluster=its-etcd=http://127.0.0.1:{p.etcd_peer}",
                "--enable-v2=false",
            ],
        ),
    ]
    for index in range(2):
        programs.append(
            Program(
                f"patroni{index}",
                "postgres",
                [str(t.patroni), str(cfg.conf_dir / f"patroni{index}.yml")],
                user=postgres_user(),
                directory=str(s),  # the checkout may not be readable by the postgres user
                stopsignal="INT",
                stopwaitsecs=40,
                environment={"PATH": f"{t.postgres_bin}:/usr/bin:/bin"},
            )
        )
    programs += [
        Program("haproxy", "postgres", ["haproxy", "-db", "-f", str(cfg.conf_dir / "haproxy.cfg")]),
        Program(
            "pgbouncer",
            "postgres",
            ["pgbouncer", str(cfg.conf_dir / "pgbouncer.ini")],
            user=postgres_user(),
            directory=str(s),
        ),
    ]
    for index in range(len(p.many("redis"))):
        programs.append(
            Program(f"redis{index}", "redis", ["redis-server", str(s / f"redis/redis{index}/redis.conf")])
        )
    for index in range(len(p.many("sentinel"))):
        programs.append(
            Program(
                f"sentinel{index}",
                "redis",
                ["redis-server", str(s / f"redis/sentinel{index}/sentinel.conf"), "--sentinel"],
            )
        )
    kafka = t.kafka_home
    jmx_agent = kafka / "agents" / "jmx_prometheus_javaagent.jar"
    for index, jmx in enumerate(p.many("kafka_jmx")):
        programs.append(
            Program(
                f"kafka{index}",
                "kafka",
                [
                    "java",
                    f"-Xms{cfg.file.kafka.heap}",
                    f"-Xmx{cfg.file.kafka.heap}",
                    "-XX:+UseG1GC",
                    "-XX:MaxGCPauseMillis=20",
                    "-Djava.awt.headless=true",
                    "-Djava.net.preferIPv4Stack=true",  # plain IPv4 loopback sockets
                    f"-Dlog4j2.configurationFile={cfg.conf_dir / 'log4j2.properties'}",
                    f"-javaagent:{jmx_agent}=127.0.0.1:{jmx}:{SHARED['jmx_exporter']}",
                    "-cp",
                    f"{kafka / 'libs'}/*",
                    "kafka.Kafka",
                    str(cfg.conf_dir / f"kafka{index}.properties"),
                ],
                stopwaitsecs=40,
                startsecs=5,
            )
        )
    platform_env = {"ITS_STATE_DIR": str(s), "ITS_PORT_BASE": str(cfg.port_base)}
    minio_env = {
        # Four drive directories on one disk form an erasure set only in CI/CD mode.
        "MINIO_CI_CD": "1",
        "MINIO_PROMETHEUS_AUTH_TYPE": "public",
        "MINIO_BROWSER": "off",
        "MINIO_ROOT_USER": "its-root",
        "MINIO_ROOT_PASSWORD": secrets["minio_root"],
    }
    programs += [
        Program(
            "minio",
            "minio",
            [
                str(t.minio),
                "server",
                "--quiet",
                "--address",
                f"127.0.0.1:{p.minio_api}",
                "--console-address",
                f"127.0.0.1:{p.minio_console}",
                f"{s / 'minio'}/drive{{1...4}}",
            ],
            environment=minio_env,
        ),
        Program(
            "vault",
            "vault",
            [str(t.rvault), "server", f"--config={cfg.conf_dir / 'vault.hcl'}"],
            directory=str(s / "vault"),
        ),
        # Unseals Vault whenever it comes back sealed (after a restart), as a cluster's
        # auto-unseal would; the keys stay in the state directory.
        Program(
            "vault-unsealer",
            "vault",
            [py, "-m", "infra.local", "unsealer"],
            environment=platform_env,
            autorestart="true",
        ),
        Program(
            "prometheus",
            "monitoring",
            [
                "prometheus",
                f"--config.file={cfg.conf_dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={s / 'prometheus'}",
                f"--web.listen-address=127.0.0.1:{p.prometheus}",
                "--web.enable-lifecycle",
                "--storage.tsdb.retention.time=2d",
            ],
        ),
        Program(
            "alertmanager",
            "monitoring",
            [
                "prometheus-alertmanager",
                f"--config.file={SHARED['alertmanager']}",
                f"--storage.path={s / 'alertmanager'}",
                f"--web.listen-address=127.0.0.1:{p.alertmanager}",
                "--cluster.listen-address=",
            ],
        ),
        Program(
            "blackbox-exporter",
            "monitoring",
            [
                "prometheus-blackbox-exporter",
                f"--config.file={cfg.conf_dir / 'blackbox.yml'}",
                f"--web.listen-address=127.0.0.1:{p.blackbox_exporter}",
            ],
        ),
        Program(
            "redis-exporter",
            "monitoring",
            ["prometheus-redis-exporter", f"--web.listen-address=127.0.0.1:{p.redis_exporter}"],
        ),
        Program(
            "node-exporter",
            "monitoring",
            [
                "prometheus-node-exporter",
                f"--web.listen-address=127.0.0.1:{p.node_exporter}",
                "--collector.disable-defaults",
                "--collector.cpu",
                "--collector.meminfo",
                "--collector.loadavg",
                "--collector.filesystem",
                "--collector.diskstats",
            ],
        ),
    ]
    for index, (port, pg_port) in enumerate(
        zip(p.many("postgres_exporter"), p.many("postgres"), strict=True)
    ):
        programs.append(
            Program(
                f"postgres-exporter{index}",
                "monitoring",
                [
                    "prometheus-postgres-exporter",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--auto-discover-databases",
                ],
                environment={
                    "DATA_SOURCE_NAME": (
                        f"postgresql://postgres:{secrets['postgres_superuser']}"
                        f"@127.0.0.1:{pg_port}/postgres?sslmode=disable"
                    )
                },
            )
        )
    programs += [
        Program(
            "api",
            "app",
            [
                py,
                "-m",
                "uvicorn",
                "app.api.main:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(p.api),
                "--no-access-log",
            ],
            environment=app_env["its-api"],
        ),
        Program(
            "worker",
            "app",
            # In a cluster the worker has GPU nodes of its own; here it shares two cores with
            # the API, so it yields the CPU to requests (the API's latency SLO comes first).
            ["nice", "-n", "10", py, "-m", "app.worker"],
            environment=app_env["its-worker"],
            stopwaitsecs=60,
            startsecs=5,
        ),
    ]
    return programs
