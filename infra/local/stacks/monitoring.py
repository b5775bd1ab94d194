"""Monitoring: Prometheus with the rules of infrastructure/prometheus/rules (checked by promtool
first), Alertmanager with infrastructure/prometheus/alertmanager.yaml, and the exporters; a
blackbox probe where no exporter exists, named as such."""

from __future__ import annotations

import subprocess

from infra.facts.paths import INFRASTRUCTURE
from infra.facts.redis import secret_name as redis_secret_name
from infra.kernel.health import Health
from infra.kernel.layout import HOST
from infra.kernel.programs import Program
from infra.local.stacks.base import TEMPLATES, Stack, endpoints, http_ok

RULES_DIR = INFRASTRUCTURE / "prometheus" / "rules"
ALERTMANAGER_CONFIG = INFRASTRUCTURE / "prometheus" / "alertmanager.yaml"


def rule_files() -> list[str]:
    return [str(path) for path in sorted(RULES_DIR.glob("*.yaml"))]


class Monitoring(Stack):
    name = "monitoring"
    start_timeout = 60

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
        )
        blackbox = self.cfg.conf_dir / "blackbox.yml"
        blackbox.write_text((TEMPLATES / "monitoring" / "blackbox.yml").read_text())

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
                    f"--config.file={ALERTMANAGER_CONFIG}",
                    f"--storage.path={s / 'alertmanager'}",
                    f"--web.listen-address={HOST}:{p.alertmanager}",
                    "--cluster.listen-address=",
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
                    ],
                    environment={
                        "DATA_SOURCE_NAME": f"postgresql://postgres:{superuser}@{HOST}:{pg_port}/postgres?sslmode=disable"
                    },
                )
            )
        return programs

    def health(self) -> Health:
        p = self.ports
        ok, detail = http_ok(f"http://{HOST}:{p.prometheus}/-/ready")
        am_ok, am_detail = http_ok(f"http://{HOST}:{p.alertmanager}/-/ready")
        return Health(
            ok and am_ok,
            {"prometheus": detail, "alertmanager": am_detail},
            endpoints(p.prometheus, p.alertmanager),
        )

    def provision(self) -> str:
        return f"{len(rule_files())} rule files loaded"

    def status_names(self) -> tuple[str, ...]:
        return ("prometheus",)

    def status(self) -> dict[str, Health]:
        return {"prometheus": self.health()}
