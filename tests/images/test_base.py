"""The Debian bases: the mirror read from this machine's apt sources, the package set checked
against tools/images/<base>.packages, and the built base holding exactly that set."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from infra.facts.images import images_file, packages_file
from infra.images import base, locks, podman

BASES = sorted(images_file().bases)


def _rootfs_with(tmp_path: Path, status: str) -> Path:
    tarball = tmp_path / "rootfs.tar"
    with tarfile.open(tarball, "w") as archive:
        data = status.encode()
        member = tarfile.TarInfo("./var/lib/dpkg/status")
        member.size = len(data)
        archive.addfile(member, io.BytesIO(data))
    return tarball


def test_the_mirror_comes_from_this_machine_s_apt_sources() -> None:
    sources = base.mirror_sources(images_file().suite)
    assert any(line.split()[2] == images_file().suite for line in sources)
    assert all(line.startswith("deb ") and "://" in line.split()[1] for line in sources)


def test_installed_packages_are_read_from_the_dpkg_status(tmp_path: Path) -> None:
    status = (
        "Package: python3\nStatus: install ok installed\nVersion: 3.11.2-1+b1\n\n"
        "Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n\n"
        "Package: apt\nStatus: install ok installed\nVersion: 2.6.1\n"
    )
    assert base.installed_packages(_rootfs_with(tmp_path, status)) == ["apt=2.6.1", "python3=3.11.2-1+b1"]


@pytest.mark.parametrize("name", BASES)
def test_another_package_set_fails_the_build_naming_the_file(name: str) -> None:
    recorded = base.recorded_packages(name)
    moved = [*recorded[1:], "newcomer=1.0"]
    with pytest.raises(base.BaseImageError, match=rf"{name}\.packages: .*newcomer=1\.0.*{recorded[0]}"):
        base.check_packages(name, moved)
    base.check_packages(name, recorded)


@pytest.mark.parametrize("name", BASES)
def test_each_base_records_its_requested_packages_and_one_python(name: str) -> None:
    recorded = {line.partition("=")[0] for line in base.recorded_packages(name)}
    assert set(images_file().bases[name].include) <= recorded
    assert locks.image_python(name).startswith("3.11.")
    # The Perl that usrmerge needs stays out (mmdebstrap's own /usr merge).
    assert "perl" not in recorded and "usrmerge" not in recorded


@pytest.mark.parametrize("name", BASES)
def test_the_built_base_holds_exactly_the_recorded_set(name: str) -> None:
    reference = base.build(name)
    assert reference.endswith(":" + base.tag(name))
    listed = podman.run(
        [
            "podman",
            "run",
            "--rm",
            "--network",
            "none",
            reference,
            "dpkg-query",
            "-W",
            "-f",
            "${Package}=${Version}\\n",
        ]
    )
    assert sorted(listed.split()) == base.recorded_packages(name)
    assert packages_file(name).read_text().startswith("# Every package of the")
