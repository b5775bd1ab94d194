"""The third-party modules an image's code imports, read from its sources' syntax trees: what a
test imports inside the image to prove nothing the code needs is missing from its lock."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator

from infra.facts.paths import REPO_ROOT
from infra.images.build import source_files

PROJECT_PACKAGES = ("app", "infra")


def _imports(tree: ast.AST) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            node.body = []  # names for the type checker only: never imported at run time
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def python_sources(image: str) -> list[str]:
    return [name for name in source_files(image) if name.endswith(".py")]


def third_party_modules(image: str) -> list[str]:
    """Every module outside the standard library and the project that the image's code imports."""
    found: set[str] = set()
    for name in python_sources(image):
        tree = ast.parse((REPO_ROOT / name).read_text(), filename=name)
        for module in _imports(tree):
            top = module.partition(".")[0]
            if top not in sys.stdlib_module_names and top not in (*PROJECT_PACKAGES, "__future__"):
                found.add(module)
    return sorted(found)


def project_modules(image: str) -> list[str]:
    """The image's own packages' modules by dotted name, without entry points (`__main__` runs
    the service); the migrations are alembic's to load (tests/images loads them through it)."""
    modules = []
    for name in python_sources(image):
        parts = name.removesuffix(".py").split("/")
        if parts[0] not in PROJECT_PACKAGES or parts[-1] == "__main__":
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules.append(".".join(parts))
    return sorted(modules)
