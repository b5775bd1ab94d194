"""The guards catch what they are there for: a wrong or missing value and a broken template fail
the render, and the policy and schema checkers flag a manifest that lost its securityContext,
its limits, its probes, its PDB or its GPU consistency."""

from __future__ import annotations

import copy
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.charts import policy
from tests.charts.helm import (
    CHARTS_DIR,
    DEFAULT_KUBE_VERSION,
    HelmError,
    Manifest,
    Render,
    env_render,
    template,
)

APP = CHARTS_DIR / "its-camera-ai"
API = "its-camera-ai-api"
WORKER = "its-camera-ai-worker"


def render_app(values_yaml: str, chart: Path = APP) -> None:
    template(Render(chart=chart, release="its-camera-ai", namespace="its", values_yaml=values_yaml))


@pytest.mark.parametrize(
    ("values_yaml", "message"),
    [
        ("{}", "environment"),  # required, no default
        ("environment: qa", "environment"),
        ("environment: dev\nworker: {mode: tpu}", "/worker/mode"),
        ("environment: dev\nimage: {api: {tag: latest}}", "/image/api/tag"),
        ("environment: dev\napi: {resources: {limits: {cpu: null}}}", "/api/resources/limits"),
        ("environment: dev\napi: {ingress: {enabled: true}}", "/api/ingress/host"),
        ("environment: dev\nconfig: {redis: {sentinels: [no-port]}}", "/config/redis/sentinels"),
        ("environment: dev\nunknownKey: 1", "unknownKey"),
        ("environment: dev\nworker: {autoscaling: {topic: no-such-topic}}", "no-such-topic"),
        ("environment: dev\nprometheusRule: {files: [missing.yaml]}", "missing.yaml"),
        ("environment: dev\napi: {autoscaling: {minReplicas: 5, maxReplicas: 2}}", "minReplicas"),
        ("environment: dev\nworker: {autoscaling: {minReplicas: 5, maxReplicas: 2}}", "minReplicas"),
        ("environment: dev\napi: {maxFramePixels: 10}", "/api/maxFramePixels"),
        ("environment: dev\napi: {maxFrameBytes: 1073741824}", "/api/maxFrameBytes"),
        ("environment: dev\napi: {docsEnabled: 'yes'}", "/api/docsEnabled"),
        (
            "environment: dev\napi: {ingress: {middlewares: {rateLimit: {period: forever}}}}",
            "/api/ingress/middlewares/rateLimit/period",
        ),
    ],
)
def test_a_wrong_or_missing_value_fails_the_render(values_yaml: str, message: str) -> None:
    with pytest.raises(HelmError, match=re.escape(message)):
        render_app(values_yaml)


@pytest.mark.parametrize(
    ("chart", "values_yaml"),
    [
        ("its-kafka-topics", "{}"),
        ("its-minio-buckets", "environment: dev\nimage: {tag: latest}"),
        ("its-vault-config", "environment: dev\nimage: {cli: consul}"),
        ("its-databases", "environment: dev\ncluster: {instances: 0}"),
        ("its-monitoring", "environment: staging\nrules: {excludeFiles: [../x.yaml]}"),
    ],
)
def test_every_chart_rejects_bad_values(chart: str, values_yaml: str) -> None:
    with pytest.raises(HelmError, match="schema"):
        template(Render(chart=CHARTS_DIR / chart, release=chart, namespace="x", values_yaml=values_yaml))


def _chart_copy(tmp_path: Path) -> Path:
    # symlinks=False: the copy holds the shared files' content, as Helm reads it.
    return Path(shutil.copytree(APP, tmp_path / "its-camera-ai", symlinks=False))


@pytest.mark.parametrize(
    "broken",
    [
        "{{ if }}\n",  # a syntax error
        "kind: ConfigMap\nname: {{ .Values.api.nothing.here }}\n",  # nil pointer at execution
        '{{ include "its.noSuchHelper" . }}\n',
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n   bad: indentation\n",  # invalid YAML
    ],
)
def test_a_broken_template_fails_the_render(tmp_path: Path, broken: str) -> None:
    chart = _chart_copy(tmp_path)
    (chart / "templates" / "broken.yaml").write_text(broken)
    with pytest.raises(HelmError):
        render_app("environment: dev", chart)


def _drop_security_context(helpers: str) -> str:
    start = helpers.index('{{- define "its.containerSecurityContext" -}}')
    end = helpers.index("{{- end }}", start)
    return helpers[:start] + '{{- define "its.containerSecurityContext" -}}\n{}\n' + helpers[end:]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (_drop_security_context, "no securityContext"),
        (
            lambda t: t.replace("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false"),
            "readOnlyRootFilesystem",
        ),
        (lambda t: t.replace('drop: ["ALL"]', 'drop: ["NET_RAW"]'), "capabilities do not drop ALL"),
    ],
)
def test_a_template_that_weakens_the_security_context_is_caught_end_to_end(
    tmp_path: Path, edit: Callable[[str], str], expected: str
) -> None:
    chart = _chart_copy(tmp_path)
    helpers = chart / "templates" / "_helpers.tpl"
    helpers.write_text(edit(helpers.read_text()))
    rendered = template(
        Render(chart=chart, release="its-camera-ai", namespace="its", values_yaml="environment: dev")
    )
    problems = policy.workload_problems(list(rendered.objects))
    for workload in (API, WORKER):
        assert any(expected in p and workload in p for p in problems), problems


def _deployment(name: str, env: str = "prod") -> Manifest:
    return copy.deepcopy(env_render("its-camera-ai", env).named("Deployment", name))


def _container(obj: Manifest) -> dict[str, Any]:
    container: dict[str, Any] = obj["spec"]["template"]["spec"]["containers"][0]
    return container


def test_the_clean_renders_pass_the_checkers() -> None:
    for name in (API, WORKER):
        deployment = _deployment(name)
        assert not policy.security_problems(deployment)
        assert not policy.resource_problems(deployment)
        assert not policy.probe_problems(deployment)
        assert not policy.gpu_problems(deployment)


def _pop_both(container: dict[str, Any], pod: dict[str, Any], key: str) -> None:
    container["securityContext"].pop(key)
    pod["securityContext"].pop(key)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda c, p: c.pop("securityContext"), "no securityContext"),
        (lambda c, p: c["securityContext"].update(readOnlyRootFilesystem=False), "readOnlyRootFilesystem"),
        (lambda c, p: c["securityContext"].update(allowPrivilegeEscalation=True), "allowPrivilegeEscalation"),
        (lambda c, p: c["securityContext"]["capabilities"].update(drop=["NET_RAW"]), "drop ALL"),
        (lambda c, p: _pop_both(c, p, "runAsNonRoot"), "runAsNonRoot"),
        (lambda c, p: _pop_both(c, p, "seccompProfile"), "seccompProfile"),
        (lambda c, p: c["securityContext"].update(privileged=True), "privileged"),
        (lambda c, p: p.update(hostNetwork=True), "hostNetwork"),
    ],
)
def test_the_security_checker_flags_a_weakened_container(mutate: Any, expected: str) -> None:
    deployment = _deployment(API)
    mutate(_container(deployment), deployment["spec"]["template"]["spec"])
    problems = policy.security_problems(deployment)
    assert any(expected in p for p in problems), problems


def test_the_resource_and_probe_checkers_flag_what_is_missing() -> None:
    deployment = _deployment(API)
    del _container(deployment)["resources"]["limits"]
    del _container(deployment)["readinessProbe"]
    assert any("no limits.cpu" in p for p in policy.resource_problems(deployment))
    assert any("no readinessProbe" in p for p in policy.probe_problems(deployment))


def test_jobs_and_helm_test_pods_need_no_probes_but_everything_else() -> None:
    rendered = env_render("its-camera-ai", "prod")
    test_pod = copy.deepcopy(rendered.of_kind("Pod")[0])
    assert policy.runs_to_completion(test_pod) and not policy.probe_problems(test_pod)
    test_pod["spec"]["containers"][0].pop("securityContext")
    assert policy.security_problems(test_pod)
    test_pod["metadata"]["annotations"].pop("helm.sh/hook")
    assert policy.probe_problems(test_pod)


def test_the_gpu_checker_flags_a_mismatch() -> None:
    gpu_worker = _deployment(WORKER, "prod")
    cpu_worker = _deployment(WORKER, "dev")
    gpu_worker["spec"]["template"]["spec"].pop("tolerations")
    assert any("without tolerating" in p for p in policy.gpu_problems(gpu_worker))
    cpu_worker["spec"]["template"]["spec"]["tolerations"] = [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert any("without requesting a GPU" in p for p in policy.gpu_problems(cpu_worker))
    api = _deployment(API)
    api["spec"]["template"]["spec"]["nodeSelector"] = {"its.ai/pool": "gpu"}
    assert any("gpu pool without requesting" in p for p in policy.gpu_problems(api))


def test_the_pdb_checker_flags_a_replicated_workload_without_one() -> None:
    objects = [copy.deepcopy(o) for o in env_render("its-camera-ai", "prod").objects]
    assert not policy.pdb_problems(objects)
    without = [
        o for o in objects if not (o["kind"] == "PodDisruptionBudget" and o["metadata"]["name"] == API)
    ]
    assert any(API in p for p in policy.pdb_problems(without))
    # The HPA's floor counts: the API Deployment sets no replicas of its own.
    assert "replicas" not in _deployment(API)["spec"]


def test_the_schema_checker_flags_invalid_objects() -> None:
    deployment = _deployment(API)
    deployment["spec"]["replicas"] = "two"
    assert policy.schema_problems(deployment, DEFAULT_KUBE_VERSION)
    unknown_field = _deployment(API)
    _container(unknown_field)["securityContex"] = {}
    assert policy.schema_problems(unknown_field, DEFAULT_KUBE_VERSION)
    assert not policy.schema_problems(_deployment(API), DEFAULT_KUBE_VERSION)


def test_the_custom_resource_checker_flags_broken_objects() -> None:
    rendered = env_render("its-camera-ai", "prod")
    scaled = copy.deepcopy(rendered.named("ScaledObject", "its-camera-ai-worker"))
    del scaled["spec"]["triggers"][0]["metadata"]["consumerGroup"]
    assert policy.schema_problems(scaled, DEFAULT_KUBE_VERSION)
    scaled = copy.deepcopy(rendered.named("ScaledObject", "its-camera-ai-ingest"))
    del scaled["spec"]["triggers"][0]["metadata"]["query"]
    assert policy.schema_problems(scaled, DEFAULT_KUBE_VERSION)
    topic = copy.deepcopy(env_render("its-kafka-topics", "prod").of_kind("KafkaTopic")[0])
    del topic["metadata"]["labels"]["strimzi.io/cluster"]
    assert policy.schema_problems(topic, DEFAULT_KUBE_VERSION)
    rule = copy.deepcopy(rendered.of_kind("PrometheusRule")[0])
    rule["spec"]["groups"][0]["rules"][0].pop("expr")
    assert policy.schema_problems(rule, DEFAULT_KUBE_VERSION)
    monitor = copy.deepcopy(env_render("its-databases", "prod").of_kind("PodMonitor")[0])
    assert not policy.schema_problems(monitor, DEFAULT_KUBE_VERSION)
    monitor["spec"]["selector"] = {}
    assert policy.schema_problems(monitor, DEFAULT_KUBE_VERSION)
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert policy.schema_problems(unknown, DEFAULT_KUBE_VERSION)


def test_the_cloudnative_pg_checkers_flag_a_broken_catalog_and_image_reference() -> None:
    rendered = env_render("its-databases", "prod")
    catalog = copy.deepcopy(rendered.of_kind("ImageCatalog")[0])
    cluster = copy.deepcopy(rendered.of_kind("Cluster")[0])
    assert not policy.schema_problems(catalog, DEFAULT_KUBE_VERSION)
    assert not policy.schema_problems(cluster, DEFAULT_KUBE_VERSION)
    catalog["spec"]["images"].append(dict(catalog["spec"]["images"][0]))
    assert any("unique" in p for p in policy.schema_problems(catalog, DEFAULT_KUBE_VERSION))
    both = copy.deepcopy(cluster)
    both["spec"]["imageName"] = "ghcr.io/cloudnative-pg/postgresql:17.11"
    assert any("exactly one" in p for p in policy.schema_problems(both, DEFAULT_KUBE_VERSION))
    cluster["spec"]["imageCatalogRef"]["major"] = "17"
    assert any("major" in p for p in policy.schema_problems(cluster, DEFAULT_KUBE_VERSION))
