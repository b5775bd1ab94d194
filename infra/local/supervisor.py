"""Talks to the platform's supervisord over its unix socket (supervisor's own XML-RPC client)."""

from __future__ import annotations

import subprocess
import sys
import time
import xmlrpc.client
from pathlib import Path
from typing import Any, Protocol, cast

from supervisor.xmlrpc import SupervisorTransport


class _Tools(Protocol):
    @property
    def python(self) -> Path: ...


class SupervisedConfig(Protocol):
    """What a supervisord needs to know of the thing it runs (the local platform, the local
    Kubernetes cluster): where its state, rendered config and logs are, and the venv's python."""

    @property
    def state_dir(self) -> Path: ...
    @property
    def conf_dir(self) -> Path: ...
    @property
    def log_dir(self) -> Path: ...
    @property
    def tools(self) -> _Tools: ...


class Supervisor:
    def __init__(self, cfg: SupervisedConfig) -> None:
        self.cfg = cfg
        self.socket = cfg.state_dir / "supervisor.sock"

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
        supervisord = self.cfg.tools.python.parent / "supervisord"
        subprocess.run([str(supervisord), "-c", str(conf)], check=True)
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
