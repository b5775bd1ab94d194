"""The local platform: every data stack of infra/local/stacks started in order, each waited on
and provisioned, under one supervisord in the state directory."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, TypeVar

from infra.kernel.health import Health, wait_until
from infra.kernel.programs import closed_to_others, postgres_user
from infra.kernel.supervisor import Supervisor, write_supervisord_conf
from infra.local.config import LocalPlatformConfig
from infra.local.secrets import PlatformSecrets
from infra.local.stacks import START_ORDER, App, Context, Stack
from infra.local.stacks.cameras import STREAM_CAMERAS

S = TypeVar("S", bound=Stack)


def _say(message: str) -> None:
    print(message, flush=True)


class Platform:
    def __init__(self, cfg: LocalPlatformConfig, log: Callable[[str], None] = _say) -> None:
        self.cfg = cfg
        self.log = log
        self.supervisor = Supervisor(cfg)
        wanted = [name for stack in START_ORDER for name in stack.generated_secrets]
        self.secrets = PlatformSecrets.ensure(cfg.secrets_file, wanted)
        ctx = Context(cfg, self.secrets, self.supervisor, log, self._reload_programs)
        self.stacks: list[Stack] = [stack(ctx) for stack in START_ORDER]

    def stack(self, kind: type[S]) -> S:
        return next(s for s in self.stacks if isinstance(s, kind))

    def _write_programs(self) -> None:
        programs = [program for stack in self.stacks for program in stack.programs()]
        order = tuple(stack.name for stack in self.stacks)
        write_supervisord_conf(self.cfg, f"its-local-{self.cfg.port_base}", programs, order)

    def _reload_programs(self) -> None:
        self._write_programs()
        self.supervisor.reload()

    def up(self, smoke: bool = True) -> None:
        started = time.monotonic()
        if missing := self.cfg.tools.missing():
            raise SystemExit(f"up: not installed: {', '.join(missing)}; run tools/install.sh (make up does)")
        self.log(f"==> [up] state {self.cfg.state_dir}, ports from {self.cfg.port_base}")
        self.cfg.make_dirs()
        self.cfg.conf_dir.chmod(0o700)
        # The state root must be traversable by the postgres user when running as root.
        self.cfg.state_dir.chmod(0o755)
        if postgres_user() and (closed := closed_to_others(self.cfg.state_dir)):
            # Not opened here: widening a home directory's mode is the owner's decision.
            raise SystemExit(
                f"up: PostgreSQL runs as the postgres user, which cannot enter {closed} (mode "
                f"{closed.stat().st_mode & 0o777:o}) on the way to the state directory "
                f"{self.cfg.state_dir}: `chmod o+x {closed}`, or set ITS_STATE_DIR to a directory "
                "it can reach (e.g. under /tmp)"
            )
        for stack in self.stacks:
            stack.render()
        self._write_programs()
        self.supervisor.start_daemon()
        for stack in self.stacks:
            step = time.monotonic()
            stack.start()
            wait_until(stack.name, stack.ready, stack.start_timeout, log=self.log)
            detail = stack.provision()
            self.log(
                f"    {stack.name}: healthy in {time.monotonic() - step:.1f}s"
                + (f"; {detail}" if detail else "")
            )
        if smoke:
            self.smoke()
        self.log(f"==> [up] platform up in {time.monotonic() - started:.1f}s; `make status` shows it")

    def smoke(self) -> None:
        from app.smoke import run_smoke, run_stream_smoke

        self.log("==> [smoke] frame in through the API, detection out through the API")
        api_url, operator = self.stack(App).api_url, self.secrets.api_credentials().operator
        self.log(f"    {run_smoke(api_url, operator, timeout_s=120).summary()}")
        self.log("==> [smoke] a test camera's stream in through the ingest, detection out through the API")
        self.log(f"    {run_stream_smoke(api_url, operator, STREAM_CAMERAS[0], timeout_s=120).summary()}")

    def down(self) -> None:
        if not self.supervisor.running():
            self.log("==> [down] nothing running")
            return
        self.log("==> [down] stopping every program, then supervisord")
        self.supervisor.shutdown()
        self.log("    stopped")

    def status(self) -> dict[str, dict[str, Any]]:
        running = self.supervisor.running()
        report: dict[str, dict[str, Any]] = {}
        for stack in self.stacks:
            if running:
                services = stack.status()
            else:
                services = {
                    name: Health(False, {"supervisor": "not running"}) for name in stack.status_names()
                }
            report.update({name: asdict(health) for name, health in services.items()})
        return report
