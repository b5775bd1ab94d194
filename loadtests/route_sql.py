"""The SQL the API's routes run, read from their source rather than retyped.

The routes keep their statements inline (app/ is the API's, not the benchmarks'). A benchmark
that times "the API's statement" directly takes it from the route function's own string
constants, so an edit to the route changes what the benchmark runs too.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable
from typing import Any


def statements(function: Callable[..., Any], starting: str) -> list[str]:
    """Every string constant in `function`'s source that starts with `starting` (case and
    leading whitespace ignored), in source order."""
    tree = ast.parse(inspect.getsource(inspect.unwrap(function)).lstrip())
    constants = sorted(
        (node for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)),
        key=lambda node: (node.lineno, node.col_offset),
    )
    found = [
        str(node.value) for node in constants if str(node.value).lstrip().upper().startswith(starting.upper())
    ]
    if not found:
        raise LookupError(
            f"{function.__module__}.{function.__qualname__}: no statement starting {starting!r}"
        )
    return found


def statement(function: Callable[..., Any], starting: str) -> str:
    """The one string constant of `function` that starts with `starting`."""
    found = statements(function, starting)
    if len(found) != 1:
        raise LookupError(
            f"{function.__module__}.{function.__qualname__}: {len(found)} statements start {starting!r}"
        )
    return found[0]
