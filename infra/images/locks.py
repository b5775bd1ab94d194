"""Each image's Python lock, derived from requirements.lock: the closure of the image's pyproject
groups (with the project's own dependencies), pinned at the versions the lock pins.

The closure is walked through the metadata of the lock's own virtualenv (the one this runs in,
which tools/install.sh installs from requirements.lock), extras followed, each requirement's
markers evaluated for the images' interpreter: Debian's Python of the image's base (its version
read from tools/images/<base>.packages), which is not this one: redis needs async-timeout below
3.11.3 only, and Debian's is 3.11.2. A distribution the lock pins but this interpreter does not
need (so the virtualenv may lack it) is read from its wheel, downloaded once into the images'
wheelhouse. An installed version that is not the lock's stops the walk: the virtualenv is stale.
"""

from __future__ import annotations

import email.parser
import importlib.metadata
import subprocess
import sys
import tomllib
import zipfile
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import Marker, default_environment
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

from infra.facts.images import PYPROJECT, REQUIREMENTS_LOCK, images_file, lock_file, packages_file
from infra.facts.paths import relative
from infra.images.podman import IMAGES_CACHE

WHEELHOUSE = IMAGES_CACHE / "wheels"


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


def image_python(base: str) -> str:
    """The upstream version of the base's Python (python3.X=3.X.Y-... in its package set)."""
    path = packages_file(base)
    found = {
        line.partition("=")[2].split("-")[0]
        for line in (path.read_text().splitlines() if path.is_file() else [])
        if line.startswith("python3.") and line.partition("=")[0].count(".") == 1
    }
    if len(found) != 1:
        raise LockError(f"{relative(path)}: expected one python3.X package, found {sorted(found) or 'none'}")
    return found.pop()


def marker_environment(python: str) -> dict[str, str]:
    """Marker variables of the images' interpreter: this machine's platform, the image's Python."""
    environment = {key: str(value) for key, value in default_environment().items()}
    major_minor = ".".join(python.split(".")[:2])
    if environment["python_version"] != major_minor:
        raise LockError(f"resolve with Python {major_minor} (the images' interpreter), not {sys.version}")
    return {**environment, "python_full_version": python, "implementation_version": python}


def _applies(marker: Marker | None, extras: frozenset[str], environment: Mapping[str, str]) -> bool:
    if marker is None:
        return True
    return any(marker.evaluate({**environment, "extra": extra}) for extra in (extras or {""}))


def _requires(pin: Pin) -> list[str]:
    """The pinned distribution's Requires-Dist: from the virtualenv, or from its wheel."""
    try:
        installed = importlib.metadata.version(pin.name)
    except importlib.metadata.PackageNotFoundError:
        return _wheel_requires(pin)
    if installed != pin.version:
        raise LockError(
            f"{relative(REQUIREMENTS_LOCK)} pins {pin.line()} but this virtualenv has {installed}:"
            " run tools/install.sh python"
        )
    return importlib.metadata.requires(pin.name) or []


def _wheel_requires(pin: Pin) -> list[str]:
    wheels = _wheels(pin)
    if not wheels:
        WHEELHOUSE.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:"]
        done = subprocess.run(
            [*command, "--dest", str(WHEELHOUSE), pin.line()], capture_output=True, text=True, check=False
        )
        wheels = _wheels(pin)
        if done.returncode != 0 or not wheels:
            raise LockError(
                f"{pin.line()} is not installed here and its wheel did not download: {done.stderr}"
            )
    with zipfile.ZipFile(wheels[0]) as wheel:
        (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = email.parser.Parser().parsestr(wheel.read(name).decode())
    return metadata.get_all("Requires-Dist") or []


def _wheels(pin: Pin) -> list[Path]:
    stem = f"{canonicalize_name(pin.name).replace('-', '_')}-{pin.version}-"
    return sorted(p for p in WHEELHOUSE.glob("*.whl") if p.name.lower().startswith(stem.lower()))


def closure(groups: Iterable[str], python: str) -> list[Pin]:
    """Every distribution the groups need on the images' interpreter (Python version `python`),
    pinned from the lock."""
    environment = marker_environment(python)
    lock = requirements_lock()
    found: dict[NormalizedName, Pin] = {}
    seen: set[tuple[NormalizedName, frozenset[str]]] = set()
    queue: deque[tuple[Requirement, frozenset[str]]] = deque(
        (r, frozenset()) for r in group_requirements(groups)
    )
    while queue:
        requirement, parent_extras = queue.popleft()
        if not _applies(requirement.marker, parent_extras, environment):
            continue
        name = canonicalize_name(requirement.name)
        extras = frozenset(requirement.extras)
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        pin = lock.get(name)
        if pin is None:
            raise LockError(f"{relative(REQUIREMENTS_LOCK)}: {requirement.name} is needed and not pinned")
        found[name] = pin
        for dependency in _requires(pin):
            queue.append((Requirement(dependency), extras))
    return [found[name] for name in sorted(found)]


def render_lock(image: str) -> str:
    spec = images_file().images[image]
    python = image_python(spec.base)
    header = (
        f"# The {image} image's Python packages: pyproject's groups {', '.join(spec.groups)} and their\n"
        f"# closure on Python {python} ({spec.base}), at the versions requirements.lock pins.\n"
        "# Generated by `python -m infra.images lock`; do not edit.\n"
    )
    return header + "".join(pin.line() + "\n" for pin in closure(spec.groups, python))


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
