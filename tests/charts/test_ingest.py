"""The stream ingest as the its-camera-ai chart deploys it: its own image (the API's frame path
plus PyAV) running `python -m app.ingest` as its own identity, scaled on cameras per replica, and reaching no
camera network an environment did not list."""

from __future__ import annotations

import pytest
import yaml

from tests.charts.helm import CHARTS_DIR, ENVIRONMENTS, env_render, env_values_file
from tests.charts.test_network_policies import override

INGEST = "its-camera-ai-ingest"


def _values(env: str) -> dict[str, object]:
    chart = yaml.safe_load((CHARTS_DIR / "its-camera-ai" / "values.yaml").read_text())["ingest"]
    overrides = (yaml.safe_load(env_values_file("its-camera-ai", env).read_text()) or {}).get("ingest", {})
    autoscaling = {**chart["autoscaling"], **overrides.get("autoscaling", {})}
    return {**chart, **overrides, "autoscaling": autoscaling}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_ingest_runs_its_own_image_as_its_own_identity(env: str) -> None:
    rendered = env_render("its-camera-ai", env)
    ingest = rendered.named("Deployment", INGEST)["spec"]["template"]["spec"]
    api = rendered.named("Deployment", "its-camera-ai-api")["spec"]["template"]["spec"]
    (container,) = ingest["containers"]
    # Not the API's image: PyAV and its FFmpeg stay out of that (test_charts checks the digests).
    assert "/its-camera-ai/ingest" in container["image"]
    assert container["image"] != api["containers"][0]["image"]
    assert container["command"] == ["python", "-m", "app.ingest"]
    assert ingest["serviceAccountName"] == "its-ingest"
    env_vars = {e["name"]: e for e in container["env"]}
    assert env_vars["ITS_VAULT_ROLE"]["value"] == "its-ingest"
    # Each pod is a member by its own name: unique, and what the API shows as a camera's reader.
    assert env_vars["ITS_INGEST_REPLICA_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert rendered.named("PodDisruptionBudget", INGEST)["spec"]["maxUnavailable"] == 1
    assert rendered.named("ServiceAccount", "its-ingest")["automountServiceAccountToken"] is False


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_keda_scales_the_ingest_on_cameras_per_replica_within_the_planned_bounds(env: str) -> None:
    values = _values(env)
    autoscaling = values["autoscaling"]
    assert isinstance(autoscaling, dict)
    scaled = env_render("its-camera-ai", env).named("ScaledObject", INGEST)["spec"]
    (trigger,) = scaled["triggers"]
    assert trigger["type"] == "prometheus"
    assert trigger["metadata"]["query"] == 'sum(its_ingest_cameras{namespace="its"})'
    assert trigger["metadata"]["threshold"] == str(autoscaling["camerasPerReplica"])
    assert (scaled["minReplicaCount"], scaled["maxReplicaCount"]) == (
        autoscaling["minReplicas"],
        autoscaling["maxReplicas"],
    )
    # Without KEDA the Deployment keeps its own replicas.
    bare = env_render("its-camera-ai", env, ()).named("Deployment", INGEST)["spec"]
    assert bare["replicas"] == values["replicas"]


def test_prod_holds_the_capacity_plans_thousand_cameras() -> None:
    """docs/capacity.md, "Stream ingest": 1,000 cameras at 5 frames/s need 63 pods of 16."""
    autoscaling = _values("prod")["autoscaling"]
    assert isinstance(autoscaling, dict)
    assert autoscaling["maxReplicas"] * autoscaling["camerasPerReplica"] >= 1000


def _camera_egress(policy: dict[str, object]) -> list[dict[str, object]]:
    spec = policy["spec"]
    assert isinstance(spec, dict)
    return [rule for rule in spec["egress"] if any("ipBlock" in peer for peer in rule["to"])]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_ingest_reaches_only_the_listed_camera_networks_on_their_stream_ports(env: str) -> None:
    unlisted = env_render("its-camera-ai", env).named("NetworkPolicy", INGEST)
    assert _camera_egress(unlisted) == []  # no camera network listed: none reachable
    listed = override(
        "its-camera-ai",
        env,
        yaml.safe_dump({"ingest": {"cameraNetworks": [{"cidr": "10.64.0.0/16", "ports": [554, 8554]}]}}),
    ).named("NetworkPolicy", INGEST)
    (rule,) = _camera_egress(listed)
    assert rule["to"] == [{"ipBlock": {"cidr": "10.64.0.0/16"}}]
    assert rule["ports"] == [{"port": 554, "protocol": "TCP"}, {"port": 8554, "protocol": "TCP"}]
