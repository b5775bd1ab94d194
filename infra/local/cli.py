"""`python -m infra.local up|down|status|smoke|unsealer`: the local platform's one entry point."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import httpx

from infra.local import backup
from infra.local.config import HOST, SHARED, LocalPlatformConfig, PlatformConfigError
from infra.local.health import Health, HealthChecks, wait_until
from infra.local.programs import START_ORDER
from infra.local.provision import kafka, minio, postgres, vault
from infra.local.render import render_all, render_supervisor
from infra.local.secrets import LOCAL_CAMERAS, PlatformSecrets
from infra.local.supervisor import Supervisor

# How long each stack may take to become healthy on a cold 2-core machine.
HEALTH_TIMEOUTS = {
    "etcd": 30,
    "postgres": 120,
    "redis": 60,
    "kafka": 120,
    "minio": 60,
    "vault": 30,
    "monitoring": 60,
    "app": 180,
}


def log(message: str) -> None:
    print(message, flush=True)


def check_rules() -> None:
    """promtool validates the alert and recording rules before Prometheus loads them."""
    rules = sorted(SHARED["prometheus_rules"].glob("*.yaml"))
    if rules:
        subprocess.run(["promtool", "check", "rules", *map(str, rules)], check=True, capture_output=True)


class Platform:
    def __init__(self, cfg: LocalPlatformConfig) -> None:
        self.cfg = cfg
        self.secrets = PlatformSecrets.ensure(cfg.secrets_file)
        self.supervisor = Supervisor(cfg)
        self.checks = HealthChecks(cfg, self.secrets)

    def _group_health(self, group: str) -> Callable[[], Health]:
        c = self.checks
        if group == "monitoring":
            return c.prometheus
        if group == "postgres":
            # The app role behind PgBouncer is created by provisioning, after this wait.
            return lambda: c.postgres(through_bouncer=False)
        if group == "app":

            def both() -> Health:
                api, worker = c.api(), c.worker()
                return Health(
                    api.healthy and worker.healthy,
                    api.endpoints + worker.endpoints,
                    {"api": api.detail, "worker": worker.detail},
                )

            return both
        return c.by_service()[group]

    def up(self, smoke: bool = True) -> None:
        started = time.monotonic()
        missing = self.cfg.tools.missing()
        if missing:
            raise SystemExit(f"up: not installed: {', '.join(missing)}; run tools/install.sh (make up does)")
        log(f"==> [up] state {self.cfg.state_dir}, ports from {self.cfg.port_base}")
        render_all(self.cfg, self.secrets)
        check_rules()
        self.supervisor.start_daemon()
        for group in START_ORDER:
            step = time.monotonic()
            if group == "kafka":
                kafka.format_storage(self.cfg, self.secrets)
            if group == "app":
                # The app's Vault identities exist only now: re-render and reload its programs.
                render_supervisor(self.cfg, self.secrets)
                self.supervisor.reload()
            self.supervisor.start_group(group)
            if group == "vault":
                wait_until(lambda: Health(_vault_answers(self), [], {}), "vault to answer", 30, log)
                vault.unseal(self.cfg, self.secrets)
            wait_until(self._group_health(group), group, HEALTH_TIMEOUTS[group], log)
            detail = self._provision(group)
            log(f"    {group}: healthy in {time.monotonic() - step:.1f}s{'; ' + detail if detail else ''}")
        if smoke:
            self.smoke()
        log(f"==> [up] platform up in {time.monotonic() - started:.1f}s; `make status` shows it")

    def _provision(self, group: str) -> str:
        if group == "postgres":
            return postgres.provision(self.cfg, self.secrets)
        if group == "kafka":
            return kafka.provision(self.cfg)
        if group == "minio":
            return minio.provision(self.cfg, self.secrets)
        if group == "vault":
            return vault.provision(self.cfg, self.secrets)
        if group == "monitoring":
            return f"{len(list(SHARED['prometheus_rules'].glob('*.yaml')))} rule files loaded"
        if group == "app":
            return self._register_cameras()
        return ""

    def _register_cameras(self) -> str:
        """The cameras the local camera keys are bound to, registered through the API."""
        operator = self.secrets.api_credentials().operator
        for camera in LOCAL_CAMERAS:
            response = httpx.post(
                f"http://{HOST}:{self.cfg.ports.api}/v1/cameras",
                json={"id": camera, "name": f"Local camera {camera}"},
                headers={"X-API-Key": operator},
                timeout=10,
            )
            if response.status_code not in (201, 409):
                raise RuntimeError(f"registering {camera}: {response.status_code} {response.text}")
        return f"cameras {', '.join(LOCAL_CAMERAS)} registered; API keys in {self.secrets.credentials_file}"

    def smoke(self) -> None:
        from app.smoke import run_smoke

        log("==> [smoke] frame in through the API, detection out through the API")
        result = run_smoke(
            f"http://127.0.0.1:{self.cfg.ports.api}", self.secrets.api_credentials().operator, timeout_s=120
        )
        log(f"    {result.summary()}")

    def down(self) -> None:
        if not self.supervisor.running():
            log("==> [down] nothing running")
            return
        log("==> [down] stopping every program, then supervisord")
        self.supervisor.shutdown()
        log("    stopped")

    def status(self) -> dict[str, dict[str, object]]:
        report: dict[str, dict[str, object]] = {}
        running = self.supervisor.running()
        for name, check in self.checks.by_service().items():
            health = check() if running else Health(False, [], {"supervisor": "not running"})
            report[name] = asdict(health)
        return report

    def unsealer(self) -> None:
        """Supervised loop: unseal Vault whenever it is found sealed (after a restart)."""
        while True:
            try:
                # Re-read each time: this process starts before `up` initialises Vault.
                secrets = PlatformSecrets(self.cfg.secrets_file)
                initialised = _vault_answers(self) and secrets.get("vault_init")
                if initialised and vault.client(self.cfg).sys.is_sealed():
                    vault.unseal(self.cfg, secrets)
                    log("vault was sealed: unsealed")
            except Exception as error:
                log(f"unsealer: {error}")
            time.sleep(1)


def _vault_answers(platform: Platform) -> bool:
    try:
        vault.client(platform.cfg).sys.is_initialized()
    except Exception:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.local", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start, provision and smoke-check the platform (idempotent)")
    up.add_argument("--no-smoke", action="store_true")
    sub.add_parser("down", help="stop every process of the platform")
    sub.add_parser("status", help="print one JSON object: endpoints and health of each service")
    sub.add_parser("smoke", help="frame in, detection out, through the running platform")
    sub.add_parser("unsealer", help=argparse.SUPPRESS)
    sub.add_parser("backup", help="PostgreSQL base backup to s3://its-backups/postgres/base/")
    restore = sub.add_parser("restore", help="newest backup into a new data dir, served on --port")
    restore.add_argument("--data-dir", type=Path, required=True)
    restore.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    try:
        platform = Platform(LocalPlatformConfig.load())
    except PlatformConfigError as error:
        print(f"infra.local: {error}", file=sys.stderr)
        return 2
    if args.command == "up":
        platform.up(smoke=not args.no_smoke)
    elif args.command == "down":
        platform.down()
    elif args.command == "status":
        report = platform.status()
        healthy = all(s["healthy"] for s in report.values())
        # The local Kubernetes cluster (make cluster-up) is reported beside the data stacks; it
        # is optional, so it does not decide the exit code.
        from infra.cluster.config import ClusterConfig
        from infra.cluster.health import ClusterHealth

        report.update(ClusterHealth(ClusterConfig.load()).status())
        print(json.dumps(report, indent=2, default=str))
        return 0 if healthy else 1
    elif args.command == "smoke":
        platform.smoke()
    elif args.command == "unsealer":
        platform.unsealer()
    elif args.command == "backup":
        print(backup.describe(backup.backup(platform.cfg, platform.secrets)))
    elif args.command == "restore":
        print(backup.describe(backup.restore(platform.cfg, platform.secrets, args.data_dir, args.port)))
    return 0
