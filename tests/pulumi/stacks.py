"""Runs the mocked program (tests/pulumi/mock_program.py) in subprocesses, each stack once per
session, several at a time, and gives tests typed access to what it registered."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from infra.facts.paths import REPO_ROOT

STACKS = ("dev", "staging", "prod")
_POOL = ThreadPoolExecutor(max_workers=3)


@dataclass(frozen=True)
class Options:
    """The resource options the program set (recorded by a stack transformation)."""

    protect: bool
    parent: str | None
    depends_on: tuple[str, ...]
    retain_on_delete: bool


@dataclass(frozen=True)
class Resource:
    type: str
    name: str
    inputs: dict[str, Any]
    options: Options


@dataclass(frozen=True)
class StackRun:
    stack: str
    error: str | None
    resources: tuple[Resource, ...]
    exports: dict[str, Any]
    secret_exports: tuple[str, ...] = ()

    def of_type(self, resource_type: str) -> list[Resource]:
        return [r for r in self.resources if r.type == resource_type]

    def one(self, resource_type: str) -> Resource:
        (found,) = self.of_type(resource_type)
        return found

    def named(self, resource_type: str, name: str) -> Resource:
        (found,) = [r for r in self.of_type(resource_type) if r.name == name]
        return found

    def custom(self) -> Iterator[Resource]:
        """Resources a provider would create (not components)."""
        return (r for r in self.resources if not r.type.startswith("its:"))


def _run(stack: str, override: str) -> StackRun:
    result = subprocess.run(
        [sys.executable, "-m", "tests.pulumi.mock_program", stack, "--override", override],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"mock program of {stack} crashed:\n{result.stderr}")
    data = json.loads(result.stdout)
    return StackRun(
        stack=data["stack"],
        error=data["error"],
        resources=tuple(
            Resource(
                r["type"],
                r["name"],
                r["inputs"],
                Options(
                    protect=r["options"]["protect"],
                    parent=r["options"]["parent"],
                    depends_on=tuple(r["options"]["dependsOn"]),
                    retain_on_delete=r["options"]["retainOnDelete"],
                ),
            )
            for r in data["resources"]
        ),
        exports=data["exports"],
        secret_exports=tuple(data["secretExports"]),
    )


@functools.cache
def _submit(stack: str, override: str) -> Future[StackRun]:
    return _POOL.submit(_run, stack, override)


def prefetch(*runs: tuple[str, dict[str, Any]]) -> None:
    """Start runs in the background; `stack_run` later collects them."""
    for stack, override in runs:
        _submit(stack, json.dumps(override, sort_keys=True))


def stack_run(stack: str, override: dict[str, Any] | None = None) -> StackRun:
    return _submit(stack, json.dumps(override or {}, sort_keys=True)).result()
