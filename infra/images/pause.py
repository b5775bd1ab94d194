"""The pod sandbox ("pause") image of the local cluster's real node: Debian's statically linked
busybox (busybox-static, tools/apt-packages.txt) sleeping, in a root filesystem of that one
file, imported into podman as localhost/its-pause:<hash of its inputs>. No registry image is
pulled; a pause container only holds the pod's namespaces open (CRI stops it with SIGKILL)."""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
import tempfile
from pathlib import Path

from infra.images import podman

PACKAGE = "busybox-static"
BUSYBOX = Path("/bin/busybox")
ENTRYPOINT = '["/bin/busybox", "sleep", "2147483647"]'
_BUILDER_VERSION = "1"


class PauseImageError(RuntimeError):
    """The pause image cannot be built; the message names what is missing."""


def _package_version() -> str:
    done = subprocess.run(
        ["dpkg-query", "--show", "--showformat", "${Version}", PACKAGE],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not BUSYBOX.is_file():
        raise PauseImageError(
            f"{PACKAGE} is not installed: run tools/install.sh apt (tools/apt-packages.txt)"
        )
    return done.stdout.strip()


def tag() -> str:
    digest = hashlib.sha256()
    for part in (_BUILDER_VERSION, PACKAGE, _package_version(), ENTRYPOINT):
        digest.update(part.encode() + b"\0")
    digest.update(BUSYBOX.read_bytes())
    return digest.hexdigest()[:12]


def reference() -> str:
    return f"localhost/its-pause:{tag()}"


def build() -> str:
    """The pause image's reference, built unless it exists."""
    ref = reference()
    if podman.image_exists(ref):
        return ref
    with tempfile.TemporaryDirectory(prefix="its-pause-", dir=podman.IMAGES_CACHE) as work:
        tarball = Path(work) / "rootfs.tar"
        with tarfile.open(tarball, "w") as archive:
            directory = tarfile.TarInfo("bin")
            directory.type, directory.mode = tarfile.DIRTYPE, 0o755
            archive.addfile(directory)
            info = tarfile.TarInfo("bin/busybox")
            data = BUSYBOX.read_bytes()
            info.size, info.mode = len(data), 0o755
            archive.addfile(info, io.BytesIO(data))
        podman.run(["podman", "import", "--change", f"ENTRYPOINT {ENTRYPOINT}", str(tarball), ref])
    return ref
