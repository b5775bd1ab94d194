"""The shared platform definitions (infrastructure/cloud) and how they meet the rest of the repo:
catalogue pins, values files, HA values per environment, the GitOps root and the app chart."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
import yaml

from infra.cluster.config import ClusterTools
from infra.facts.compatibility import compatibility
from infra.facts.paths import REPO_ROOT
from infra.facts.redis import redis_settings
from infra.facts.stack_config import INSTANCE_TYPES_FILE, instance_types, load_stack_file
from infra.pulumi.catalogue import EXACT_VERSION, VALUES_DIR, load_catalogue, merge_values
from infra.pulumi.data_stacks import REDIS_AUTH_KEYS, REDIS_AUTH_SECRET
from infra.pulumi.gitops_root import render_gitops_root, with_platform_values
from tests.pulumi.stacks import STACKS, stack_run

CHART_VALUES = REPO_ROOT / "infrastructure" / "helm" / "charts" / "its-camera-ai" / "values.yaml"
GITOPS_ENVS = REPO_ROOT / "infrastructure" / "gitops" / "envs"


def values(release: str, env: str) -> dict[str, Any]:
    """The values the program gives the release: its values files and what the program injects."""
    released = stack_run(env).of_type("kubernetes:helm.sh/v3:Release")
    return dict(next(r.inputs["values"] for r in released if r.inputs["name"] == release))


def test_catalogue_schema_and_exact_pins() -> None:
    document = yaml.safe_load((REPO_ROOT / "infrastructure" / "cloud" / "upstream-charts.yaml").read_text())
    assert list(document) == ["releases"]
    # No version here: each release's chart version is the compatibility table's.
    fields = {"name", "namespace", "repo", "chart", "syncWave", "description"}
    for release in document["releases"]:
        assert set(release) == fields, release["name"]
        pinned = load_catalogue().release(release["name"]).version
        assert pinned == compatibility().chart(release["name"]).version
        assert EXACT_VERSION.match(pinned), release["name"]
        assert isinstance(release["syncWave"], int)
        assert release["repo"].startswith(("https://", "oci://"))
        # The repository's own charts sync at wave 20 and the app at 30: every stack comes first.
        assert -100 < release["syncWave"] < 20
    names = [r.name for r in load_catalogue().releases]
    expected = {
        "cloudnative-pg": "cnpg-system",
        "strimzi-kafka-operator": "kafka",
        "redis": "data",
        "minio": "minio",
        "openbao": "vault",
        "kube-prometheus-stack": "monitoring",
        "keda": "keda",
        "argocd": "argocd",
        "nvidia-device-plugin": "gpu-operator",
        "dcgm-exporter": "gpu-operator",
        "traefik": "traefik",
        "cluster-autoscaler": "kube-system",
        "aws-load-balancer-controller": "kube-system",
        "cert-manager": "cert-manager",
        "plugin-barman-cloud": "cnpg-system",
    }
    assert {n: load_catalogue().release(n).namespace for n in names} == expected
    waves = {r.name: r.sync_wave for r in load_catalogue().releases}
    assert waves["kube-prometheus-stack"] < min(w for n, w in waves.items() if n != "kube-prometheus-stack")
    operators = ("cloudnative-pg", "strimzi-kafka-operator")
    assert max(waves[o] for o in operators) < min(waves[s] for s in ("redis", "minio", "openbao"))


@pytest.mark.parametrize("env", STACKS)
def test_every_release_has_both_values_files(env: str) -> None:
    for release in load_catalogue().releases:
        for path in release.values_files(env):
            assert path.is_file(), path
            assert isinstance(yaml.safe_load(path.read_text()), dict), path
    assert {p.name for p in VALUES_DIR.iterdir()} == set(load_catalogue().names())


def test_values_merge_like_helm() -> None:
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    assert merge_values(base, {"a": {"c": [3]}, "d": None}) == {"a": {"b": 1, "c": [3]}}


def test_no_values_file_pins_a_floating_image_tag() -> None:
    def tags(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [str(v) for k, v in node.items() if k == "tag" and isinstance(v, str)]
            return found + [t for v in node.values() for t in tags(v)]
        if isinstance(node, list):
            return [t for v in node for t in tags(v)]
        return []

    for path in VALUES_DIR.rglob("*.yaml"):
        for tag in tags(yaml.safe_load(path.read_text())):
            assert tag and tag != "latest", path


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_ha_values_of_the_data_stacks(env: str) -> None:
    redis = values("redis", env)
    assert redis["replicas"] == 3 and redis["sentinel"]["quorum"] == 2
    assert redis["hardAntiAffinity"] is True
    minio = values("minio", env)
    assert minio["mode"] == "distributed"
    assert minio["replicas"] * minio["drivesPerNode"] * minio["pools"] >= 4 and minio["replicas"] >= 4
    openbao = values("openbao", env)["server"]["ha"]
    assert openbao["enabled"] and openbao["replicas"] == 3 and openbao["raft"]["enabled"]
    assert openbao["raft"]["config"].count("retry_join") == 3
    kafka = load_stack_file(env).data_stacks.kafka
    assert (kafka.replicas, kafka.replication_factor, kafka.min_insync_replicas) == (3, 3, 2)
    assert values("kube-prometheus-stack", env)["alertmanager"]["alertmanagerSpec"]["replicas"] == 3
    assert values("argocd", env)["redis-ha"]["enabled"] is True


@pytest.mark.parametrize("env", STACKS)
def test_data_stacks_answer_where_the_app_looks(env: str) -> None:
    app = yaml.safe_load(CHART_VALUES.read_text())["config"]
    redis = values("redis", env)
    assert app["redis"]["sentinels"] == [f"{redis['fullnameOverride']}.data.svc:26379"]
    assert load_catalogue().release("redis").namespace == "data"
    assert redis["redis"]["masterGroupName"] == redis_settings().master_name
    minio = values("minio", env)
    assert app["minio"]["endpoint"] == f"{minio['fullnameOverride']}.minio.svc:{minio['service']['port']}"
    assert minio["tls"]["enabled"] is True and app["minio"]["secure"] is True
    assert minio["image"]["repository"].startswith("quay.io/minio/")  # Docker Hub's copies are gone
    openbao = values("openbao", env)
    # The active server only, over TLS: the listener has TLS on and the chart's active Service is on.
    assert app["vault"]["addr"] == "https://openbao-active.vault.svc:8200"
    assert openbao["global"]["tlsDisable"] is False
    assert openbao["server"].get("service", {}).get("active", {}).get("enabled", True) is True
    assert app["kafka"]["bootstrapServers"] == "its-kafka-kafka-bootstrap.kafka.svc:9093"
    assert app["kafka"]["securityProtocol"] == "SASL_SSL"


@pytest.mark.parametrize("env", STACKS)
def test_the_app_ingress_goes_through_the_platform_s_ingress_controller(env: str) -> None:
    """The app's Ingress names the class the catalogue's controller serves, its NetworkPolicy
    lets that controller's namespace in, and the controller publishes its address on the
    Ingress (what ArgoCD's Ingress health waits for)."""
    controller = load_catalogue().release("traefik")
    served = controller.values(env)
    chart = yaml.safe_load((REPO_ROOT / "infrastructure/helm/charts/its-camera-ai/values.yaml").read_text())
    env_values = yaml.safe_load(
        (REPO_ROOT / f"infrastructure/gitops/envs/{env}/values/its-camera-ai.yaml").read_text()
    )
    app = merge_values(chart, env_values)
    assert "traefik" in load_stack_file(env).data_stacks.releases
    assert app["api"]["ingress"]["className"] == served["ingressClass"]["name"]
    assert app["networkPolicy"]["ingressControllerNamespace"] == controller.namespace
    assert served["providers"]["kubernetesIngress"]["publishedService"]["enabled"] is True
    # The Ingress names the app's Traefik Middlewares (@kubernetescrd): the CRD provider serves them.
    assert served["providers"]["kubernetesCRD"]["enabled"] is True


def test_redis_release_takes_infrastructure_redis_whole() -> None:
    """redis.yaml is injected, never mirrored: the values files set none of what it defines, and
    every environment's release carries all of it."""
    source = redis_settings()
    for env in STACKS:
        files = load_catalogue().release("redis").values(env)
        assert "replicas" not in files and "masterGroupName" not in files.get("redis", {})
        assert "config" not in files.get("redis", {}) and "config" not in files.get("sentinel", {})
        redis = values("redis", env)
        assert redis["redis"]["masterGroupName"] == source.master_name
        assert redis["replicas"] == source.replicas + 1 == source.sentinel.count  # a sentinel per pod
        assert redis["sentinel"]["quorum"] == source.sentinel.quorum
        assert redis["sentinel"]["config"] == {k: str(v) for k, v in source.sentinel.config.items()}
        assert redis["redis"]["config"] == {
            **{k: str(v) for k, v in source.config.items()},
            "aclfile": "/its-acl/users.acl",
        }


@pytest.mark.parametrize("env", STACKS)
def test_redis_and_its_sentinels_answer_no_one_without_a_password(env: str) -> None:
    """redis-ha with auth (requirepass and masterauth from the redis-auth Secret), Sentinel auth,
    and redis.yaml's ACL users loaded from the same Secret's users.acl; none of it in the values
    files, where a false would silently win."""
    redis = values("redis", env)
    assert redis["auth"] is True
    assert (redis["existingSecret"], redis["authKey"]) == (REDIS_AUTH_SECRET, "auth")
    assert redis["sentinel"]["auth"] is True
    assert redis["sentinel"]["existingSecret"] == REDIS_AUTH_SECRET
    assert redis["sentinel"]["authKey"] == "sentinel-password"
    (volume,) = redis["extraVolumes"]
    assert volume["secret"]["secretName"] == REDIS_AUTH_SECRET
    assert volume["secret"]["items"] == [{"key": "users.acl", "path": "users.acl"}]
    (mount,) = redis["redis"]["extraVolumeMounts"]
    assert mount == {"name": volume["name"], "mountPath": "/its-acl", "readOnly": True}
    assert redis["redis"]["config"]["aclfile"] == f"{mount['mountPath']}/users.acl"
    assert set(REDIS_AUTH_KEYS.values()) == {"auth", "sentinel-password", "users.acl"}
    files = load_catalogue().release("redis").values(env)  # values.yaml and values-<env>.yaml
    assert not {"auth", "existingSecret", "authKey", "extraVolumes"} & set(files)
    assert "auth" not in files.get("sentinel", {})


@pytest.mark.parametrize("env", STACKS)
def test_gpu_software_lands_on_the_gpu_pool_only(env: str) -> None:
    pool = load_stack_file(env).node_pool("gpu")
    labels = pool.kubernetes_labels()
    for release in ("nvidia-device-plugin", "dcgm-exporter"):
        release_values = values(release, env)
        assert release_values["nodeSelector"].items() <= labels.items(), release
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in release_values[
            "tolerations"
        ]


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_the_app_worker_selects_and_tolerates_the_gpu_pool(env: str) -> None:
    chart = yaml.safe_load(CHART_VALUES.read_text())
    env_values = yaml.safe_load((GITOPS_ENVS / env / "values" / "its-camera-ai.yaml").read_text())
    worker = merge_values(chart, env_values)["worker"]
    assert worker["mode"] == "gpu"
    pool = load_stack_file(env).node_pool("gpu")
    assert worker["gpu"]["nodeSelector"].items() <= pool.kubernetes_labels().items()
    for taint in pool.taints:
        assert any(
            t["key"] == taint.key
            and t.get("effect") == taint.effect
            and (t.get("operator") == "Exists" or t.get("value") == taint.value)
            for t in worker["gpu"]["tolerations"]
        ), taint


def test_instance_types_cover_every_pool_and_gpu_pools_have_gpus() -> None:
    types = instance_types()
    raw = yaml.safe_load(INSTANCE_TYPES_FILE.read_text())
    for spec in raw.values():
        assert set(spec) == {"cpu", "memoryGiB", "gpus", "gpuModel"}
    for env in STACKS:
        for pool in load_stack_file(env).node_pools:
            assert all(t in types for t in pool.instance_types)
            assert all((types[t].gpus > 0) == pool.gpu for t in pool.instance_types)


@pytest.mark.parametrize("env", STACKS)
def test_gitops_root_is_what_the_overlay_renders(env: str) -> None:
    ours = render_gitops_root(env)
    assert [(o["kind"], o["metadata"]["name"]) for o in ours] == [
        ("AppProject", "its-bootstrap"),
        ("Application", "its-bootstrap"),
    ]
    application = ours[1]
    assert application["spec"]["sources"][0]["helm"]["valueFiles"] == [
        f"$values/infrastructure/gitops/envs/{env}/bootstrap-values.yaml"
    ]
    assert application["metadata"]["labels"]["its.ai/environment"] == env
    rendered = subprocess.run(
        [str(ClusterTools.locate().kubectl), "kustomize", str(GITOPS_ENVS / env)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    theirs = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] != "ConfigMap"]
    key = lambda d: (d["kind"], d["metadata"]["name"])  # noqa: E731
    assert sorted(ours, key=key) == sorted(theirs, key=key)


@pytest.mark.parametrize("env", STACKS)
def test_app_component_creates_the_gitops_root_after_argocd_and_the_stacks(env: str) -> None:
    run = stack_run(env)
    objects = {
        (r.type.rsplit(":", 1)[-1], r.inputs["metadata"]["name"]): r.inputs
        for r in run.resources
        if r.type.startswith("kubernetes:argoproj.io/")
    }
    assert set(objects) == {("AppProject", "its-bootstrap"), ("Application", "its-bootstrap")}
    # The files' objects, plus the program's `platform` values (tests/pulumi/test_backups.py).
    platform = objects[("Application", "its-bootstrap")]["spec"]["sources"][0]["helm"]["valuesObject"][
        "platform"
    ]
    expected = {
        (o["kind"], o["metadata"]["name"]): with_platform_values(o, platform) for o in render_gitops_root(env)
    }
    for key, inputs in objects.items():
        assert inputs["spec"] == expected[key]["spec"]
        assert inputs["metadata"]["namespace"] == "argocd"
