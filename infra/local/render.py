"""Renders every server's configuration into <state>/conf from the templates and infrastructure/.

Files a server rewrites while it runs (Redis and Sentinel after a failover) are written once,
when missing; everything else is rendered on every `up`, so an edit to a template or to a
shared definition reaches the platform on the next `up`.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from infra.local.config import SHARED, LocalPlatformConfig
from infra.local.programs import START_ORDER, Program, build_programs, postgres_user
from infra.local.secrets import PlatformSecrets
from infra.local.supervisor import SupervisedConfig

TEMPLATES = Path(__file__).with_name("templates")
APP_IDENTITIES = ("its-api", "its-worker")


def _jinja() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - server config files, not HTML
    )


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def _chown_postgres(path: Path) -> None:
    user = postgres_user()
    if user:
        shutil.chown(path, user, user)


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def app_environment(cfg: LocalPlatformConfig, secrets: PlatformSecrets) -> dict[str, dict[str, str]]:
    """The ITS_* settings each app identity runs with: the same names the Helm chart sets."""
    p = cfg.ports
    redis = load_yaml(SHARED["redis"])
    common = {
        "ITS_ENVIRONMENT": "local",
        "ITS_DATABASE_URL": f"postgresql://its_app@127.0.0.1:{p.pgbouncer}/its",
        "ITS_TIMESCALE": "auto",
        "ITS_KAFKA_BOOTSTRAP_SERVERS": ",".join(f"127.0.0.1:{port}" for port in p.many("kafka_broker")),
        "ITS_REDIS_SENTINELS": ",".join(f"127.0.0.1:{port}" for port in p.many("sentinel")),
        "ITS_REDIS_MASTER_NAME": redis["master_name"],
        "ITS_MINIO_ENDPOINT": f"127.0.0.1:{p.minio_api}",
        "ITS_MINIO_SECURE": "false",
        "ITS_VAULT_ADDR": f"http://127.0.0.1:{p.vault}",
        "ITS_VAULT_AUTH_METHOD": "approle",
        "ITS_WORKER_METRICS_PORT": str(p.worker_metrics),
        "ITS_RATE_LIMIT_PER_MINUTE": "600",
        "PYTHONUNBUFFERED": "1",
        "YOLO_OFFLINE": "1",
        "YOLO_CONFIG_DIR": str(cfg.path("ultralytics")),
    }
    env: dict[str, dict[str, str]] = {}
    for identity in APP_IDENTITIES:
        env[identity] = {
            **common,
            "ITS_VAULT_ROLE": identity,
            "ITS_VAULT_ROLE_ID": str(secrets.get(f"vault_role_id:{identity}") or ""),
            "ITS_VAULT_SECRET_ID_FILE": str(cfg.path("secrets", f"{identity}.secret-id")),
        }
    return env


def render_all(cfg: LocalPlatformConfig, secrets: PlatformSecrets) -> None:
    jinja = _jinja()
    conf = cfg.conf_dir
    for directory in (cfg.state_dir, conf, cfg.log_dir):
        directory.mkdir(parents=True, exist_ok=True)
    conf.chmod(0o700)
    # The state root must be traversable by the postgres user when running as root.
    cfg.state_dir.chmod(0o755)
    p = cfg.ports

    def render(template: str, target: Path, mode: int = 0o600, **context: Any) -> None:
        _write(target, jinja.get_template(template).render(**context), mode)

    # PostgreSQL: two Patroni members behind HAProxy and PgBouncer.
    members = []
    for index, (pg_port, rest_port) in enumerate(
        zip(p.many("postgres"), p.many("patroni_rest"), strict=True)
    ):
        member_dir = cfg.path("postgres", f"pg{index}")
        member_dir.mkdir(parents=True, exist_ok=True)
        member_dir.chmod(0o700)
        _chown_postgres(member_dir)
        members.append({"name": f"pg{index}", "pg_port": pg_port, "rest_port": rest_port})
        target = conf / f"patroni{index}.yml"
        render(
            "patroni.yml.j2",
            target,
            name=f"pg{index}",
            port_base=cfg.port_base,
            rest_port=rest_port,
            etcd_port=p.etcd_client,
            pg_port=pg_port,
            data_dir=member_dir / "data",
            member_dir=member_dir,
            bin_dir=cfg.tools.postgres_bin,
            secrets=secrets.values,
        )
        _chown_postgres(target)
    render(
        "haproxy.cfg.j2",
        conf / "haproxy.cfg",
        haproxy_primary=p.haproxy_primary,
        haproxy_stats=p.haproxy_stats,
        members=members,
    )
    bouncer_dir = cfg.path("pgbouncer")
    bouncer_dir.mkdir(parents=True, exist_ok=True)
    _chown_postgres(bouncer_dir)
    render(
        "pgbouncer.ini.j2",
        conf / "pgbouncer.ini",
        pgbouncer_port=p.pgbouncer,
        haproxy_primary=p.haproxy_primary,
        dir=bouncer_dir,
    )
    _chown_postgres(conf / "pgbouncer.ini")
    userlist = bouncer_dir / "userlist.txt"
    _write(
        userlist,
        f'"its_app" "{secrets["postgres_app"]}"\n"postgres" "{secrets["postgres_superuser"]}"\n',
    )
    _chown_postgres(userlist)
    if postgres_user():
        # PgBouncer and Patroni run as postgres and read their files from conf/.
        shutil.chown(conf, "postgres", "postgres")

    # Redis: master, replicas and sentinels from infrastructure/redis/redis.yaml.
    redis = load_yaml(SHARED["redis"])
    redis_ports = p.many("redis")
    for index, port in enumerate(redis_ports):
        target = cfg.path("redis", f"redis{index}", "redis.conf")
        if not target.exists():
            render(
                "redis.conf.j2",
                target,
                name=f"redis{index}",
                port=port,
                dir=target.parent,
                settings=redis["redis"],
                master_port=redis_ports[0] if index else None,
            )
    for index, port in enumerate(p.many("sentinel")):
        target = cfg.path("redis", f"sentinel{index}", "sentinel.conf")
        if not target.exists():
            render(
                "sentinel.conf.j2",
                target,
                name=f"sentinel{index}",
                port=port,
                dir=target.parent,
                master_name=redis["master_name"],
                master_port=redis_ports[0],
                sentinel=redis["sentinel"],
            )

    # Kafka: three KRaft nodes, broker defaults from infrastructure/kafka/topics.yaml.
    topics = load_yaml(SHARED["topics"])
    voters = ",".join(
        f"{index + 1}@127.0.0.1:{port}" for index, port in enumerate(p.many("kafka_controller"))
    )
    for index, (broker, controller) in enumerate(
        zip(p.many("kafka_broker"), p.many("kafka_controller"), strict=True)
    ):
        render(
            "kafka.properties.j2",
            conf / f"kafka{index}.properties",
            mode=0o644,
            node_id=index + 1,
            voters=voters,
            broker_port=broker,
            controller_port=controller,
            data_dir=cfg.path("kafka", f"node{index + 1}"),
            defaults=topics["defaults"],
        )
    shutil.copyfile(TEMPLATES / "log4j2.properties", conf / "log4j2.properties")

    # MinIO's four drives; Vault's file storage.
    for drive in range(1, 5):
        cfg.path("minio", f"drive{drive}").mkdir(parents=True, exist_ok=True)
    cfg.path("vault", "data").mkdir(parents=True, exist_ok=True)
    render("rvault.hcl.j2", conf / "vault.hcl", port=p.vault, data_dir=cfg.path("vault", "data"))

    # Monitoring.
    render(
        "prometheus.yml.j2",
        conf / "prometheus.yml",
        mode=0o644,
        p=p,
        many=p.many,
        rules_dir=SHARED["prometheus_rules"],
    )
    shutil.copyfile(TEMPLATES / "blackbox.yml", conf / "blackbox.yml")

    render_supervisor(cfg, secrets)


def render_supervisor(cfg: LocalPlatformConfig, secrets: PlatformSecrets) -> None:
    programs = build_programs(cfg, secrets, app_environment(cfg, secrets))
    write_supervisord_conf(cfg, cfg.port_base, programs, START_ORDER)


def write_supervisord_conf(
    cfg: SupervisedConfig, port_base: int, programs: list[Program], group_order: tuple[str, ...]
) -> None:
    """supervisord.conf for a set of programs (the local platform's, the local cluster's)."""
    groups: dict[str, list[str]] = {group: [] for group in group_order}
    for program in programs:
        groups[program.group].append(program.name)
    text = (
        _jinja()
        .get_template("supervisord.conf.j2")
        .render(
            state=cfg.state_dir,
            logs=cfg.log_dir,
            port_base=port_base,
            programs=[
                {
                    "name": program.name,
                    "command": program.render_command().replace("%", "%%"),
                    "directory": program.directory,
                    "environment": program.render_environment(),
                    "user": program.user,
                    "stopsignal": program.stopsignal,
                    "stopwaitsecs": program.stopwaitsecs,
                    "startsecs": program.startsecs,
                    "autorestart": program.autorestart,
                }
                for program in programs
            ],
            groups=groups,
        )
    )
    _write(cfg.conf_dir / "supervisord.conf", text)
    (cfg.conf_dir / "supervisord.conf").chmod(0o600)
