"""Each image's lock is the closure of its pyproject groups, taken from requirements.lock: no
hand-kept list, nothing of the dev group, every version the lock's; and the recorder of the
digests in the GitOps values."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from packaging.utils import NormalizedName, canonicalize_name

from infra.facts.images import images_file, lock_file
from infra.facts.paths import REPO_ROOT
from infra.images import gitops, locks

DEV_TOOLS = ("pytest", "ruff", "mypy", "locust", "debugpy", "pip-tools", "pip")


def image_lock(image: str) -> dict[NormalizedName, locks.Pin]:
    return locks.read_lock(lock_file(image).read_text(), image)


@pytest.mark.parametrize("image", sorted(images_file().images))
def test_committed_lock_is_what_the_groups_resolve_to(image: str) -> None:
    assert lock_file(image).read_text() == locks.render_lock(image), "run python -m infra.images lock"


@pytest.mark.parametrize("image", sorted(images_file().images))
def test_every_pin_is_the_requirements_lock_version(image: str) -> None:
    lock = locks.requirements_lock()
    pins = image_lock(image)
    assert pins
    assert {name: pin.version for name, pin in pins.items()} == {name: lock[name].version for name in pins}


@pytest.mark.parametrize("image", sorted(images_file().images))
def test_no_dev_tool_or_other_group_is_locked(image: str) -> None:
    names = set(image_lock(image))
    assert not names & {canonicalize_name(tool) for tool in DEV_TOOLS}
    # The Pulumi program's and the local platform's own packages stay out of the app images.
    assert not names & {canonicalize_name(n) for n in ("pulumi", "pulumi-aws", "supervisor", "psycopg")}


def test_each_group_requirement_is_in_its_image_lock() -> None:
    for image, spec in images_file().images.items():
        names = set(image_lock(image))
        direct = {canonicalize_name(r.name) for r in locks.group_requirements(spec.groups)}
        assert direct <= names, image


def test_the_app_group_is_in_every_lock_and_each_service_adds_only_its_own() -> None:
    """The API's lock is the app group's closure; the ingest adds PyAV (with its bundled FFmpeg,
    kept out of the API image), the worker torch; neither carries the other's."""
    api, ingest, worker = image_lock("api"), image_lock("ingest"), image_lock("worker")
    assert set(api) <= set(ingest) and set(api) <= set(worker)
    assert set(ingest) - set(api) == {"av"}
    assert "torch" in worker and "torch" not in api | ingest
    assert "av" not in api and "av" not in worker


def test_torch_runtime_setuptools_is_pinned_by_the_build_system() -> None:
    # pip freeze leaves setuptools out of requirements.lock; torch imports it at run time.
    assert image_lock("worker")[canonicalize_name("setuptools")].version == (
        locks.requirements_lock()[canonicalize_name("setuptools")].version
    )


def test_an_unknown_group_and_a_malformed_lock_line_are_named() -> None:
    with pytest.raises(locks.LockError, match="no optional group 'gpu'"):
        locks.group_requirements(["gpu"])
    with pytest.raises(locks.LockError, match=r"x.lock:2: 'torch>=2' is not NAME==VERSION"):
        locks.read_lock("a==1\ntorch>=2\n", "x.lock")


def test_a_values_file_without_the_image_line_is_named(tmp_path: Path) -> None:
    values = tmp_path / "its-camera-ai.yaml"
    values.write_text('environment: dev\nimage:\n  api: {tag: "0.1.0"}\nconfig: {}\n')
    with pytest.raises(gitops.GitOpsValuesError, match=r"its-camera-ai.yaml: image.worker: no "):
        gitops.record(values, {"api": ("t", "sha256:" + "0" * 64), "worker": ("t", "sha256:" + "1" * 64)})
    gitops.record(values, {"api": ("abc", "sha256:" + "0" * 64)})
    assert yaml.safe_load(values.read_text())["image"] == {
        "api": {"tag": "abc", "digest": "sha256:" + "0" * 64}
    }
    assert values.read_text().endswith("config: {}\n")


def test_every_image_is_a_stage_of_the_containerfile() -> None:
    """`--target <image>` builds the stage of the image's name: one per image, and the shared
    stage they start from is none of them."""
    text = (REPO_ROOT / images_file().containerfile).read_text()
    stages = re.findall(r"^FROM \S+ AS ([a-z][a-z0-9-]*)$", text, re.M)
    assert sorted(stages) == sorted({*images_file().images, "service"})
    assert re.findall(r"^FROM (\S+) AS ", text, re.M)[1:] == ["service"] * len(images_file().images)
