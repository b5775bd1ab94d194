"""The app chart with the local cluster's `platform.local` values (what infra/cluster writes into
the root Application for the real node): every pod goes to the real node's RuntimeClass on the
host network, on loopback only, and nothing else of the restricted profile, the objects or the
secrets policy changes. No values file in Git sets `platform`: it enters through the seam only."""

from __future__ import annotations

import dataclasses
import re

import pytest
import yaml

from infra import charts as engine
from infra.cluster.app_values import APPROLE_SECRET, platform_values
from infra.cluster.config import ClusterConfig
from infra.cluster.local_platform import LocalPlatform
from infra.cluster.node import RUNTIME_CLASS
from infra.facts.images import images_file
from infra.kernel.layout import HOST
from tests.charts import policy
from tests.charts.helm import (
    ENVIRONMENTS,
    HelmError,
    Manifest,
    Rendered,
    charts,
    env_values_file,
    template,
)

IMAGES = {name: f"localhost/{spec.repository}:0123456789ab" for name, spec in images_file().images.items()}
LOOPBACK = re.compile(r"^127(\.\d{1,3}){3}$")


def local_values() -> dict[str, object]:
    cfg = ClusterConfig.load(port_base=23200, stack="dev")
    return platform_values(cfg, LocalPlatform.locate(), IMAGES)


def local_render() -> Rendered:
    return engine.env_render(
        "its-camera-ai", "dev", (), values_yaml=yaml.safe_dump({"platform": local_values()})
    )


def pods(rendered: Rendered) -> list[Manifest]:
    return [o for o in rendered.objects if policy.pod_spec(o) is not None]


def test_no_values_file_in_git_sets_platform() -> None:
    for chart in charts():
        for env in ENVIRONMENTS:
            assert "platform" not in (yaml.safe_load(env_values_file(chart, env).read_text()) or {}), (
                chart,
                env,
            )


def test_every_pod_goes_to_the_real_node_on_loopback_and_stays_restricted_otherwise() -> None:
    rendered = local_render()
    assert {o["kind"] for o in pods(rendered)} == {"Deployment", "Job", "Pod"}
    for obj in pods(rendered):
        spec = policy.pod_spec(obj) or {}
        assert spec["runtimeClassName"] == RUNTIME_CLASS and spec["hostNetwork"] is True, policy.ident(obj)
        # The host network is the one departure from `restricted`; the exempt RuntimeClass carries it.
        problems = policy.security_problems(obj)
        assert problems == [f"{policy.ident(obj)}: hostNetwork"], problems
        for container in spec["containers"]:
            assert container["imagePullPolicy"] == "Never" and container["image"] in IMAGES.values()
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                if probe in container:
                    assert LOOPBACK.match(container[probe]["httpGet"]["host"]), (policy.ident(obj), probe)
            env = {e["name"]: e for e in container.get("env", [])}
            for name, item in env.items():
                for address in re.findall(r"(?:://|^|,)([0-9a-z.-]+):\d+", item.get("value", "")):
                    assert LOOPBACK.match(address), (policy.ident(obj), name, item["value"])
            if env:
                assert env["ITS_VAULT_AUTH_METHOD"]["value"] == "approle"
                assert env["ITS_VAULT_ROLE_ID"]["valueFrom"]["secretKeyRef"]["name"] == APPROLE_SECRET
                assert "ITS_VAULT_SECRET_ID_FILE" in env and "ITS_MODEL_URI" not in env
        # No CA Secret of the cluster's data stacks is mounted (the local data plane is plain loopback).
        secrets = {v["secret"]["secretName"] for v in spec.get("volumes", []) if "secret" in v}
        assert secrets <= {APPROLE_SECRET}, secrets


def test_the_api_listens_where_it_is_probed_and_the_test_pod_asks_there() -> None:
    rendered = local_render()
    local = local_values()["local"]
    assert isinstance(local, dict)
    api = rendered.named("Deployment", "its-camera-ai-api")["spec"]["template"]["spec"]["containers"][0]
    command = api["command"]
    assert command[command.index("--host") + 1] == HOST
    assert (
        command[command.index("--port") + 1] == str(local["apiPort"]) == str(api["ports"][0]["containerPort"])
    )
    (test_pod,) = [p for p in rendered.of_kind("Pod")]
    assert (
        f'url = "http://{HOST}:{local["apiPort"]}/readyz"' in test_pod["spec"]["containers"][0]["command"][-1]
    )
    worker = rendered.named("Deployment", "its-camera-ai-worker")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in worker["env"]}
    assert (env["ITS_WORKER_METRICS_HOST"], env["ITS_WORKER_METRICS_PORT"]) == (
        HOST,
        str(local["workerMetricsPort"]),
    )
    (job,) = rendered.of_kind("Job")
    job_env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    # The schema owner goes to the local primary (the local PgBouncer admits the app roles only).
    assert job_env["ITS_DATABASE_URL"].startswith(f"postgresql://{local['database']['primary']}/")


def _names(rendered: Rendered) -> list[tuple[str, str]]:
    """Every object but the migration Job (its name carries the image's hash)."""
    return sorted((o["kind"], o["metadata"]["name"]) for o in rendered.objects if o["kind"] != "Job")


def test_the_same_objects_as_dev_and_no_secret() -> None:
    plain = engine.env_render("its-camera-ai", "dev", ())
    rendered = local_render()
    assert _names(rendered) == _names(plain)
    assert not rendered.of_kind("Secret")


@pytest.mark.parametrize(
    ("key", "value"),
    [("host", "10.0.0.1"), ("minioEndpoint", "192.168.1.5:9000"), ("runtimeClassName", "Not A Name")],
)
def test_the_schema_refuses_local_values_off_loopback_or_malformed(key: str, value: str) -> None:
    values = local_values()
    local = values["local"]
    assert isinstance(local, dict)
    local[key] = value
    base = local_render().render
    with pytest.raises(HelmError, match=f"/platform/local/{key}'.* does not match pattern"):
        template(dataclasses.replace(base, values_yaml=yaml.safe_dump({"platform": values})))
