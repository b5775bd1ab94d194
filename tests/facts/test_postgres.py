"""infrastructure/database/postgres.yaml: one PostgreSQL major for every cluster environment, the
image of each storage path, and the local platform's major, which Debian fixes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.facts._load import FactFileError
from infra.facts.postgres import POSTGRES_FILE, postgres
from infra.facts.versions import versions
from infra.local.config import Tools


def _document() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(POSTGRES_FILE.read_text())
    return document


def _load(tmp_path: Path, document: dict[str, Any]) -> None:
    path = tmp_path / "postgres.yaml"
    path.write_text(yaml.safe_dump(document))
    postgres(path)


def test_every_cluster_environment_runs_one_major_and_the_timescale_path_beyond_dev() -> None:
    fact = postgres()
    assert {fact.image(env).tag_major() for env in ("dev", "staging", "prod")} == {fact.major} == {17}
    assert [fact.path(env) for env in ("dev", "staging", "prod")] == ["plain", "timescale", "timescale"]
    timescale = fact.images["timescale"]
    assert (timescale.uid, timescale.gid) == (1000, 1000) and timescale.timescaledb
    assert fact.images["plain"].digest  # CloudNativePG's catalog publishes it


def test_the_local_platform_runs_debian_s_server_of_the_local_major() -> None:
    assert Tools.locate(versions()).postgres_bin == Path(f"/usr/lib/postgresql/{postgres().local.major}/bin")
    assert postgres().local.major == 15


def test_an_image_of_another_major_is_refused(tmp_path: Path) -> None:
    document = _document()
    document["images"]["timescale"]["image"] = "timescale/timescaledb-ha:pg16.9-ts2.29.2"
    with pytest.raises(FactFileError, match=r"images\.timescale\.image: its tag is not PostgreSQL 17"):
        _load(tmp_path, document)


def test_an_environment_on_a_path_without_an_image_is_refused(tmp_path: Path) -> None:
    document = _document()
    del document["images"]["plain"]
    with pytest.raises(FactFileError, match=r"environments\.dev: plain has no image"):
        _load(tmp_path, document)
