"""supervisord for a supervised set: its config rendered from the programs, and a client that
talks to it over its unix socket (supervisor's own XML-RPC client)."""

from __future__ import annotations

import subprocess
import sys
import time
import xmlrpc.client
from pathlib import Path
from typing import Any, cast

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from supervisor.xmlrpc import SupervisorTransport

from infra.kernel.layout import StateLayout
from infra.kernel.programs import Program

TEMPLATES = Path(__file__).with_name("templates")
# supervisord comes with the project's virtualenv, beside the interpreter running this.
SUPERVISORD = Path(sys.executable).parent / "supervisord"


def write_supervisord_conf(
    layout: StateLayout, identifier: str, programs: list[Program], group_order: tuple[str, ...]
) -> Path:
    """supervisord.conf for a set of programs, grouped in start order; returns its path."""
    groups: dict[str, list[str]] = {group: [] for group in group_order}
    for program in programs:
        groups[program.group].append(program.name)
    jinja = Environment(
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - an INI file, not HTML
    )
    text = jinja.get_template("supervisord.conf.j2").render(
        state=layout.state_dir,
        logs=layout.log_dir,
        identifier=identifier,
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
        groups={group: members for group, members in groups.items() if members},
    )
    target = layout.conf_dir / "supervisord.conf"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    target.chmod(0o600)
    return target


class Supervisor:
    def __init__(self, layout: StateLayout) -> None:
        self.cfg = layout
        self.socket = layout.state_dir / "supervisor.sock"

    @property
    def _rpc(self) -> Any:
        transport = SupervisorTransport(None, None, f"unix://{self.socket}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor

    def running(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            return cast(str, self._rpc.getState()["statename"]) == "RUNNING"
        except (OSError, xmlrpc.client.Fault):
            return False

    def start_daemon(self) -> None:
        if self.running():
            return
        conf = self.cfg.conf_dir / "supervisord.conf"
        subprocess.run([str(SUPERVISORD), "-c", str(conf)], check=True)
        deadline = time.monotonic() + 30
        while not self.running():
            if time.monotonic() > deadline:
                raise RuntimeError(f"supervisord did not come up; see {self.cfg.log_dir / 'supervisord.log'}")
            time.sleep(0.2)

    def reload(self) -> None:
        """Pick up a re-rendered supervisord.conf: changed groups that are stopped are replaced."""
        added, changed, removed = self._rpc.reloadConfig()[0]
        for group in removed + changed:
            self._rpc.stopProcessGroup(group)
            self._rpc.removeProcessGroup(group)
        for group in changed + added:
            self._rpc.addProcessGroup(group)

    def info(self) -> dict[str, dict[str, Any]]:
        return {p["name"]: p for p in self._rpc.getAllProcessInfo()}

    def state(self, name: str) -> str:
        return cast(str, self._rpc.getProcessInfo(self._qualified(name))["statename"])

    def _qualified(self, name: str) -> str:
        for info in self._rpc.getAllProcessInfo():
            if info["name"] == name:
                return f"{info['group']}:{name}"
        raise KeyError(f"no supervised program named {name!r}")

    def start(self, name: str) -> None:
        try:
            self._rpc.startProcess(self._qualified(name), True)
        except xmlrpc.client.Fault as fault:
            if "ALREADY_STARTED" in fault.faultString:
                return
            # SPAWN_ERROR includes "exited before startsecs": supervisord retries that on its
            # own (startretries), so wait for its verdict rather than give up on the first try.
            if "SPAWN_ERROR" in fault.faultString and self._wait_running(name):
                return
            # Say why right here: in CI the state directory is gone by the time anyone looks.
            raise RuntimeError(
                f"{name}: {fault.faultString}\n--- {name}.log ---\n{self._tail(name + '.log')}"
                f"\n--- supervisord.log ---\n{self._tail('supervisord.log')}"
            ) from fault

    def _wait_running(self, name: str, timeout: float = 90) -> bool:
        """True once supervisord has the program RUNNING; False when it gives up (FATAL)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.state(name)
            if state == "RUNNING":
                return True
            if state in ("FATAL", "STOPPED", "EXITED"):
                return False
            time.sleep(0.5)
        return False

    def _tail(self, log_name: str, lines: int = 15) -> str:
        path = self.cfg.log_dir / log_name
        return (
            "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else "(no log)"
        )

    def stop(self, name: str) -> None:
        try:
            self._rpc.stopProcess(self._qualified(name), True)
        except xmlrpc.client.Fault as fault:
            if "NOT_RUNNING" not in fault.faultString:
                raise

    def begin_stop(self, name: str) -> None:
        """Mark a program stopping without waiting: once it exits, supervisord keeps it down
        instead of restarting it (a drill that SIGKILLs a program calls this first)."""
        try:
            self._rpc.stopProcess(self._qualified(name), False)
        except xmlrpc.client.Fault as fault:
            if "NOT_RUNNING" not in fault.faultString:
                raise

    def wait_stopped(self, name: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.state(name) not in ("STOPPED", "EXITED", "FATAL"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} still {self.state(name)} after {timeout:.0f}s")
            time.sleep(0.1)

    def signal(self, name: str, signal: str) -> None:
        self._rpc.signalProcess(self._qualified(name), signal)

    def pid(self, name: str) -> int:
        return int(self._rpc.getProcessInfo(self._qualified(name))["pid"])

    def start_group(self, group: str) -> None:
        for info in self._rpc.getAllProcessInfo():
            if info["group"] == group and info["statename"] not in ("RUNNING", "STARTING"):
                self.start(info["name"])

    def shutdown(self, timeout: float = 120) -> None:
        if not self.running():
            return
        try:
            self._rpc.stopAllProcesses(True)
            self._rpc.shutdown()
        except (OSError, xmlrpc.client.Fault) as error:
            print(f"supervisord shutdown: {error}", file=sys.stderr)
        pidfile = self.cfg.state_dir / "supervisord.pid"
        deadline = time.monotonic() + timeout
        while pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
