"""The Debian base root filesystems: mmdebstrap (minbase) from the machine's own Debian mirror,
checked against the package set recorded in tools/images/<base>.packages, imported into podman
as localhost/<base>:<hash of the inputs>.

The mirror is whatever the machine's apt sources name, read at build time; the repository
records what must come out (every package at its exact version), not where it comes from. A
mirror that has moved on fails the build with the differences; `python -m infra.images
packages` records the new set, so a package bump is a reviewed diff.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable
from pathlib import Path

from infra.facts.images import images_file, packages_file
from infra.facts.paths import relative
from infra.images import podman

APT_SOURCES = Path("/etc/apt/sources.list")
APT_SOURCES_DIR = Path("/etc/apt/sources.list.d")
# What the images never need: documentation, manuals, translations. Part of the inputs' hash.
_MMDEBSTRAP_OPTIONS = (
    "--variant=minbase",
    # The /usr merge done by mmdebstrap's own hook: without it apt pulls in usrmerge, and with
    # it the full Perl (some 50 MB) that only the merge script needs.
    "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/info/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
)
_BUILDER_VERSION = "1"


class BaseImageError(RuntimeError):
    """The base cannot be built as recorded; the message names the file to look at."""


def _deb822_paragraphs(text: str) -> Iterable[dict[str, str]]:
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = ""
        for line in block.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0] in " \t" and key:
                fields[key] += " " + line.strip()
            else:
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
        if fields:
            yield fields


def mirror_sources(suite: str) -> list[str]:
    """One-line `deb URI SUITE COMPONENTS` entries of the machine's apt sources for the suite
    (its -updates and -security suites too)."""
    wanted = {suite, f"{suite}-updates", f"{suite}-security"}
    lines: list[str] = []
    for path in sorted(APT_SOURCES_DIR.glob("*.sources")):
        for p in _deb822_paragraphs(path.read_text()):
            if "deb" in p.get("Types", "").split() and p.get("Enabled", "yes") != "no":
                for uri in p.get("URIs", "").split():
                    for s in p.get("Suites", "").split():
                        if s in wanted:
                            lines.append(f"deb {uri} {s} {p.get('Components', 'main')}")
    for path in [APT_SOURCES, *sorted(APT_SOURCES_DIR.glob("*.list"))]:
        if path.is_file():
            for line in path.read_text().splitlines():
                words = line.split("#", 1)[0].split()
                if len(words) >= 4 and words[0] == "deb" and words[2] in wanted:
                    lines.append(" ".join(words))
    if not any(line.split()[2] == suite for line in lines):
        raise BaseImageError(f"no apt source for Debian {suite} in {APT_SOURCES} or {APT_SOURCES_DIR}")
    return lines


def recorded_packages(base: str) -> list[str]:
    path = packages_file(base)
    if not path.is_file():
        raise BaseImageError(f"{relative(path)} is missing: run python -m infra.images packages")
    return [line for line in path.read_text().splitlines() if line and not line.startswith("#")]


def tag(base: str) -> str:
    """The hash of everything that decides the base: suite, requested packages, the recorded set,
    the build options."""
    spec = images_file()
    digest = hashlib.sha256()
    for part in (_BUILDER_VERSION, spec.suite, *spec.bases[base].include, *_MMDEBSTRAP_OPTIONS):
        digest.update(part.encode() + b"\0")
    digest.update(packages_file(base).read_bytes() if packages_file(base).is_file() else b"")
    return digest.hexdigest()[:12]


def reference(base: str) -> str:
    return f"localhost/{base}:{tag(base)}"


def _rootfs(base: str, tarball: Path) -> None:
    spec = images_file()
    command = [
        "mmdebstrap",
        "--quiet",
        *_MMDEBSTRAP_OPTIONS,
        f"--include={','.join(spec.bases[base].include)}",
        spec.suite,
        str(tarball),
        *mirror_sources(spec.suite),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BaseImageError(f"mmdebstrap for {base} exited {done.returncode}: {done.stderr.strip()[-2000:]}")


def installed_packages(tarball: Path) -> list[str]:
    """PACKAGE=VERSION of every installed package in a root filesystem tarball, sorted."""
    with tarfile.open(tarball) as archive:
        member = archive.extractfile("./var/lib/dpkg/status")
        if member is None:
            raise BaseImageError(f"{tarball}: no dpkg status")
        status = io.TextIOWrapper(member, encoding="utf-8").read()
    packages = []
    for p in _deb822_paragraphs(status):
        if p.get("Status", "").endswith(" installed"):
            packages.append(f"{p['Package']}={p['Version']}")
    return sorted(packages)


def _render_packages(base: str, packages: list[str]) -> str:
    include = " ".join(images_file().bases[base].include)
    return (
        f"# Every package of the {base} root filesystem (minbase + {include}), at its version.\n"
        "# Checked on every build; written by `python -m infra.images packages` (review the diff).\n"
        + "".join(p + "\n" for p in packages)
    )


def check_packages(base: str, built: list[str]) -> None:
    recorded = recorded_packages(base)
    if built != recorded:
        added = sorted(set(built) - set(recorded))
        gone = sorted(set(recorded) - set(built))
        raise BaseImageError(
            f"{relative(packages_file(base))}: the mirror gives another package set for {base};"
            f" new: {added[:12]}, not given: {gone[:12]}. Review and record it with"
            " python -m infra.images packages"
        )


def build(base: str, *, record: bool = False) -> str:
    """The base's image reference, built unless it exists. record=True writes the package set
    the mirror gives now into tools/images/<base>.packages instead of checking it."""
    if not record and podman.image_exists(reference(base)):
        return reference(base)
    podman.environment()
    with tempfile.TemporaryDirectory(prefix=f"{base}-", dir=podman.IMAGES_CACHE) as work:
        tarball = Path(work) / "rootfs.tar"
        _rootfs(base, tarball)
        built = installed_packages(tarball)
        if record:
            packages_file(base).write_text(_render_packages(base, built))
        check_packages(base, built)
        podman.run(["podman", "import", "--change", 'CMD ["python3"]', str(tarball), reference(base)])
    return reference(base)
