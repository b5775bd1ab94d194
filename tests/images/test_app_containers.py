"""The app's containers mode takes its securityContext, env, mounts and limits from the dev
render of the chart: what the chart says, podman applies, and what it cannot apply is refused."""

from __future__ import annotations

import dataclasses

import pytest

from infra.local import app_containers

LOCAL = {
    "ITS_ENVIRONMENT": "local",
    "ITS_DATABASE_URL": "postgresql://its_api@127.0.0.1:1/its",
    "ITS_VAULT_AUTH_METHOD": "approle",
    "ITS_WORKER_METRICS_HOST": "127.0.0.1",
    "ITS_VAULT_SECRET_ID_FILE": "/state/secrets/containers/its-api.secret-id",
}


def _args(name: str) -> list[str]:
    spec = app_containers.chart_container("Deployment", name)
    local = {**LOCAL, **dict.fromkeys(spec.pod_fields, "local")}
    return app_containers.podman_command("n", spec, "img", local, {"/s": "/s"})


def _pairs(args: list[str], flag: str) -> list[str]:
    return [args[i + 1] for i, arg in enumerate(args) if arg == flag]


@pytest.mark.parametrize("name", ["its-camera-ai-api", "its-camera-ai-worker", "its-camera-ai-ingest"])
def test_the_dev_render_s_security_context_and_limits_are_applied(name: str) -> None:
    spec = app_containers.chart_container("Deployment", name)
    args = _args(name)
    context = spec.container["securityContext"]
    assert _pairs(args, "--user") == [f"{context['runAsUser']}:{context['runAsGroup']}"]
    assert ("--read-only" in args) is context["readOnlyRootFilesystem"]
    assert _pairs(args, "--cap-drop") == context["capabilities"]["drop"]
    assert _pairs(args, "--security-opt") == ["no-new-privileges"]
    assert _pairs(args, "--network") == ["host"]
    limits = spec.container["resources"]["limits"]
    assert _pairs(args, "--memory") == [str(app_containers._quantity_bytes(limits["memory"]))]
    (tmpfs,) = _pairs(args, "--tmpfs")
    (tmp,) = [v for v in spec.pod["volumes"] if v["name"] == "tmp"]
    assert tmpfs == f"/tmp:rw,mode=1777,size={app_containers._quantity_bytes(tmp['emptyDir']['sizeLimit'])}"
    assert args[-1] == "img"


def test_the_env_is_the_chart_s_with_the_local_endpoints_and_login() -> None:
    spec = app_containers.chart_container("Deployment", "its-camera-ai-worker")
    env = dict(item.split("=", 1) for item in _pairs(_args("its-camera-ai-worker"), "--env"))
    # The chart's own settings stay (the ones that are not where-and-how-to-log-in).
    for key in ("ITS_DEVICE", "ITS_WORKER_BATCH_SIZE", "YOLO_CONFIG_DIR", "HOME", "ITS_VAULT_KV_MOUNT"):
        assert env[key] == spec.env[key]
    for key, value in LOCAL.items():
        assert env[key] == value
    # The CA Secrets have no local source: their mounts and the settings naming them go.
    assert "ITS_KAFKA_SSL_CA_LOCATION" not in env
    assert not any("/etc/its/" in value for value in env.values())


def test_the_ingest_runs_the_charts_command_with_its_member_id_set_locally() -> None:
    spec = app_containers.chart_container("Deployment", "its-camera-ai-ingest")
    assert spec.pod_fields == ["ITS_INGEST_REPLICA_ID"]  # the pod's name in a cluster
    local = {**LOCAL, "ITS_INGEST_REPLICA_ID": "local-ingest-0"}
    args = app_containers.podman_command("n", spec, "img", local, {}, spec.container["command"])
    assert args[-4:] == ["img", "python", "-m", "app.ingest"]
    assert "ITS_INGEST_REPLICA_ID=local-ingest-0" in _pairs(args, "--env")
    with pytest.raises(app_containers.ContainerSpecError, match="ITS_INGEST_REPLICA_ID"):
        app_containers.podman_command("n", spec, "img", LOCAL, {})


def test_what_the_runner_cannot_apply_is_refused() -> None:
    spec = app_containers.chart_container("Deployment", "its-camera-ai-api")
    odd = dict(spec.container, securityContext={**spec.container["securityContext"], "procMount": "Unmasked"})
    with pytest.raises(app_containers.ContainerSpecError, match="procMount"):
        app_containers.security_arguments(dataclasses.replace(spec, container=odd))


def test_the_runtime_switch_names_a_bad_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ITS_APP_RUNTIME", "docker")
    with pytest.raises(app_containers.ContainerSpecError, match="ITS_APP_RUNTIME='docker'"):
        app_containers.runtime()
