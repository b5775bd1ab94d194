"""What every rendered object must satisfy, as functions returning the problems they find.

Each checker returns a list of human-readable problems (empty: the object passes), so a test
can both assert a clean render and prove that a broken manifest is caught.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import kubernetes_validate
from kubernetes_validate.utils import SchemaNotFoundError, ValidationError, all_versions

from tests.charts.helm import Manifest, schema_version

GPU_RESOURCE = "nvidia.com/gpu"
GPU_TAINT_KEY = "nvidia.com/gpu"
GPU_POOL = {"its.ai/pool": "gpu"}
HELM_TEST_HOOKS = {"test", "test-success"}


def ident(obj: Manifest) -> str:
    meta = obj.get("metadata", {})
    return f"{obj.get('kind')}/{meta.get('namespace', '-')}/{meta.get('name')}"


def pod_spec(obj: Manifest) -> dict[str, Any] | None:
    kind = obj.get("kind")
    spec = obj.get("spec", {})
    if kind == "Pod":
        return dict(spec)
    if kind == "CronJob":
        return dict(spec["jobTemplate"]["spec"]["template"]["spec"])
    if kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}:
        return dict(spec["template"]["spec"])
    return None


def pod_labels(obj: Manifest) -> dict[str, str]:
    if obj.get("kind") == "Pod":
        return dict(obj["metadata"].get("labels", {}))
    if obj.get("kind") == "CronJob":
        return dict(obj["spec"]["jobTemplate"]["spec"]["template"]["metadata"].get("labels", {}))
    return dict(obj["spec"]["template"]["metadata"].get("labels", {}))


def _containers(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for key in ("initContainers", "containers"):
        for container in spec.get(key, []) or []:
            yield key, container


def _is_helm_test(obj: Manifest) -> bool:
    hook = obj.get("metadata", {}).get("annotations", {}).get("helm.sh/hook", "")
    return bool(HELM_TEST_HOOKS & {h.strip() for h in hook.split(",")})


def runs_to_completion(obj: Manifest) -> bool:
    """Jobs, CronJobs and helm test pods finish: liveness/readiness probes do not apply."""
    return obj.get("kind") in {"Job", "CronJob"} or _is_helm_test(obj)


def security_problems(obj: Manifest) -> list[str]:
    """The restricted profile on the pod and every container."""
    spec = pod_spec(obj)
    if spec is None:
        return []
    problems = []
    pod_sc = spec.get("securityContext") or {}
    for key, container in _containers(spec):
        sc = container.get("securityContext") or {}
        where = f"{ident(obj)} {key}/{container.get('name')}"
        if not sc:
            problems.append(f"{where}: no securityContext")
            continue
        if not (sc.get("runAsNonRoot") or pod_sc.get("runAsNonRoot")):
            problems.append(f"{where}: runAsNonRoot is not true")
        if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
            problems.append(f"{where}: runs as UID 0")
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{where}: readOnlyRootFilesystem is not true")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: allowPrivilegeEscalation is not false")
        if sc.get("privileged"):
            problems.append(f"{where}: privileged")
        drops = [d.upper() for d in (sc.get("capabilities") or {}).get("drop", [])]
        if "ALL" not in drops:
            problems.append(f"{where}: capabilities do not drop ALL")
        if (sc.get("capabilities") or {}).get("add"):
            problems.append(f"{where}: adds capabilities")
        seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
        if seccomp not in {"RuntimeDefault", "Localhost"}:
            problems.append(f"{where}: seccompProfile is not RuntimeDefault")
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(flag):
            problems.append(f"{ident(obj)}: {flag}")
    return problems


def resource_problems(obj: Manifest) -> list[str]:
    spec = pod_spec(obj)
    if spec is None:
        return []
    problems = []
    for key, container in _containers(spec):
        resources = container.get("resources") or {}
        where = f"{ident(obj)} {key}/{container.get('name')}"
        for part in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if resource not in (resources.get(part) or {}):
                    problems.append(f"{where}: no {part}.{resource}")
    return problems


def probe_problems(obj: Manifest) -> list[str]:
    spec = pod_spec(obj)
    if spec is None or runs_to_completion(obj):
        return []
    problems = []
    for container in spec.get("containers", []):
        for probe in ("livenessProbe", "readinessProbe"):
            if not container.get(probe):
                problems.append(f"{ident(obj)} containers/{container.get('name')}: no {probe}")
    return problems


def _requests_gpu(spec: dict[str, Any]) -> bool:
    for _, container in _containers(spec):
        resources = container.get("resources") or {}
        if GPU_RESOURCE in (resources.get("requests") or {}) or GPU_RESOURCE in (
            resources.get("limits") or {}
        ):
            return True
    return False


def gpu_problems(obj: Manifest) -> list[str]:
    """GPU request <=> GPU toleration <=> gpu-pool node selector, and the request equals the limit."""
    spec = pod_spec(obj)
    if spec is None:
        return []
    wants = _requests_gpu(spec)
    tolerates = any(t.get("key") == GPU_TAINT_KEY for t in spec.get("tolerations") or [])
    selector = spec.get("nodeSelector") or {}
    on_pool = all(selector.get(k) == v for k, v in GPU_POOL.items())
    problems = []
    if wants and not tolerates:
        problems.append(f"{ident(obj)}: requests a GPU without tolerating the {GPU_TAINT_KEY} taint")
    if tolerates and not wants:
        problems.append(f"{ident(obj)}: tolerates the GPU taint without requesting a GPU")
    if wants and not on_pool:
        problems.append(f"{ident(obj)}: requests a GPU outside the gpu node pool {GPU_POOL}")
    if on_pool and not wants:
        problems.append(f"{ident(obj)}: pinned to the gpu pool without requesting a GPU")
    for _, container in _containers(spec):
        resources = container.get("resources") or {}
        request = (resources.get("requests") or {}).get(GPU_RESOURCE)
        limit = (resources.get("limits") or {}).get(GPU_RESOURCE)
        if (request is not None or limit is not None) and str(request) != str(limit):
            problems.append(f"{ident(obj)}/{container.get('name')}: GPU request {request} != limit {limit}")
    return problems


def _selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    match = selector.get("matchLabels") or {}
    if not match and not selector.get("matchExpressions"):
        return False
    if any(labels.get(k) != v for k, v in match.items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        value = labels.get(expr["key"])
        operator = expr["operator"]
        values = expr.get("values") or []
        if (
            (operator == "In" and value not in values)
            or (operator == "NotIn" and value in values)
            or (operator == "Exists" and value is None)
            or (operator == "DoesNotExist" and value is not None)
        ):
            return False
    return True


def effective_replicas(obj: Manifest, objects: Iterable[Manifest]) -> int:
    """spec.replicas, or the floor an HPA or KEDA ScaledObject keeps the workload at."""
    floors = [int(obj.get("spec", {}).get("replicas", 1))]
    name = obj["metadata"]["name"]
    for other in objects:
        spec = other.get("spec", {})
        target = spec.get("scaleTargetRef", {})
        if target.get("name") != name or target.get("kind", "Deployment") != obj.get("kind"):
            continue
        if other.get("kind") == "HorizontalPodAutoscaler":
            floors.append(int(spec.get("minReplicas", 1)))
        elif other.get("kind") == "ScaledObject":
            floors.append(int(spec.get("minReplicaCount", 0)))
    if "replicas" in obj.get("spec", {}):
        return int(obj["spec"]["replicas"])
    return max(floors[1:] or floors)


def pdb_problems(objects: list[Manifest]) -> list[str]:
    """Every Deployment/StatefulSet that runs more than one replica has a matching PDB."""
    pdbs = [o for o in objects if o.get("kind") == "PodDisruptionBudget"]
    problems = []
    for obj in objects:
        if obj.get("kind") not in {"Deployment", "StatefulSet"}:
            continue
        if effective_replicas(obj, objects) <= 1:
            continue
        labels = pod_labels(obj)
        if not any(_selector_matches(p["spec"].get("selector", {}), labels) for p in pdbs):
            problems.append(
                f"{ident(obj)}: {effective_replicas(obj, objects)} replicas and no PodDisruptionBudget"
            )
    return problems


def workload_problems(objects: list[Manifest]) -> list[str]:
    problems: list[str] = []
    for obj in objects:
        for check in (security_problems, resource_problems, probe_problems, gpu_problems):
            problems += check(obj)
    return problems + pdb_problems(objects)


# ---------------------------------------------------------------------------------------------
# Schemas: built-in kinds against the Kubernetes OpenAPI schemas of the target version (strict:
# unknown fields are errors); custom resources against the structure their operator requires.


def _need(obj: Manifest, *paths: str) -> list[str]:
    problems = []
    for path in paths:
        node: Any = obj
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node in (None, "", [], {}):
            problems.append(f"{ident(obj)}: {path} is required")
    return problems


def _application(obj: Manifest) -> list[str]:
    problems = _need(obj, "spec.project", "spec.destination.server", "spec.destination.namespace")
    spec = obj.get("spec", {})
    sources = spec.get("sources") or ([spec["source"]] if spec.get("source") else [])
    if not sources:
        problems.append(f"{ident(obj)}: spec.source or spec.sources is required")
    if spec.get("source") and spec.get("sources"):
        problems.append(f"{ident(obj)}: both spec.source and spec.sources")
    for source in sources:
        if not source.get("repoURL"):
            problems.append(f"{ident(obj)}: a source has no repoURL")
        kinds = [k for k in ("path", "chart", "ref") if source.get(k)]
        if not kinds:
            problems.append(f"{ident(obj)}: a source has none of path, chart, ref")
        if source.get("chart") and not source.get("targetRevision"):
            problems.append(f"{ident(obj)}: chart {source['chart']} has no pinned targetRevision")
    return problems


def _prometheus_rule(obj: Manifest) -> list[str]:
    problems = _need(obj, "spec.groups")
    for group in obj.get("spec", {}).get("groups") or []:
        if not group.get("name") or not group.get("rules"):
            problems.append(f"{ident(obj)}: a group without name or rules")
        for rule in group.get("rules") or []:
            if not rule.get("expr") or bool(rule.get("alert")) == bool(rule.get("record")):
                problems.append(f"{ident(obj)}: rule {rule} needs expr and one of alert/record")
    return problems


def _service_monitor(obj: Manifest) -> list[str]:
    problems = _need(obj, "spec.selector", "spec.endpoints")
    for endpoint in obj.get("spec", {}).get("endpoints") or []:
        if not (endpoint.get("port") or endpoint.get("targetPort")):
            problems.append(f"{ident(obj)}: an endpoint without port")
    return problems


def _pod_monitor(obj: Manifest) -> list[str]:
    """The operator's PodMonitor: a label selector and endpoints naming a container port."""
    problems = _need(obj, "spec.selector", "spec.podMetricsEndpoints")
    selector = obj.get("spec", {}).get("selector") or {}
    if not (selector.get("matchLabels") or selector.get("matchExpressions")):
        problems.append(f"{ident(obj)}: an empty selector would scrape every pod")
    for endpoint in obj.get("spec", {}).get("podMetricsEndpoints") or []:
        if not endpoint.get("port"):
            problems.append(f"{ident(obj)}: an endpoint without port")
    return problems


def _scaled_object(obj: Manifest) -> list[str]:
    problems = _need(obj, "spec.scaleTargetRef.name", "spec.triggers")
    for trigger in obj.get("spec", {}).get("triggers") or []:
        if not trigger.get("type") or not trigger.get("metadata"):
            problems.append(f"{ident(obj)}: a trigger without type or metadata")
        required = {
            "kafka": ("bootstrapServers", "consumerGroup", "topic", "lagThreshold"),
            "prometheus": ("serverAddress", "query", "threshold"),
        }
        for key in required.get(trigger.get("type", ""), ()):
            if not trigger["metadata"].get(key):
                problems.append(f"{ident(obj)}: {trigger['type']} trigger without {key}")
    return problems


def _kafka_topic(obj: Manifest) -> list[str]:
    problems = []
    if not obj.get("metadata", {}).get("labels", {}).get("strimzi.io/cluster"):
        problems.append(f"{ident(obj)}: no strimzi.io/cluster label")
    problems += _need(obj, "spec.partitions", "spec.replicas")
    for key in ("partitions", "replicas"):
        value = obj.get("spec", {}).get(key)
        if not isinstance(value, int) or value < 1:
            problems.append(f"{ident(obj)}: spec.{key} must be a positive integer")
    for key, value in (obj.get("spec", {}).get("config") or {}).items():
        if not isinstance(value, str | int | bool):
            problems.append(f"{ident(obj)}: config {key} is not a scalar")
    return problems


def _kafka_user(obj: Manifest) -> list[str]:
    problems = []
    if not obj.get("metadata", {}).get("labels", {}).get("strimzi.io/cluster"):
        problems.append(f"{ident(obj)}: no strimzi.io/cluster label")
    problems += _need(obj, "spec.authentication.type", "spec.authorization.type", "spec.authorization.acls")
    spec = obj.get("spec", {})
    if spec.get("authentication", {}).get("type") not in {"scram-sha-512", "tls"}:
        problems.append(f"{ident(obj)}: spec.authentication.type must be scram-sha-512 or tls")
    if spec.get("authorization", {}).get("type") != "simple":
        problems.append(f"{ident(obj)}: spec.authorization.type must be simple")
    for acl in spec.get("authorization", {}).get("acls") or []:
        resource = acl.get("resource", {})
        if resource.get("type") not in {"topic", "group", "cluster", "transactionalId"}:
            problems.append(f"{ident(obj)}: an ACL on an unknown resource type {resource.get('type')}")
        if resource.get("type") != "cluster" and not resource.get("name"):
            problems.append(f"{ident(obj)}: an ACL on a {resource.get('type')} without a name")
        if not acl.get("operations") or not all(isinstance(op, str) for op in acl["operations"]):
            problems.append(f"{ident(obj)}: an ACL without operations")
    return problems


def _trigger_authentication(obj: Manifest) -> list[str]:
    problems = _need(obj, "spec.secretTargetRef")
    for ref in obj.get("spec", {}).get("secretTargetRef") or []:
        if not (ref.get("parameter") and ref.get("name") and ref.get("key")):
            problems.append(f"{ident(obj)}: a secretTargetRef without parameter, name or key")
    return problems


def _cnpg_cluster(obj: Manifest) -> list[str]:
    problems = _need(obj, "spec.instances", "spec.storage.size")
    spec = obj.get("spec", {})
    if not isinstance(spec.get("instances"), int):
        problems.append(f"{ident(obj)}: spec.instances must be an integer")
    # CloudNativePG takes the image from imageName or from a catalog, never both.
    if ("imageName" in spec) == ("imageCatalogRef" in spec):
        problems.append(f"{ident(obj)}: exactly one of spec.imageName and spec.imageCatalogRef")
    ref = spec.get("imageCatalogRef")
    if ref is not None:
        problems += _need(obj, "spec.imageCatalogRef.name")
        if ref.get("apiGroup") != "postgresql.cnpg.io" or ref.get("kind") not in CNPG_CATALOGS:
            problems.append(f"{ident(obj)}: spec.imageCatalogRef must name a CloudNativePG catalog kind")
        if not isinstance(ref.get("major"), int) or isinstance(ref.get("major"), bool):
            problems.append(f"{ident(obj)}: spec.imageCatalogRef.major must be an integer")
    for key in ("postgresUID", "postgresGID"):
        if key in spec and (not isinstance(spec[key], int) or spec[key] < 1):
            problems.append(f"{ident(obj)}: spec.{key} must be a positive integer")
    return problems


CNPG_CATALOGS = ("ImageCatalog", "ClusterImageCatalog")


def _cnpg_image_catalog(obj: Manifest) -> list[str]:
    problems = _need(obj, "spec.images")
    majors = []
    for entry in obj.get("spec", {}).get("images") or []:
        major, image = entry.get("major"), entry.get("image")
        if not isinstance(major, int) or isinstance(major, bool) or major < 10:
            problems.append(f"{ident(obj)}: spec.images[].major must be an integer >= 10")
        if not isinstance(image, str) or ":" not in image or image.endswith(":latest"):
            problems.append(f"{ident(obj)}: spec.images[].image must be a pinned image reference")
        majors.append(major)
    if len(set(majors)) != len(majors):
        problems.append(f"{ident(obj)}: spec.images[].major must be unique")
    return problems


def _cnpg_pooler(obj: Manifest) -> list[str]:
    problems = _need(obj, "spec.cluster.name", "spec.type", "spec.pgbouncer")
    if obj.get("spec", {}).get("type") not in {"rw", "ro", "r"}:
        problems.append(f"{ident(obj)}: spec.type must be rw, ro or r")
    return problems


def _cnpg_scheduled_backup(obj: Manifest) -> list[str]:
    problems = _need(obj, "spec.schedule", "spec.cluster.name")
    fields = str(obj.get("spec", {}).get("schedule", "")).split()
    if len(fields) != 6:
        problems.append(f"{ident(obj)}: spec.schedule needs six cron fields (seconds first)")
    return problems


def _barman_object_store(obj: Manifest) -> list[str]:
    """barmancloud.cnpg.io/v1 ObjectStore (plugin-barman-cloud v0.13.0, plugin-barman-cloud.v1.md)."""
    problems = _need(obj, "spec.configuration.destinationPath", "spec.retentionPolicy")
    spec = obj.get("spec", {})
    if not str(spec.get("configuration", {}).get("destinationPath", "")).startswith("s3://"):
        problems.append(f"{ident(obj)}: spec.configuration.destinationPath must be an s3:// URL")
    if not re.fullmatch(r"[1-9][0-9]*[dwm]", str(spec.get("retentionPolicy", ""))):
        problems.append(f"{ident(obj)}: spec.retentionPolicy must be <n>d, <n>w or <n>m")
    if spec.get("configuration", {}).get("serverName"):
        problems.append(f"{ident(obj)}: spec.configuration.serverName must stay empty (the plugin's rule)")
    return problems


# Traefik Middleware kinds the charts use, and what each needs (Traefik v3 CRD fields).
TRAEFIK_MIDDLEWARES = {"buffering": ("maxRequestBodyBytes",), "rateLimit": ("average", "burst")}


def _traefik_middleware(obj: Manifest) -> list[str]:
    spec = obj.get("spec") or {}
    kinds = [kind for kind in spec if kind in TRAEFIK_MIDDLEWARES]
    if len(spec) != 1 or len(kinds) != 1:
        known = sorted(TRAEFIK_MIDDLEWARES)
        return [f"{ident(obj)}: spec must hold exactly one of {known}, not {sorted(spec)}"]
    (kind,) = kinds
    problems = []
    for key in TRAEFIK_MIDDLEWARES[kind]:
        value = spec[kind].get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            problems.append(f"{ident(obj)}: spec.{kind}.{key} must be a positive integer")
    return problems


def _app_project(obj: Manifest) -> list[str]:
    return _need(obj, "spec.sourceRepos", "spec.destinations")


CUSTOM_RESOURCES: dict[tuple[str, str], Callable[[Manifest], list[str]]] = {
    ("argoproj.io", "Application"): _application,
    ("argoproj.io", "AppProject"): _app_project,
    ("monitoring.coreos.com", "PrometheusRule"): _prometheus_rule,
    ("monitoring.coreos.com", "ServiceMonitor"): _service_monitor,
    ("monitoring.coreos.com", "PodMonitor"): _pod_monitor,
    ("keda.sh", "ScaledObject"): _scaled_object,
    ("keda.sh", "TriggerAuthentication"): _trigger_authentication,
    ("kafka.strimzi.io", "KafkaTopic"): _kafka_topic,
    ("kafka.strimzi.io", "KafkaUser"): _kafka_user,
    ("postgresql.cnpg.io", "Cluster"): _cnpg_cluster,
    ("postgresql.cnpg.io", "ImageCatalog"): _cnpg_image_catalog,
    ("postgresql.cnpg.io", "Pooler"): _cnpg_pooler,
    ("postgresql.cnpg.io", "ScheduledBackup"): _cnpg_scheduled_backup,
    ("barmancloud.cnpg.io", "ObjectStore"): _barman_object_store,
    ("traefik.io", "Middleware"): _traefik_middleware,
}


@functools.cache
def validation_version(kube: str) -> str:
    """The schemas of `kube` when kubernetes-validate ships them, else the nearest it has."""
    wanted = tuple(int(p) for p in schema_version(kube).split(".")[:2])
    shipped: dict[tuple[int, ...], str] = {
        tuple(int(p) for p in v.split(".")[:2]): str(v) for v in all_versions()
    }
    nearest = min(shipped, key=lambda v: (abs(v[0] - wanted[0]) * 100 + abs(v[1] - wanted[1]), v))
    return shipped[nearest]


def schema_problems(obj: Manifest, kube: str) -> list[str]:
    """Built-in kinds: the strict Kubernetes schema of `kube`; custom kinds: their checker."""
    api_version = str(obj.get("apiVersion", ""))
    group = api_version.split("/")[0] if "/" in api_version else ""
    custom = CUSTOM_RESOURCES.get((group, str(obj.get("kind"))))
    if custom is not None:
        return custom(obj)
    if "." in group and not group.endswith(".k8s.io"):
        return [f"{ident(obj)}: no validator for custom resource {api_version} {obj.get('kind')}"]
    try:
        kubernetes_validate.validate(obj, validation_version(kube), strict=True)
    except ValidationError as error:
        path = "/".join(str(p) for p in error.path)
        return [f"{ident(obj)}: {path}: {error.message}"]
    except SchemaNotFoundError as error:
        return [f"{ident(obj)}: no schema: {error}"]
    return []
