"""The compatibility table (infrastructure/cloud/compatibility.yaml): one minor, and everything the
platform installs at a version that supports it; the stack configs and the catalogue take their
versions from it and refuse to restate them differently."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.facts._load import FactFileError
from infra.facts.compatibility import (
    COMPATIBILITY_FILE,
    EKS_ADDONS,
    check_local_build,
    compatibility,
    minor_key,
)
from infra.facts.stack_config import StackConfigError, load_stack_file, parse, read_stack_values
from infra.facts.versions import versions
from infra.pulumi.catalogue import CATALOGUE_FILE, CatalogueError, load_catalogue

STACKS = ("dev", "staging", "prod")


def _table() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPATIBILITY_FILE.read_text())
    return document


def _write(tmp_path: Path, name: str, document: Any) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def test_the_minor_is_1_35_or_newer_and_still_in_eks_standard_support() -> None:
    table = compatibility()
    assert minor_key(table.minor) >= (1, 35)
    # Fails the day the minor leaves standard support (billed as extended from then on).
    assert table.kubernetes.eks.end_of_standard_support > datetime.date.today()


def test_every_addon_chart_and_local_tool_supports_the_minor_or_says_what_proves_it() -> None:
    table = compatibility()
    assert set(table.addons) == set(EKS_ADDONS)
    for addon in table.addons.values():
        assert addon.kubernetes.holds(table.minor) and addon.source.strip()
    for chart in table.charts.values():
        assert chart.kubernetes.holds(table.minor) and chart.source.strip()
    for tool in table.local.values():
        assert tool.kubernetes.holds(table.minor) or tool.note.strip()
    # KEDA is the chart that held the minor back: 2.17 supports only 1.30-1.32.
    assert minor_key(table.charts["keda"].kubernetes.min) <= minor_key(table.minor)
    assert table.charts["cluster-autoscaler"].app_version.startswith(f"v{table.minor}.")


def test_a_chart_that_does_not_support_the_minor_is_refused_naming_file_and_key(tmp_path: Path) -> None:
    document = _table()
    document["charts"]["keda"]["kubernetes"] = {"min": "1.30", "max": "1.32"}
    with pytest.raises(FactFileError) as error:
        compatibility(_write(tmp_path, "compatibility.yaml", document))
    assert "compatibility.yaml" in str(error.value)
    assert "charts.keda.kubernetes: 1.30-1.32 does not hold 1.35" in str(error.value)


def test_a_local_tool_outside_its_tested_range_needs_a_note(tmp_path: Path) -> None:
    document = _table()
    document["local"]["argocd"]["note"] = ""
    with pytest.raises(FactFileError, match=r"local\.argocd\.note"):
        compatibility(_write(tmp_path, "compatibility.yaml", document))


def test_a_local_control_plane_of_another_minor_is_refused() -> None:
    table = compatibility()
    check_local_build(table, versions()["KUBERNETES_VERSION"])
    with pytest.raises(FactFileError, match=r"tools/versions.env: KUBERNETES_VERSION: v1\.33\.13"):
        check_local_build(table, "v1.33.13")


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_runs_the_table_s_minor_and_add_ons(stack: str) -> None:
    cfg = load_stack_file(stack)
    assert cfg.kubernetes_version == compatibility().minor
    assert cfg.addon_versions == compatibility().addon_versions()
    raw = read_stack_values(stack)
    assert "its-camera-ai:addonVersions" not in raw and "its-camera-ai:kubernetesVersion" not in raw


def test_a_stack_may_restate_the_minor_but_not_disagree() -> None:
    # Keys without their namespace, as parse() takes them (aws:region -> region).
    values = {k.split(":", 1)[1]: v for k, v in read_stack_values("prod").items()}
    assert parse({**values, "kubernetesVersion": compatibility().minor}, "Pulumi.prod.yaml")
    with pytest.raises(StackConfigError) as error:
        parse({**values, "kubernetesVersion": "1.33"}, "Pulumi.prod.yaml")
    assert "Pulumi.prod.yaml" in str(error.value)
    assert "its-camera-ai:kubernetesVersion: 1.33 disagrees" in str(error.value)


def test_the_catalogue_takes_each_chart_version_from_the_table() -> None:
    table = compatibility()
    catalogue = load_catalogue()
    assert set(catalogue.names()) == set(table.charts)
    for release in catalogue.releases:
        assert release.version == table.chart(release.name).version
        assert release.app_version == table.chart(release.name).app_version


def test_a_version_in_the_catalogue_file_is_refused(tmp_path: Path) -> None:
    document = yaml.safe_load(CATALOGUE_FILE.read_text())
    document["releases"][0]["version"] = "1.0.0"
    with pytest.raises(CatalogueError, match=r"version lives in infrastructure/cloud/compatibility\.yaml"):
        load_catalogue(_write(tmp_path, "upstream-charts.yaml", document))


def test_a_release_without_a_table_row_and_a_row_without_a_release_are_refused(tmp_path: Path) -> None:
    document = yaml.safe_load(CATALOGUE_FILE.read_text())
    document["releases"].append({**document["releases"][0], "name": "not-in-the-table"})
    with pytest.raises(FactFileError, match=r"charts\.not-in-the-table: missing"):
        load_catalogue(_write(tmp_path, "extra.yaml", document))
    document = yaml.safe_load(CATALOGUE_FILE.read_text())
    document["releases"] = [r for r in document["releases"] if r["name"] != "keda"]
    with pytest.raises(CatalogueError, match=r"charts \['keda'\]: no such release"):
        load_catalogue(_write(tmp_path, "fewer.yaml", document))
