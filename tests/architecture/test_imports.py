"""Data flows one way: the import rules of the tree, checked on every module's own imports.

facts (typed readers of infrastructure/) <- kernel (supervised processes) <- local, cluster;
facts <- pulumi; facts <- app.common <- app.api, app.worker, app.ingest. No sibling imports
another, and nothing below imports what is above it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from infra.facts.paths import REPO_ROOT

# (package, prefixes it must never import, why)
RULES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    (
        "infra.facts",
        ("app", "infra.kernel", "infra.local", "infra.cluster", "infra.pulumi"),
        "facts are the bottom",
    ),
    ("infra.kernel", ("app", "infra.local", "infra.cluster", "infra.pulumi"), "the kernel serves both users"),
    ("infra.local", ("infra.cluster", "infra.pulumi"), "the local platform and the cluster are siblings"),
    ("infra.cluster", ("infra.local", "app"), "the cluster and the local platform are siblings"),
    (
        "infra.pulumi",
        ("infra.local", "infra.cluster", "infra.kernel", "app"),
        "the cloud program stands alone",
    ),
    (
        "infra.images",
        ("app", "infra.local", "infra.cluster", "infra.pulumi"),
        "the images are built from files, for whoever runs them",
    ),
    (
        "infra.charts",
        ("app", "infra.local", "infra.cluster", "infra.pulumi"),
        "the Helm engine serves every user",
    ),
    ("app", ("infra.local", "infra.cluster", "infra.kernel", "infra.pulumi"), "the app ships alone"),
    ("app.common", ("app.api", "app.worker", "app.ingest"), "the shared layer sits under every service"),
    ("app.worker", ("app.api", "app.ingest"), "the services meet only in app.common"),
    ("app.api", ("app.worker", "app.ingest"), "the services meet only in app.common"),
    ("app.ingest", ("app.api", "app.worker"), "the ingest shares the API's frame path through app.common"),
)


def module_name(path: Path, root: Path = REPO_ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, root: Path = REPO_ROOT) -> list[tuple[int, str]]:
    """Every module a file imports, with its line (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    own = module_name(path, root)
    package = own.rsplit(".", 1)[0] if path.name != "__init__.py" else own
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((node.lineno, base))
    return found


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(files: list[Path], root: Path = REPO_ROOT) -> list[str]:
    problems = []
    for path in files:
        owner = module_name(path, root)
        for package, forbidden, why in RULES:
            if not _within(owner, package):
                continue
            for line, name in imported(path, root):
                for prefix in forbidden:
                    if _within(name, prefix):
                        rel = path.relative_to(root)
                        problems.append(f"{rel}:{line} imports {name} ({package} -/-> {prefix}: {why})")
    return problems


def project_files() -> list[Path]:
    return sorted(p for root in ("app", "infra") for p in (REPO_ROOT / root).rglob("*.py"))


def test_the_tree_keeps_its_import_rules() -> None:
    assert violations(project_files()) == []


@pytest.mark.parametrize(
    ("where", "source", "broken"),
    [
        ("app/worker/bad.py", "from app.api.routes.counts import x\n", "app.worker -/-> app.api"),
        ("infra/cluster/bad.py", "from infra.local.config import HOST\n", "infra.cluster -/-> infra.local"),
        ("infra/local/bad.py", "import infra.cluster.cli\n", "infra.local -/-> infra.cluster"),
        ("infra/kernel/bad.py", "from ..local import platform\n", "infra.kernel -/-> infra.local"),
        ("app/common/bad.py", "from infra.pulumi import program\n", "app -/-> infra.pulumi"),
    ],
)
def test_a_forbidden_import_is_named(tmp_path: Path, where: str, source: str, broken: str) -> None:
    """The checker itself: each kind of violation, planted in a tree of the same shape, is reported."""
    planted = tmp_path / where
    planted.parent.mkdir(parents=True)
    planted.write_text(source)
    found = violations([planted], root=tmp_path)
    assert len(found) == 1 and broken in found[0] and where in found[0], found
