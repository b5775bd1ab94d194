"""Monitoring: Prometheus with the rules of infrastructure/prometheus/rules (checked by promtool
first), Alertmanager with infrastructure/prometheus/alertmanager.yaml (its receivers pointed at
the local webhook receiver), the receiver itself, and the exporters; a blackbox probe where no
exporter exists, named as such."""

from __future__ import annotations

import copy
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from infra.facts.paths import INFRASTRUCTURE
from infra.facts.redis import secret_name as redis_secret_name
from infra.kernel.health import Health
from infra.kernel.layout import HOST
from infra.kernel.programs import Program
from infra.local.config import AlertingSettings
from infra.local.stacks.base import TEMPLATES, Stack, endpoints, http_ok, url
from infra.local.stacks.postgres import DATABASE

RULES_DIR = INFRASTRUCTURE / "prometheus" / "rules"
ALERTMANAGER_CONFIG = INFRASTRUCTURE / "prometheus" / "alertmanager.yaml"
# The postgres exporter's custom queries, in the format CloudNativePG's customQueriesConfigMap
# takes too, so one file serves the local exporter and the cluster.
POSTGRES_QUERIES = INFRASTRUCTURE / "prometheus" / "postgres-exporter-queries.yaml"
# The label the local Prometheus puts on node-exporter's series of the state directory's
# filesystem: every data stack's volume lives there locally (the rules' LocalStateDiskFillingUp).
STATE_VOLUME = "its-state"


def rule_files() -> list[str]:
    return [str(path) for path in sorted(RULES_DIR.glob("*.yaml"))]


def local_alertmanager_config(
    shared: dict[str, Any], receiver_url: str, token_file: Path, timing: AlertingSettings
) -> dict[str, Any]:
    """alertmanager.yaml as the local Alertmanager runs it: every receiver posts to the local
    webhook receiver (its path names the receiver) with resolutions, logged in with the
    receiver's bearer token from `token_file`, and the root route takes the local timing. The
    route tree and the inhibit rules stay as the shared file has them."""
    config = copy.deepcopy(shared)
    login = {"authorization": {"type": "Bearer", "credentials_file": str(token_file)}}
    for receiver in config["receivers"]:
        receiver["webhook_configs"] = [
            {"url": f"{receiver_url}/{receiver['name']}", "send_resolved": True, "http_config": login}
        ]
    config["route"]["group_wait"] = timing.group_wait
    config["route"]["group_interval"] = timing.group_interval
    return config


def mount_point(path: Path) -> str:
    """The mount point of the filesystem holding `path` (what node-exporter labels it with)."""
    path = path.resolve()
    while not os.path.ismount(path):
        path = path.parent
    return str(path)


class Monitoring(Stack):
    name = "monitoring"
    start_timeout = 60
    # The alert receiver's bearer token (Alertmanager and the readers present it).
    generated_secrets = ("alert_receiver_token",)

    def render(self) -> None:
        # promtool validates the alert and recording rules before Prometheus loads them.
        subprocess.run(["promtool", "check", "rules", *rule_files()], check=True, capture_output=True)
        self.ctx.render(
            "monitoring/prometheus.yml.j2",
            self.cfg.conf_dir / "prometheus.yml",
            mode=0o644,
            p=self.ports,
            many=self.ports.many,
            rules_dir=RULES_DIR,
            state_mountpoint=re.escape(mount_point(self.cfg.state_dir)),
            state_volume=STATE_VOLUME,
        )
        self.render_receiver_token()
        self.render_alertmanager()
        blackbox = self.cfg.conf_dir / "blackbox.yml"
        blackbox.write_text((TEMPLATES / "monitoring" / "blackbox.yml").read_text())

    @property
    def alertmanager_config(self) -> Path:
        return self.cfg.conf_dir / "alertmanager.yml"

    @property
    def receiver_url(self) -> str:
        return url(self.ports.alert_receiver)

    @property
    def receiver_journal(self) -> Path:
        return self.cfg.path("alerts", "notifications.jsonl")

    def render_receiver_token(self) -> None:
        token_file = self.cfg.alert_receiver_token_file
        token_file.write_text(str(self.secrets["alert_receiver_token"]))
        token_file.chmod(0o600)

    def render_alertmanager(self) -> None:
        shared = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
        config = local_alertmanager_config(
            shared, self.receiver_url, self.cfg.alert_receiver_token_file, self.cfg.file.alerting
        )
        target = self.alertmanager_config
        target.write_text(
            "# Rendered by infra/local/stacks/monitoring.py from infrastructure/prometheus/\n"
            "# alertmanager.yaml: receivers point at the local webhook receiver; edit routes and\n"
            "# inhibit rules there.\n" + yaml.safe_dump(config, sort_keys=False)
        )
        target.chmod(0o644)
        # amtool checks what Alertmanager will load, as promtool checks the rules.
        result = subprocess.run(["amtool", "check-config", str(target)], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"amtool check-config {target}:\n{result.stdout}{result.stderr}")

    def programs(self) -> list[Program]:
        p, s, conf = self.ports, self.cfg.state_dir, self.cfg.conf_dir
        programs = [
            Program(
                "prometheus",
                self.name,
                [
                    "prometheus",
                    f"--config.file={conf / 'prometheus.yml'}",
                    f"--storage.tsdb.path={s / 'prometheus'}",
                    f"--web.listen-address={HOST}:{p.prometheus}",
                    "--web.enable-lifecycle",
                    "--storage.tsdb.retention.time=2d",
                ],
            ),
            Program(
                "alertmanager",
                self.name,
                [
                    "prometheus-alertmanager",
                    f"--config.file={self.alertmanager_config}",
                    f"--storage.path={s / 'alertmanager'}",
                    f"--web.listen-address={HOST}:{p.alertmanager}",
                    "--cluster.listen-address=",
                ],
            ),
            Program(
                "alert-receiver",
                self.name,
                [
                    str(self.cfg.tools.python),
                    "-m",
                    "infra.local.alert_receiver",
                    f"--port={p.alert_receiver}",
                    f"--log={self.receiver_journal}",
                    f"--token-file={self.cfg.alert_receiver_token_file}",
                ],
            ),
            Program(
                "blackbox-exporter",
                self.name,
                [
                    "prometheus-blackbox-exporter",
                    f"--config.file={conf / 'blackbox.yml'}",
                    f"--web.listen-address={HOST}:{p.blackbox_exporter}",
                ],
            ),
            Program(
                "redis-exporter",
                self.name,
                ["prometheus-redis-exporter", f"--web.listen-address={HOST}:{p.redis_exporter}"],
                # redis.yaml's `exporter` identity, on the servers and the Sentinels alike; in
                # the environment, not on the command line (`ps` shows arguments to anyone).
                environment={
                    "REDIS_USER": "exporter",
                    "REDIS_PASSWORD": str(self.secrets[redis_secret_name("exporter")]),
                },
            ),
            Program(
                "node-exporter",
                self.name,
                [
                    "prometheus-node-exporter",
                    f"--web.listen-address={HOST}:{p.node_exporter}",
                    "--collector.disable-defaults",
                    "--collector.cpu",
                    "--collector.meminfo",
                    "--collector.loadavg",
                    "--collector.filesystem",
                    # Debian's default also skips overlay: the state directory may well be on one.
                    "--collector.filesystem.fs-types-exclude="
                    "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs"
                    "|iso9660|mqueue|nsfs|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs"
                    "|sysfs|tracefs)$",
                    "--collector.diskstats",
                ],
            ),
        ]
        superuser = self.secrets["postgres_superuser"]
        for index, (port, pg_port) in enumerate(
            zip(p.many("postgres_exporter"), p.many("postgres"), strict=True)
        ):
            programs.append(
                Program(
                    f"postgres-exporter{index}",
                    self.name,
                    [
                        "prometheus-postgres-exporter",
                        f"--web.listen-address={HOST}:{port}",
                        "--auto-discover-databases",
                        f"--extend.query-path={POSTGRES_QUERIES}",
                    ],
                    # The app's database is the exporter's own ("master") one: the custom queries
                    # (`master: true`) read its tables; the others are still discovered.
                    environment={
                        "DATA_SOURCE_NAME": f"postgresql://postgres:{superuser}@{HOST}:{pg_port}/{DATABASE}?sslmode=disable"
                    },
                )
            )
        return programs

    def health(self) -> Health:
        p = self.ports
        ok, detail = http_ok(url(p.prometheus, "/-/ready"))
        am_ok, am_detail = http_ok(url(p.alertmanager, "/-/ready"))
        receiver_ok, receiver_detail = http_ok(f"{self.receiver_url}/-/ready")
        return Health(
            ok and am_ok and receiver_ok,
            {"prometheus": detail, "alertmanager": am_detail, "alert_receiver": receiver_detail},
            endpoints(p.prometheus, p.alertmanager, p.alert_receiver),
        )

    def provision(self) -> str:
        return f"{len(rule_files())} rule files loaded"

    def status_names(self) -> tuple[str, ...]:
        return ("prometheus",)

    def status(self) -> dict[str, Health]:
        return {"prometheus": self.health()}
