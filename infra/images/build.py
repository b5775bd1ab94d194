"""The app images: each built with podman (buildah) from its Containerfile on its project-built
base, its lock installed from a host wheelhouse with no network in the build, tagged by the hash
of every input, and skipped when an image with that tag exists."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from infra.facts.images import images_file, lock_file
from infra.facts.paths import REPO_ROOT, relative
from infra.facts.versions import versions
from infra.images import base, locks, podman

_BUILDER_VERSION = "1"
WHEELHOUSE = locks.WHEELHOUSE


@dataclass(frozen=True)
class Built:
    image: str
    reference: str
    size_mb: float
    digest: str
    seconds: float
    cached: bool

    def line(self) -> str:
        how = "cached" if self.cached else f"built in {self.seconds:.0f}s"
        return f"{self.image}: {self.reference} {self.size_mb} MB {self.digest} ({how})"


def source_files(image: str) -> list[str]:
    """The repository files an image copies: the shared service sources and its own, tracked or
    new (not ignored), minus its excludes and bytecode."""
    spec = images_file().images[image]
    sources = images_file().sources(image)
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", *sources],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    excluded = tuple(PurePosixPath(e) for e in spec.exclude)
    files = []
    for name in listed:
        path = PurePosixPath(name)
        if "__pycache__" in path.parts or any(path == e or e in path.parents for e in excluded):
            continue
        if (REPO_ROOT / name).is_file():
            files.append(name)
    return sorted(set(files))


def tag(image: str) -> str:
    """The hash of everything that decides the image: base, Containerfile and stage, lock, sources."""
    spec = images_file().images[image]
    digest = hashlib.sha256()
    digest.update(
        f"{_BUILDER_VERSION}\0{base.reference(spec.base)}\0{versions()['PIP_VERSION']}\0{image}\0".encode()
    )
    for path in (images_file().containerfile, relative(lock_file(image)), *source_files(image)):
        digest.update(path.encode() + b"\0" + (REPO_ROOT / path).read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def reference(image: str) -> str:
    return f"localhost/{images_file().images[image].repository}:{tag(image)}"


def _pip_wheel() -> Path:
    """pip's own wheel, as /pip/pip.whl: the build runs pip from it, so no pip stays installed."""
    version = versions()["PIP_VERSION"]
    directory = podman.IMAGES_CACHE / "pip" / version
    target = directory / "pip.whl"
    if not target.is_file():
        with tempfile.TemporaryDirectory(dir=podman.IMAGES_CACHE) as download:
            _pip_download(["--no-deps", f"pip=={version}"], Path(download))
            (wheel,) = Path(download).glob("pip-*.whl")
            directory.mkdir(parents=True, exist_ok=True)
            shutil.move(wheel, target)
    return directory


def _pip_download(args: list[str], dest: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--only-binary",
            ":all:",
            "--dest",
            str(dest),
            *args,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise podman.PodmanError(f"pip download {' '.join(args[-2:])}: {done.stderr.strip()[-2000:]}")


def _context(image: str, directory: Path) -> None:
    for name in source_files(image):
        target = directory / "srv" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, target)
    shutil.copy2(lock_file(image), directory / "image.lock")
    shutil.copy2(REPO_ROOT / images_file().containerfile, directory / "Containerfile")


def build(image: str) -> Built:
    spec = images_file().images[image]
    ref = reference(image)
    start = time.monotonic()
    if podman.image_exists(ref):
        return Built(image, ref, podman.size_mb(ref), podman.digest(ref), 0.0, cached=True)
    base_ref = base.build(spec.base)
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    _pip_download(["--no-deps", "--requirement", str(lock_file(image))], WHEELHOUSE)
    pip_dir = _pip_wheel()
    with tempfile.TemporaryDirectory(prefix=f"{image}-", dir=podman.IMAGES_CACHE) as work:
        context = Path(work)
        _context(image, context)
        podman.run(
            [
                "podman",
                "build",
                "--pull=never",
                "--network=none",
                # Created at the epoch: the same inputs give the same image configuration.
                "--timestamp=0",
                "--build-arg",
                f"BASE={base_ref}",
                "--volume",
                f"{WHEELHOUSE}:/wheels:ro",
                "--volume",
                f"{pip_dir}:/pip:ro",
                # The Containerfile's stage of this image's name.
                "--target",
                image,
                "--file",
                str(context / "Containerfile"),
                "--tag",
                ref,
                str(context),
            ]
        )
    return Built(image, ref, podman.size_mb(ref), podman.digest(ref), time.monotonic() - start, cached=False)
