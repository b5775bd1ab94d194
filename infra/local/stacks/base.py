"""What every data stack of the local platform is: its programs, its rendered config, its health
check, its provisioning and how long it may take to come up. One subclass per stack."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import httpx
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from infra.kernel.health import Health
from infra.kernel.layout import HOST
from infra.kernel.programs import Program, postgres_user
from infra.kernel.supervisor import Supervisor
from infra.local.config import LocalPlatformConfig, PlatformConfigError
from infra.local.secrets import PlatformSecrets

TEMPLATES = Path(__file__).with_name("templates")


def endpoints(*ports: int) -> list[str]:
    return [f"{HOST}:{port}" for port in ports]


def url(port: int, path: str = "") -> str:
    """An HTTP endpoint of the local platform (every server listens on loopback only)."""
    return f"http://{HOST}:{port}{path}"


def http_ok(address: str, timeout: float = 2.0) -> tuple[bool, str]:
    """Whether a health endpoint answers 200, and what it answered (for the status detail)."""
    try:
        response = httpx.get(address, timeout=timeout)
    except httpx.HTTPError as error:
        return False, type(error).__name__
    return response.status_code == 200, f"HTTP {response.status_code}"


def chown_postgres(path: Path) -> None:
    user = postgres_user()
    if user:
        shutil.chown(path, user, user)


@dataclass
class Context:
    """What a stack works with: the config, the generated secrets, the supervisor, a log."""

    cfg: LocalPlatformConfig
    secrets: PlatformSecrets
    supervisor: Supervisor
    log: Callable[[str], None]
    # Re-renders supervisord.conf from every stack and reloads it (a stack whose programs
    # need what an earlier stack provisioned calls it before starting).
    reload_programs: Callable[[], None]

    def render(self, template: str, target: Path, mode: int = 0o600, **context: Any) -> None:
        jinja = Environment(
            loader=FileSystemLoader(TEMPLATES),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
            autoescape=False,  # noqa: S701 - server config files, not HTML
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(jinja.get_template(template).render(**context))
        target.chmod(mode)


class Stack:
    """A data stack. `up` renders every stack, then for each in start order: start, wait until
    `ready`, provision. `status` reports `status()`; drills use `health()`."""

    name: ClassVar[str]
    # Seconds the stack may take to become ready on a cold 2-core machine.
    start_timeout: ClassVar[float]
    # Names of the credentials this stack needs generated (kept in the state directory).
    generated_secrets: ClassVar[tuple[str, ...]] = ()

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.cfg = ctx.cfg
        self.ports = ctx.cfg.ports
        self.secrets = ctx.secrets

    def render(self) -> None:
        """Write the stack's config files under the state directory."""

    def programs(self) -> list[Program]:
        raise NotImplementedError

    def start(self) -> None:
        self.ctx.supervisor.start_group(self.name)

    def health(self) -> Health:
        raise NotImplementedError

    def ready(self) -> Health:
        """What `up` waits on before provisioning (by default: healthy)."""
        return self.health()

    def provision(self) -> str:
        """Create what the stack holds for the app (idempotent); return one line for the log."""
        return ""

    def status(self) -> dict[str, Health]:
        """The services this stack reports in `make status`, by name."""
        return {self.name: self.health()}

    def status_names(self) -> tuple[str, ...]:
        """The names `status` reports (what is listed when nothing runs)."""
        return (self.name,)

    def require_ports(self, name: str, count: int, why: str) -> list[int]:
        ports = self.ports.many(name)
        if len(ports) != count:
            raise PlatformConfigError(
                f"platform.yaml: ports.{name} has {len(ports)} ports; {why} needs {count}"
            )
        return ports
