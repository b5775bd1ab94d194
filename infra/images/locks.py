"""Each image's Python lock, derived from requirements.lock: the closure of the image's pyproject
groups (with the project's own dependencies), pinned at the versions the lock pins.

The closure is walked through the metadata of the lock's own virtualenv (the one this runs in,
which tools/install.sh installs from requirements.lock): each requirement's markers are evaluated
for the images' interpreter (CPython 3.11 on Linux, the same as here), extras followed. A
distribution whose installed version is not the lock's stops the walk: the virtualenv is stale.
"""

from __future__ import annotations

import importlib.metadata
import platform
import tomllib
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

from infra.facts.images import PYPROJECT, REQUIREMENTS_LOCK, images_file, lock_file
from infra.facts.paths import relative

IMAGE_PYTHON = "3.11"


class LockError(RuntimeError):
    """The lock, pyproject or the virtualenv disagree; the message names the file and package."""


@dataclass(frozen=True)
class Pin:
    name: str  # as requirements.lock spells it
    version: str

    def line(self) -> str:
        return f"{self.name}=={self.version}"


def read_lock(text: str, source: str) -> dict[NormalizedName, Pin]:
    pins: dict[NormalizedName, Pin] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        if not sep or not version:
            raise LockError(f"{source}:{number}: {raw!r} is not NAME==VERSION")
        pins[canonicalize_name(name)] = Pin(name.strip(), version.strip())
    return pins


def requirements_lock() -> dict[NormalizedName, Pin]:
    """requirements.lock's pins, and pyproject's build-system pins: a `pip freeze` leaves out
    setuptools, which torch needs at run time; the project pins it once, as its build backend."""
    pins = read_lock(REQUIREMENTS_LOCK.read_text(), relative(REQUIREMENTS_LOCK))
    for text in tomllib.loads(PYPROJECT.read_text())["build-system"]["requires"]:
        requirement = Requirement(text)
        exact = [s.version for s in requirement.specifier if s.operator == "=="]
        if len(exact) != 1:
            raise LockError(f"{relative(PYPROJECT)}: build-system requires {text!r}: pin it with ==")
        pins.setdefault(canonicalize_name(requirement.name), Pin(requirement.name, exact[0]))
    return pins


def group_requirements(groups: Iterable[str]) -> list[Requirement]:
    """The project's dependencies and those of the named optional groups, from pyproject.toml."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    optional: dict[str, list[str]] = project.get("optional-dependencies", {})
    requirements = [Requirement(r) for r in project.get("dependencies", [])]
    for group in groups:
        if group not in optional:
            raise LockError(f"{relative(PYPROJECT)}: no optional group {group!r} (have {sorted(optional)})")
        requirements += [Requirement(r) for r in optional[group]]
    return requirements


def _applies(marker: Marker | None, extras: frozenset[str]) -> bool:
    if marker is None:
        return True
    return any(marker.evaluate({"extra": extra}) for extra in (extras or {""}))


def closure(groups: Iterable[str]) -> list[Pin]:
    """Every distribution the groups need on the images' interpreter, pinned from the lock."""
    if not platform.python_version().startswith(IMAGE_PYTHON + "."):
        raise LockError(
            f"resolve with Python {IMAGE_PYTHON} (the images' interpreter), not {platform.python_version()}"
        )
    lock = requirements_lock()
    found: dict[NormalizedName, Pin] = {}
    seen: set[tuple[NormalizedName, frozenset[str]]] = set()
    queue: deque[tuple[Requirement, frozenset[str]]] = deque(
        (r, frozenset()) for r in group_requirements(groups)
    )
    while queue:
        requirement, parent_extras = queue.popleft()
        if not _applies(requirement.marker, parent_extras):
            continue
        name = canonicalize_name(requirement.name)
        extras = frozenset(requirement.extras)
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        pin = lock.get(name)
        if pin is None:
            raise LockError(f"{relative(REQUIREMENTS_LOCK)}: {requirement.name} is needed and not pinned")
        installed = importlib.metadata.version(name)
        if installed != pin.version:
            raise LockError(
                f"{relative(REQUIREMENTS_LOCK)} pins {pin.line()} but this virtualenv has {installed}:"
                " run tools/install.sh python"
            )
        found[name] = pin
        for dependency in importlib.metadata.requires(name) or []:
            queue.append((Requirement(dependency), extras))
    return [found[name] for name in sorted(found)]


def render_lock(image: str) -> str:
    groups = images_file().images[image].groups
    header = (
        f"# The {image} image's Python packages: pyproject's groups {', '.join(groups)} and their closure,\n"
        "# at the versions requirements.lock pins. Generated by `python -m infra.images lock`; do not edit.\n"
    )
    return header + "".join(pin.line() + "\n" for pin in closure(groups))


def write_locks() -> list[str]:
    written = []
    for image in images_file().images:
        path = lock_file(image)
        text = render_lock(image)
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
            written.append(relative(path))
    return written


def stale_locks() -> list[str]:
    """The image locks that differ from what the lock and pyproject give now."""
    return [
        relative(lock_file(image))
        for image in images_file().images
        if not lock_file(image).is_file() or lock_file(image).read_text() != render_lock(image)
    ]
