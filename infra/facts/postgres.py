"""infrastructure/database/postgres.yaml: the PostgreSQL server of each environment and its major.

Which image each cluster environment runs (CloudNativePG's plain image or Timescale's), the uid
and gid it runs as, and the one major of the clusters; the local platform's major, which Debian
fixes. The charts read the same file (files/postgres.yaml); loading refuses an environment whose
path names no image, and an image whose tag names another major than the clusters'.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from infra.facts._load import Strict, load
from infra.facts.paths import INFRASTRUCTURE

POSTGRES_FILE = INFRASTRUCTURE / "database" / "postgres.yaml"
StoragePath = Literal["plain", "timescale"]
# The PostgreSQL major in a tag: CloudNativePG's "17.11-..." or Timescale's "pg17.11-ts...".
_TAG_MAJOR = re.compile(r":(?:pg)?(\d+)(?:\.\d+)?[-.]")


class LocalServer(Strict):
    major: int = Field(ge=13)
    source: str = Field(min_length=10)


class ServerImage(Strict):
    image: str = Field(pattern=r"^[a-z0-9.-]+(/[a-z0-9._-]+)+:[A-Za-z0-9._-]+$")
    digest: str | None = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    uid: int = Field(ge=1)
    gid: int = Field(ge=1)
    timescaledb: str | None = Field(pattern=r"^\d+\.\d+\.\d+$")
    source: str = Field(min_length=10)

    @property
    def reference(self) -> str:
        """The image as a pod pulls it: by digest when one is known."""
        return f"{self.image}@{self.digest}" if self.digest else self.image

    def tag_major(self) -> int | None:
        match = _TAG_MAJOR.search(self.image)
        return int(match.group(1)) if match else None


class Postgres(Strict):
    major: int = Field(ge=13)
    local: LocalServer
    images: dict[StoragePath, ServerImage]
    environments: dict[Literal["dev", "staging", "prod"], StoragePath]

    @model_validator(mode="after")
    def _images_serve_their_path_and_major(self) -> Postgres:
        problems = [
            f"images.{path}.image: its tag is not PostgreSQL {self.major}"
            for path, image in self.images.items()
            if image.tag_major() != self.major
        ]
        problems += [
            f"environments.{env}: {path} has no image under images"
            for env, path in self.environments.items()
            if path not in self.images
        ]
        if "timescale" in self.images and not self.images["timescale"].timescaledb:
            problems.append("images.timescale.timescaledb: the image's TimescaleDB version is required")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def path(self, environment: str) -> StoragePath:
        for name, path in self.environments.items():
            if name == environment:
                return path
        raise KeyError(f"{POSTGRES_FILE.name}: environments has no {environment!r}")

    def image(self, environment: str) -> ServerImage:
        return self.images[self.path(environment)]

    def timescale_mode(self, environment: str) -> Literal["on", "off"]:
        """ITS_TIMESCALE of the environment's app: the path is never left to detection there."""
        return "on" if self.path(environment) == "timescale" else "off"


@cache
def postgres(path: Path = POSTGRES_FILE) -> Postgres:
    return load(Postgres, path)
