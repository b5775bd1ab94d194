"""tools/images/images.yaml: the base root filesystems and the app images the project builds,
and where each image's recorded inputs (its base's package set, its Python lock) live."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, model_validator

from infra.facts._load import Strict, load
from infra.facts.paths import REPO_ROOT

IMAGES_DIR = REPO_ROOT / "tools" / "images"
IMAGES_FILE = IMAGES_DIR / "images.yaml"
PYPROJECT = REPO_ROOT / "pyproject.toml"
REQUIREMENTS_LOCK = REPO_ROOT / "requirements.lock"
# Repository-relative paths only: an image's sources are copied from this checkout.
_RELATIVE = r"^[A-Za-z0-9_][A-Za-z0-9_./-]*$"


def _check_relative(paths: tuple[str, ...]) -> None:
    for path in paths:
        if path.startswith("/") or ".." in Path(path).parts:
            raise ValueError(f"{path!r}: a path inside the repository")


class Base(Strict):
    # Debian package names (the rest of the root filesystem is what they and minbase pull in).
    include: tuple[str, ...] = Field(min_length=1)


class Image(Strict):
    repository: str = Field(pattern=r"^[a-z0-9][a-z0-9./-]*$")
    base: str
    # pyproject optional groups whose closure the image installs.
    groups: tuple[str, ...] = Field(min_length=1)
    sources: tuple[str, ...] = Field(min_length=1)
    exclude: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _relative_paths(self) -> Image:
        _check_relative((*self.sources, *self.exclude))
        return self


class ImagesFile(Strict):
    suite: str = Field(pattern=r"^[a-z]+$")
    # Every image is the stage of this file named as the image (`--target`).
    containerfile: str = Field(pattern=_RELATIVE)
    bases: dict[str, Base] = Field(min_length=1)
    # Copied into every image before its own sources (app/common and the fact files it reads).
    service_sources: tuple[str, ...] = ()
    # Names are stage names of the Containerfile.
    images: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$")], Image] = Field(min_length=1)

    @model_validator(mode="after")
    def _bases_exist(self) -> ImagesFile:
        for name, image in self.images.items():
            if image.base not in self.bases:
                raise ValueError(
                    f"images.{name}.base: {image.base!r} is not one of bases {sorted(self.bases)}"
                )
        _check_relative(self.service_sources)
        return self

    def sources(self, image: str) -> tuple[str, ...]:
        """Everything IMAGE copies: the shared service sources, then its own."""
        return (*self.service_sources, *self.images[image].sources)


@cache
def images_file() -> ImagesFile:
    return load(ImagesFile, IMAGES_FILE)


def packages_file(base: str) -> Path:
    """Every package and version of the base's root filesystem, as built (checked on each build)."""
    return IMAGES_DIR / f"{base}.packages"


def lock_file(image: str) -> Path:
    """The image's Python packages: its groups' closure, pinned as requirements.lock pins them."""
    return IMAGES_DIR / f"{image}.lock"
