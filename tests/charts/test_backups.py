"""The its-databases chart's backups: CloudNativePG's barman-cloud plugin into the environment's
S3 bucket, with the values the Pulumi program hands down (tests/pulumi/test_backups.py checks
the program's side), the RPO and window of infrastructure/database/recovery.yaml."""

from __future__ import annotations

import dataclasses

import pytest

from infra.facts.paths import REPO_ROOT
from infra.facts.recovery import recovery
from tests.charts.helm import (
    ENVIRONMENTS,
    OPTIONAL_APIS,
    HelmError,
    env_render,
    platform_values,
    template,
)

PLUGIN = "barman-cloud.cloudnative-pg.io"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_cluster_archives_and_backs_up_through_the_plugin_to_the_program_s_bucket(env: str) -> None:
    rendered = env_render("its-databases", env)
    backup = platform_values(env)["postgresBackup"]
    (cluster,) = rendered.of_kind("Cluster")
    spec = cluster["spec"]
    assert "backup" not in spec, "the in-tree barmanObjectStore is deprecated"
    (store,) = rendered.of_kind("ObjectStore")
    assert spec["plugins"] == [
        {"name": PLUGIN, "isWALArchiver": True, "parameters": {"barmanObjectName": store["metadata"]["name"]}}
    ]
    assert spec["serviceAccountTemplate"]["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": backup["roleArn"]
    }
    configuration = store["spec"]["configuration"]
    assert configuration["destinationPath"] == f"s3://{backup['bucket']}/{cluster['metadata']['name']}/"
    assert configuration["endpointURL"] == f"https://s3.{backup['region']}.amazonaws.com"
    assert configuration["s3Credentials"] == {"inheritFromIAMRole": True}
    facts = recovery()
    assert store["spec"]["retentionPolicy"] == f"{facts.retention_days}d"
    assert spec["postgresql"]["parameters"]["archive_timeout"] == facts.archive_timeout == "5min"
    (scheduled,) = rendered.of_kind("ScheduledBackup")
    assert scheduled["spec"]["method"] == "plugin"
    assert scheduled["spec"]["pluginConfiguration"] == {"name": PLUGIN}
    assert store["metadata"]["namespace"] == cluster["metadata"]["namespace"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_without_the_program_s_values_the_chart_refuses_to_render(env: str) -> None:
    """Git alone (no root Application of the program) must not yield a database whose backups
    go nowhere: the render fails, naming the values."""
    base = env_render("its-databases", env).render
    with pytest.raises(HelmError, match=r"platform\.postgresBackup\.bucket"):
        template(dataclasses.replace(base, values_yaml=""))
    without_plugin = tuple(a for a in OPTIONAL_APIS if a != "barmancloud.cnpg.io/v1")
    with pytest.raises(HelmError, match="barman-cloud plugin"):
        template(dataclasses.replace(base, api_versions=without_plugin))
    # A cluster before its operators (the local one) syncs the chart empty, values or not.
    bare = template(dataclasses.replace(base, values_yaml="", api_versions=()))
    assert not bare.of_kind("Cluster") and not bare.of_kind("ObjectStore")


def test_the_cloud_restore_runbook_names_the_objectives_of_the_fact_file() -> None:
    runbook = (REPO_ROOT / "docs" / "runbooks" / "postgres-backup-restore.md").read_text()
    cloud = runbook[runbook.index("## Restore in the cloud") :]
    facts = recovery()
    assert f"**RPO {facts.rpo_minutes} min**" in cloud and f"**RTO {facts.rto_minutes} min**" in cloud
    assert f"**{facts.retention_days} days**" in cloud
