"""Which PostgreSQL server each environment runs (infrastructure/database/postgres.yaml), as the
its-databases and its-camera-ai charts render it: the image of the environment's storage path by
PostgreSQL major through an ImageCatalog, the image's uid/gid, TimescaleDB preloaded where the
path is timescale, and the app's ITS_TIMESCALE (on there, off on the plain path) in the API, the
worker and the migration Job."""

from __future__ import annotations

from typing import Any

import pytest

from infra.facts.postgres import postgres
from tests.charts.helm import ENVIRONMENTS, Manifest, env_render, workloads

# What each environment must run: the contract the fact file is held to.
EXPECTED = {
    "dev": {"path": "plain", "uid": 26, "itsTimescale": "off"},
    "staging": {"path": "timescale", "uid": 1000, "itsTimescale": "on"},
    "prod": {"path": "timescale", "uid": 1000, "itsTimescale": "on"},
}
# The app's components (app.kubernetes.io/component): the migration Job's name carries a hash.
APP_COMPONENTS = {"api", "worker", "migrate"}


def _one(objects: tuple[Manifest, ...], kind: str) -> Manifest:
    (obj,) = [o for o in objects if o["kind"] == kind]
    return obj


def _env_of(workload: Manifest) -> dict[str, Any]:
    """The env of the workload's app container (api, worker or migrate)."""
    (container,) = [
        c
        for c in workload["spec"]["template"]["spec"]["containers"]
        if c["name"] in {"api", "worker", "migrate"}
    ]
    return {e["name"]: e.get("value") for e in container.get("env", [])}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_database_runs_the_environment_s_image_by_major(env: str) -> None:
    fact = postgres()
    image = fact.image(env)
    assert fact.path(env) == EXPECTED[env]["path"]
    objects = env_render("its-databases", env).objects
    catalog, cluster = _one(objects, "ImageCatalog"), _one(objects, "Cluster")
    assert catalog["spec"]["images"] == [{"major": fact.major, "image": image.reference}]
    assert cluster["spec"]["imageCatalogRef"] == {
        "apiGroup": "postgresql.cnpg.io",
        "kind": "ImageCatalog",
        "name": catalog["metadata"]["name"],
        "major": 17,
    }
    assert "imageName" not in cluster["spec"]
    assert cluster["spec"]["postgresUID"] == cluster["spec"]["postgresGID"] == EXPECTED[env]["uid"]
    if EXPECTED[env]["path"] == "timescale":
        assert image.image.startswith("timescale/timescaledb-ha:pg17.")
    else:
        # CloudNativePG's own image, pinned by the digest of its published catalog.
        assert image.image.startswith("ghcr.io/cloudnative-pg/postgresql:17.")
        assert image.digest and catalog["spec"]["images"][0]["image"].endswith("@" + image.digest)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_timescaledb_is_preloaded_and_created_exactly_where_the_path_is_timescale(env: str) -> None:
    cluster = _one(env_render("its-databases", env).objects, "Cluster")
    preload = cluster["spec"]["postgresql"].get("shared_preload_libraries", [])
    post_init = cluster["spec"]["bootstrap"]["initdb"].get("postInitApplicationSQL", [])
    if EXPECTED[env]["path"] == "timescale":
        assert preload == ["timescaledb"]
        assert post_init == ["CREATE EXTENSION IF NOT EXISTS timescaledb"]
    else:
        assert preload == [] and post_init == []


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_app_and_the_migration_job_take_the_environment_s_path_explicitly(env: str) -> None:
    rendered = env_render("its-camera-ai", env)
    found = {
        w["metadata"]["labels"]["app.kubernetes.io/component"]: _env_of(w)
        for w in workloads(rendered.objects)
        if w["kind"] in {"Deployment", "Job"}
        and w["metadata"].get("labels", {}).get("app.kubernetes.io/component") in APP_COMPONENTS
    }
    assert set(found) == APP_COMPONENTS
    for name in APP_COMPONENTS:
        # Never "auto" in a cluster: a missing extension fails the migration instead of
        # quietly switching to the plain path.
        assert found[name]["ITS_TIMESCALE"] == EXPECTED[env]["itsTimescale"] == postgres().timescale_mode(env)
