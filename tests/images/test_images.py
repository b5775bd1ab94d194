"""The images as they ship: built (or reused by the hash of their inputs), then run the way the
chart runs them (uid 10001, read-only root, no capabilities, a tmpfs /tmp, the host network).

Inside each image every third-party module its code imports, and every module of its own, must
import; no dev tool may be present; the service's import smoke runs."""

from __future__ import annotations

import json
from functools import cache

import pytest

from infra.facts.images import images_file
from infra.images import build, imports, podman

IMAGES = sorted(images_file().images)
DEV_TOOLS = ("pytest", "ruff", "mypy", "locust", "debugpy", "piptools", "pip", "setuptools_scm")
DEV_COMMANDS = ("pytest", "ruff", "mypy", "locust", "debugpy", "pip-compile", "pip", "pip3")


@cache
def built(image: str) -> build.Built:
    return build.build(image)


def run_restricted(image: str, *command: str) -> str:
    """COMMAND in the image as the chart's securityContext runs it."""
    return podman.run(
        [
            "podman",
            "run",
            "--rm",
            "--user",
            "10001:10001",
            "--read-only",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
            "--tmpfs",
            "/tmp:rw,size=256m,mode=1777",
            "--network",
            "host",
            built(image).reference,
            *command,
        ]
    )


def test_the_import_walk_finds_what_each_service_uses() -> None:
    assert {"fastapi", "asyncpg", "redis.asyncio.sentinel"} <= set(imports.third_party_modules("api"))
    worker = imports.third_party_modules("worker")
    assert "ultralytics" in worker and "fastapi" not in worker
    assert "app.api.main" in imports.project_modules("api")
    assert "app.worker.__main__" not in imports.project_modules("worker")


@pytest.mark.parametrize("image", IMAGES)
def test_every_module_the_code_imports_is_in_the_image(image: str) -> None:
    modules = imports.third_party_modules(image) + imports.project_modules(image)
    script = (
        "import importlib, json, sys\n"
        "missing = {}\n"
        f"for name in {modules!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as error:\n"
        "        missing[name] = repr(error)\n"
        "print(json.dumps(missing))\n"
    )
    assert json.loads(run_restricted(image, "python", "-c", script).splitlines()[-1]) == {}


@pytest.mark.parametrize("image", IMAGES)
def test_no_dev_tool_is_in_the_image(image: str) -> None:
    script = (
        "import importlib.util, json, shutil\n"
        f"print(json.dumps([m for m in {DEV_TOOLS!r} if importlib.util.find_spec(m)]"
        f" + [c for c in {DEV_COMMANDS!r} if shutil.which(c)]))\n"
    )
    assert json.loads(run_restricted(image, "python", "-c", script)) == []


@pytest.mark.parametrize("image", IMAGES)
def test_it_runs_as_the_charts_user(image: str) -> None:
    assert run_restricted(image, "python", "-c", "import os; print(os.getuid(), os.getgid())").split() == [
        "10001",
        "10001",
    ]
    assert podman.inspect(built(image).reference)["Config"]["User"] == "10001:10001"


def test_the_api_app_and_the_migrations_load() -> None:
    script = (
        "from app.api.main import app\n"
        "from app.common.migrate import head_revision\n"
        "print(app.title, '|', head_revision())\n"
    )
    title, _, head = (
        run_restricted("api", "python", "-c", script).strip().rpartition("\n")[2].partition(" | ")
    )
    assert title and head


def test_the_worker_detects_on_a_read_only_root() -> None:
    # The shipped weights (the settings' default ITS_MODEL_URI) on ultralytics' own sample image:
    # torch, OpenCV and ultralytics' settings (under YOLO_CONFIG_DIR, /tmp) on the CPU.
    script = (
        "from pathlib import Path\n"
        "import ultralytics\n"
        "from PIL import Image\n"
        "from app.common.settings import Settings\n"
        "from app.worker.detector import Detector, resolve_weights\n"
        "weights = resolve_weights(Settings.model_fields['model_uri'].default, None, Path('/tmp'))\n"
        "image = Image.open(Path(ultralytics.__file__).parent / 'assets' / 'bus.jpg').convert('RGB')\n"
        "detections = Detector(weights, 'cpu', 0.01, ('car',)).detect([image])\n"
        "print(len(detections), sorted(p.name for p in Path('/tmp/ultralytics').rglob('*')))\n"
    )
    count, _, settings = (
        run_restricted("worker", "python", "-c", script).strip().splitlines()[-1].partition(" ")
    )
    assert count == "1"
    assert "settings.json" in settings


@pytest.mark.parametrize("image", IMAGES)
def test_a_second_build_is_the_cached_image(image: str) -> None:
    first = built(image)
    again = build.build(image)
    assert again.cached and again.reference == first.reference and again.digest == first.digest
