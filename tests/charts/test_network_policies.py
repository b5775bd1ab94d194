"""The NetworkPolicies of the namespaces the charts own, rendered by the real Helm for every
environment: each namespace denies ingress by default (rendered by the chart that owns it), and
each flow the platform needs is admitted for exactly the peers and ports it names.

Admission is evaluated the way a CNI enforces NetworkPolicies (a pod selected by no policy
admits everything; a selected pod admits the union of the rules of the policies selecting it)
between pods whose labels come from the renders of this repository's charts or, for the
upstream releases of infrastructure/cloud, from the labels the pinned charts and operators give
their pods, derived from the catalogue's release names and the values' name overrides.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml

from infra.facts.stack_config import load_stack_file
from infra.pulumi.catalogue import load_catalogue
from infra.pulumi.data_stacks import KAFKA_NAME, kafka_spec
from tests.charts import policy
from tests.charts.helm import (
    CHARTS_DIR,
    ENVIRONMENTS,
    Manifest,
    Render,
    Rendered,
    bootstrap_values,
    env_render,
    env_values_file,
    kube_version,
    platform_values_yaml,
    template,
)

# The charts whose NetworkPolicies this file checks: each owns its namespace's default deny.
NAMESPACE_CHARTS = (
    "its-databases",
    "its-kafka-topics",
    "its-minio-buckets",
    "its-vault-config",
    "its-monitoring",
)
NAMESPACE_LABEL = "kubernetes.io/metadata.name"

# Defaults of the pinned upstream charts that infrastructure/cloud/values does not override
# (their values.yaml at the version of upstream-charts.yaml).
REDIS_HA_DEFAULTS = {"redis.port": 6379, "sentinel.port": 26379, "exporter.port": 9121}  # redis-ha 4.33.8
MINIO_DEFAULTS = {"minioAPIPort": 9000, "minioConsolePort": 9001}  # minio 5.4.0
OPENBAO_DEFAULTS = {"injector.port": 8080}  # openbao 0.16.2
KUBE_PROMETHEUS_STACK_DEFAULTS = {"prometheusOperator.tls.internalPort": 10250}  # 76.5.1
# Container ports fixed by the operators: CloudNativePG 1.27 (docs/src/security.md, "Exposed
# Ports"; pkg/management/url: PgBouncer's exporter), the Prometheus operator's pods and Grafana.
CNPG_PORTS = {"postgres": 5432, "status": 8000, "metrics": 9187, "pgbouncer": 5432, "pgbouncer-metrics": 9127}
PROMETHEUS_WEB, ALERTMANAGER_WEB, ALERTMANAGER_MESH, GRAFANA_WEB = 9090, 9093, 9094, 3000


@dataclass(frozen=True)
class Pod:
    """A pod as a NetworkPolicy sees it: its namespace (empty: not a pod, like the API server
    calling a webhook) and its labels."""

    name: str
    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)


API_SERVER = Pod("the Kubernetes API server (control plane, no pod address)", "")


# ---------------------------------------------------------------------------------------------
# Evaluation


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A label selector; the empty selector selects everything."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        value, values = labels.get(expr["key"]), expr.get("values") or []
        ok = {
            "In": value in values,
            "NotIn": value not in values,
            "Exists": value is not None,
            "DoesNotExist": value is None,
        }[expr["operator"]]
        if not ok:
            return False
    return True


def _peer_admits(peer: Mapping[str, Any], policy_namespace: str, source: Pod) -> bool:
    if "ipBlock" in peer:
        # Only peers outside the cluster are named by address (test_addresses_are_named_only_...);
        # an address block admits no pod here (pod addresses are not modelled).
        assert set(peer) == {"ipBlock"}, peer
        return False
    if not source.namespace:
        return False  # not a pod: only a rule without peers admits it
    namespaces = peer.get("namespaceSelector")
    if namespaces is None:
        in_namespace = source.namespace == policy_namespace
    else:
        in_namespace = selects(namespaces, {NAMESPACE_LABEL: source.namespace})
    return in_namespace and selects(peer.get("podSelector") or {}, source.labels)


def _rule_admits(rule: Mapping[str, Any], namespace: str, source: Pod, port: int, protocol: str) -> bool:
    ports = rule.get("ports")
    if ports and not any(p.get("protocol", "TCP") == protocol and p.get("port", port) == port for p in ports):
        return False
    peers = rule.get("from")
    return not peers or any(_peer_admits(peer, namespace, source) for peer in peers)


def selecting(policies: Iterable[Manifest], target: Pod) -> list[Manifest]:
    return [
        p
        for p in policies
        if p["metadata"]["namespace"] == target.namespace
        and "Ingress" in p["spec"].get("policyTypes", ["Ingress"])
        and selects(p["spec"]["podSelector"], target.labels)
    ]


def admits(policies: Iterable[Manifest], target: Pod, source: Pod, port: int, protocol: str = "TCP") -> bool:
    applying = selecting(policies, target)
    if not applying:
        return True
    return any(
        _rule_admits(rule, p["metadata"]["namespace"], source, port, protocol)
        for p in applying
        for rule in p["spec"].get("ingress") or []
    )


def peers_of(policy_: Manifest) -> set[tuple[str | None, tuple[tuple[str, str], ...]]]:
    """(namespace or None for the policy's own, sorted pod labels) of every peer of a policy."""
    out = set()
    for rule in policy_["spec"].get("ingress") or []:
        for peer in rule.get("from") or []:
            namespace = (peer.get("namespaceSelector") or {}).get("matchLabels", {}).get(NAMESPACE_LABEL)
            labels = (peer.get("podSelector") or {}).get("matchLabels") or {}
            out.add((namespace, tuple(sorted(labels.items()))))
    return out


def ports_of(policy_: Manifest) -> set[int]:
    return {p["port"] for rule in policy_["spec"].get("ingress") or [] for p in rule.get("ports") or []}


def test_the_evaluator_follows_the_networkpolicy_semantics() -> None:
    """What the flow tests rely on, on hand-written policies."""
    db = Pod("db", "data", {"app": "db"})
    other = Pod("other", "data", {"app": "other"})
    client = Pod("client", "its", {"app": "client"})
    outsider = Pod("outsider", "default", {"app": "client"})

    def rule(peers: list[dict[str, Any]] | None, port: int | None = 5432) -> dict[str, Any]:
        out: dict[str, Any] = {} if peers is None else {"from": peers}
        if port is not None:
            out["ports"] = [{"port": port, "protocol": "TCP"}]
        return out

    def netpol(selector: dict[str, Any], *rules: dict[str, Any]) -> Manifest:
        spec: dict[str, Any] = {"podSelector": selector, "policyTypes": ["Ingress"]}
        if rules:
            spec["ingress"] = list(rules)
        return {"metadata": {"name": "p", "namespace": "data"}, "spec": spec}

    deny = netpol({})
    in_its = {"namespaceSelector": {"matchLabels": {NAMESPACE_LABEL: "its"}}}
    assert admits([], db, outsider, 1)  # no policy selects the pod: everything is admitted
    assert not admits([deny], db, client, 5432)
    allow_its = netpol({"matchLabels": {"app": "db"}}, rule([in_its]))
    assert admits([deny, allow_its], db, client, 5432)
    assert not admits([deny, allow_its], db, client, 5433)  # another port
    assert not admits([deny, allow_its], db, outsider, 5432)  # same labels, another namespace
    assert not admits([deny, allow_its], other, client, 5432)  # the policy selects db only
    same_namespace = netpol({}, rule([{"podSelector": {"matchLabels": {"app": "other"}}}]))
    assert admits([deny, same_namespace], db, other, 5432)
    assert not admits([deny, same_namespace], db, Pod("x", "its", {"app": "other"}), 5432)
    both = {**in_its, "podSelector": {"matchLabels": {"app": "nope"}}}
    assert not admits([deny, netpol({}, rule([both]))], db, client, 5432)  # namespace AND labels
    anywhere = netpol({}, rule(None, 8080))
    assert admits([deny, anywhere], db, API_SERVER, 8080) and not admits([deny, anywhere], db, API_SERVER, 80)
    assert not admits([deny, allow_its], db, API_SERVER, 5432)  # not a pod: no selector names it
    assert admits([netpol({}, rule([in_its], None))], db, client, 1)  # no ports: every port


# ---------------------------------------------------------------------------------------------
# The pods of the platform


def _namespace(chart: str, env: str) -> str:
    return str(bootstrap_values(env)["charts"][chart]["namespace"])


def _upstream(name: str, env: str) -> tuple[str, str, str, dict[str, Any]]:
    """(release name, chart, namespace, merged values) of a catalogue release."""
    release = load_catalogue().release(name)
    return release.name, release.chart, release.namespace, release.values(env)


def _pod_of(rendered: Rendered, obj: Manifest, name: str) -> Pod:
    return Pod(name, rendered.render.namespace, policy.pod_labels(obj))


@functools.cache
def pods(env: str) -> dict[str, Pod]:
    """Every pod the flows below are about, by a short name."""
    app = env_render("its-camera-ai", env)
    out = {
        "api": _pod_of(app, app.named("Deployment", "its-camera-ai-api"), "api"),
        "worker": _pod_of(app, app.named("Deployment", "its-camera-ai-worker"), "worker"),
        "ingest": _pod_of(app, app.named("Deployment", "its-camera-ai-ingest"), "ingest"),
        "migrate": _pod_of(app, app.of_kind("Job")[0], "migrate"),
        "helm-test": _pod_of(app, app.of_kind("Pod")[0], "helm-test"),
        "stranger-in-its": Pod(
            "an unlabelled pod in the app's namespace", app.render.namespace, {"run": "debug"}
        ),
        "stranger": Pod("a pod in default", "default", {"run": "debug"}),
        "api-server": API_SERVER,
    }
    vault_config = env_render("its-vault-config", env)
    out["vault-config-job"] = _pod_of(vault_config, vault_config.of_kind("Job")[0], "vault-config-job")
    out["vault-snapshot"] = _pod_of(vault_config, vault_config.of_kind("CronJob")[0], "vault-snapshot")
    buckets = env_render("its-minio-buckets", env)
    out["bucket-job"] = _pod_of(buckets, buckets.of_kind("Job")[0], "bucket-job")

    # CloudNativePG 1.27: instances (pkg/specs/pods.go), the Pooler's pods
    # (pkg/specs/pgbouncer/deployments.go, over the Pooler's template labels), the operator's
    # Jobs (pkg/specs/jobs.go); the operator's own pod (cloudnative-pg chart selector labels).
    databases = env_render("its-databases", env)
    data = databases.render.namespace
    (pooler,) = databases.of_kind("Pooler")
    (cluster,) = databases.of_kind("Cluster")
    name = cluster["metadata"]["name"]
    instance = {"cnpg.io/cluster": name, "cnpg.io/podRole": "instance"}
    out["pg-primary"] = Pod(
        "pg-primary", data, {**instance, "cnpg.io/instanceName": f"{name}-1", "role": "primary"}
    )
    out["pg-replica"] = Pod(
        "pg-replica", data, {**instance, "cnpg.io/instanceName": f"{name}-2", "role": "replica"}
    )
    out["pg-join-job"] = Pod("pg-join-job", data, {"cnpg.io/cluster": name, "cnpg.io/jobRole": "join"})
    out["pg-initdb-job"] = Pod("pg-initdb-job", data, {"cnpg.io/cluster": name, "cnpg.io/jobRole": "initdb"})
    out["pg-recovery-job"] = Pod(
        "pg-recovery-job", data, {"cnpg.io/cluster": f"{name}-restore", "cnpg.io/jobRole": "full-recovery"}
    )
    out["pooler"] = Pod(
        "pooler",
        data,
        {
            **pooler["spec"]["template"]["metadata"]["labels"],
            "cnpg.io/poolerName": pooler["metadata"]["name"],
            "cnpg.io/cluster": name,
            "cnpg.io/podRole": "pooler",
        },
    )
    release, chart, namespace, values = _upstream("cloudnative-pg", env)
    out["cnpg-operator"] = Pod(
        "cnpg-operator",
        namespace,
        {
            "app.kubernetes.io/name": values.get("nameOverride") or chart,
            "app.kubernetes.io/instance": release,
        },
    )

    # redis-ha: templates/redis-ha-statefulset.yaml (app=<name>, release=<release>, <fullname>=replica).
    release, chart, namespace, values = _upstream("redis", env)
    fullname = values.get("fullnameOverride") or f"{release}-{chart}"
    out["redis"] = Pod(
        "redis",
        namespace,
        {"app": values.get("nameOverride") or chart, "release": release, fullname: "replica"},
    )
    # minio: templates/statefulset.yaml (app=<name>, release=<release>).
    release, chart, namespace, values = _upstream("minio", env)
    out["minio"] = Pod("minio", namespace, {"app": values.get("nameOverride") or chart, "release": release})
    # openbao: templates/server-statefulset.yaml and injector-deployment.yaml.
    release, chart, namespace, values = _upstream("openbao", env)
    bao = values.get("nameOverride") or chart
    common = {"app.kubernetes.io/instance": release}
    out["openbao"] = Pod(
        "openbao", namespace, {**common, "app.kubernetes.io/name": bao, "component": "server"}
    )
    out["injector"] = Pod(
        "injector",
        namespace,
        {**common, "app.kubernetes.io/name": f"{bao}-agent-injector", "component": "webhook"},
    )
    # kube-prometheus-stack: the operator (templates/prometheus-operator), the pods its operator
    # creates for Prometheus and Alertmanager, Grafana and kube-state-metrics (subcharts).
    release, chart, monitoring, values = _upstream("kube-prometheus-stack", env)
    kps = values.get("nameOverride") or chart
    fullname = values.get("fullnameOverride") or release
    out["prometheus"] = Pod(
        "prometheus",
        monitoring,
        {"app.kubernetes.io/name": "prometheus", "prometheus": f"{fullname}-prometheus"},
    )
    out["alertmanager"] = Pod(
        "alertmanager",
        monitoring,
        {"app.kubernetes.io/name": "alertmanager", "alertmanager": f"{fullname}-alertmanager"},
    )
    out["grafana"] = Pod(
        "grafana", monitoring, {"app.kubernetes.io/name": "grafana", "app.kubernetes.io/instance": release}
    )
    out["kube-state-metrics"] = Pod(
        "kube-state-metrics",
        monitoring,
        {"app.kubernetes.io/name": "kube-state-metrics", "app.kubernetes.io/instance": release},
    )
    out["prometheus-operator"] = Pod(
        "prometheus-operator",
        monitoring,
        {
            "app": f"{kps}-operator",
            "app.kubernetes.io/name": f"{kps}-prometheus-operator",
            "app.kubernetes.io/instance": release,
            "release": release,
        },
    )
    release, chart, namespace, _ = _upstream("traefik", env)
    out["traefik"] = Pod("traefik", namespace, {"app.kubernetes.io/name": chart})
    release, chart, namespace, _ = _upstream("keda", env)
    out["keda-operator"] = Pod("keda-operator", namespace, {"app": "keda-operator"})
    # Strimzi 0.48: the broker pods of the Kafka its-kafka (KafkaCluster's selector labels).
    release, chart, namespace, _ = _upstream("strimzi-kafka-operator", env)
    out["kafka-broker"] = Pod(
        "kafka-broker",
        namespace,
        {
            "strimzi.io/cluster": KAFKA_NAME,
            "strimzi.io/kind": "Kafka",
            "strimzi.io/name": f"{KAFKA_NAME}-kafka",
        },
    )
    return out


def network_policies(*renders: Rendered) -> list[Manifest]:
    return [p for rendered in renders for p in rendered.of_kind("NetworkPolicy")]


def all_policies(env: str) -> list[Manifest]:
    """Every NetworkPolicy the GitOps tree deploys for the environment."""
    charts = [c for c, spec in bootstrap_values(env)["charts"].items() if spec["enabled"]]
    return network_policies(*(env_render(chart, env) for chart in charts))


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_addresses_are_named_only_where_no_label_can_select_the_peer(env: str) -> None:
    """The charts select peers by namespace and labels. An address block appears only for a
    peer outside the cluster: the OpenBao snapshot upload's S3 (HTTPS, whose addresses are not
    fixed), and the ingest's camera networks once an environment lists them (none does here;
    tests/charts/test_ingest.py checks that rule)."""
    named: dict[str, list[Any]] = {}
    for policy_ in all_policies(env):
        spec = policy_["spec"]
        rules = [*spec.get("ingress", []), *spec.get("egress", [])]
        for rule in rules:
            if any("ipBlock" in peer for peer in [*rule.get("from", []), *rule.get("to", [])]):
                named.setdefault(policy_["metadata"]["name"], []).append(rule)
    assert named == {
        "its-vault-config-snapshot-upload": [
            {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": 443, "protocol": "TCP"}]}
        ]
    }


def override(chart: str, env: str, values: str) -> Rendered:
    """The chart as the environment deploys it, with `values` on top."""
    return template(
        Render(
            chart=CHARTS_DIR / chart,
            release=chart,
            namespace=_namespace(chart, env),
            kube=kube_version(env),
            value_files=(env_values_file(chart, env),),
            # The program's `platform` values first (as the app of apps passes them), then these.
            values_yaml=platform_values_yaml(chart, env) + values,
        )
    )


Flow = tuple[str, str, int, bool]  # (target pod, source pod, port, admitted)


def wrong(policies: list[Manifest], env: str, flows: Iterable[Flow]) -> list[str]:
    everyone = pods(env)
    problems = []
    for target, source, port, expected in flows:
        if admits(policies, everyone[target], everyone[source], port) is not expected:
            verdict = "admits" if not expected else "does not admit"
            problems.append(f"{env}: {target} {verdict} {source} on {port}")
    return problems


# ---------------------------------------------------------------------------------------------
# Default deny


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_namespace_of_the_tree_denies_ingress_by_default_from_the_chart_that_owns_it(env: str) -> None:
    charts = {c: spec for c, spec in bootstrap_values(env)["charts"].items() if spec["enabled"]}
    namespaces = [spec["namespace"] for spec in charts.values()]
    assert len(set(namespaces)) == len(namespaces), "a namespace with two owners"
    assert set(NAMESPACE_CHARTS) < set(charts)
    for chart, spec in charts.items():
        for rendered in (env_render(chart, env), env_render(chart, env, ())):  # with and without operators
            policies = rendered.of_kind("NetworkPolicy")
            assert {p["metadata"]["namespace"] for p in policies} == {spec["namespace"]}, chart
            denies = [
                p
                for p in policies
                if p["spec"]["podSelector"] == {}
                and "Ingress" in p["spec"]["policyTypes"]
                and not p["spec"].get("ingress")
            ]
            assert len(denies) == 1, f"{chart}@{env}: {len(denies)} default-deny ingress policies"
            if chart in NAMESPACE_CHARTS:
                assert denies[0]["spec"]["policyTypes"] == ["Ingress"], chart
    # A pod no policy names: the deny holds for it in every namespace of the tree (only the
    # monitoring namespace admits its own pods, Prometheus's scrapes).
    policies = all_policies(env)
    for namespace in namespaces:
        nobody = Pod("unlabelled", namespace, {"run": "debug"})
        assert selecting(policies, nobody), namespace
        for source in ("stranger", "api", "prometheus", "api-server"):
            if pods(env)[source].namespace != namespace:
                assert not admits(policies, nobody, pods(env)[source], 8080), (namespace, source)


@pytest.mark.parametrize("chart", NAMESPACE_CHARTS)
def test_the_switch_turns_the_namespace_policies_off(chart: str) -> None:
    rendered = override(chart, "prod", "networkPolicy:\n  enabled: false\n")
    names = {p["metadata"]["name"] for p in rendered.of_kind("NetworkPolicy")}
    # Only the provisioning Jobs' own policies (they restrict the Job itself) remain, and the
    # snapshot CronJob's egress to S3 (it restricts that CronJob's pods).
    assert names <= {"its-minio-buckets", "its-vault-config", "its-vault-config-snapshot-upload"}, names


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_policies_admitting_a_flow_sync_before_the_deny_and_name_their_peers(env: str) -> None:
    for chart in NAMESPACE_CHARTS:
        for p in env_render(chart, env).of_kind("NetworkPolicy"):
            name, spec = p["metadata"]["name"], p["spec"]
            wave = p["metadata"].get("annotations", {}).get("argocd.argoproj.io/sync-wave")
            rules = spec.get("ingress") or []
            if name == f"{chart}-default-deny":
                assert wave in (None, "-1"), name
                continue
            if name in (chart, f"{chart}-snapshot-upload"):  # a Job's own policy: nothing may reach it
                assert not rules, name
                continue
            assert wave == "-2", f"{name}: sync it before the default deny (wave -1)"
            assert rules, name
            for rule in rules:
                if name == "its-monitoring-same-namespace":  # the namespace's own pods, any port
                    assert rule == {"from": [{"podSelector": {}}]}, name
                    continue
                assert rule.get("ports") and all(isinstance(x["port"], int) for x in rule["ports"]), name
                # A rule without peers admits every source: only the API server's webhooks.
                if not rule.get("from"):
                    assert name in {"its-vault-config-injector-webhook", "its-monitoring-operator-webhook"}, (
                        name
                    )
                    assert len(rule["ports"]) == 1, name


# ---------------------------------------------------------------------------------------------
# data: PostgreSQL, the Pooler, Redis


def _policy(rendered: Rendered, name: str) -> Manifest:
    return rendered.named("NetworkPolicy", name)


def _app_peer(component: str, env: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    app = pods(env)[component]
    keys = ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component")
    return app.namespace, tuple(sorted((k, app.labels[k]) for k in keys))


def _peer(
    pod: Pod, *keys: str, same_namespace: bool = False
) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    return (None if same_namespace else pod.namespace), tuple(sorted((k, pod.labels[k]) for k in keys))


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_data_policies_name_exactly_their_peers_and_ports(env: str) -> None:
    rendered = env_render("its-databases", env)
    everyone = pods(env)
    prometheus = _peer(everyone["prometheus"], "app.kubernetes.io/name")
    instance = (None, (("cnpg.io/cluster", "its-postgres"), ("cnpg.io/podRole", "instance")))
    expected = {
        "its-databases-postgres-from-pooler": (
            {(None, (("cnpg.io/poolerName", "its-postgres-pooler-rw"),))},
            {CNPG_PORTS["postgres"]},
        ),
        "its-databases-postgres-replication": (
            {instance, (None, (("cnpg.io/cluster", "its-postgres"), ("cnpg.io/jobRole", "join")))},
            {CNPG_PORTS["postgres"]},
        ),
        "its-databases-postgres-from-operator": (
            {_peer(everyone["cnpg-operator"], "app.kubernetes.io/name")},
            {CNPG_PORTS["status"], CNPG_PORTS["postgres"]},
        ),
        "its-databases-postgres-metrics": ({prometheus}, {CNPG_PORTS["metrics"]}),
        "its-databases-pooler-from-app": (
            {_app_peer(c, env) for c in ("api", "worker", "ingest", "migrate")},
            {CNPG_PORTS["pgbouncer"]},
        ),
        "its-databases-pooler-metrics": ({prometheus}, {CNPG_PORTS["pgbouncer-metrics"]}),
        "its-databases-redis-from-app": (
            {_app_peer(c, env) for c in ("api", "worker", "ingest")},
            {REDIS_HA_DEFAULTS["redis.port"], REDIS_HA_DEFAULTS["sentinel.port"]},
        ),
        "its-databases-redis-peers": (
            {_peer(everyone["redis"], "app", "release", same_namespace=True)},
            {REDIS_HA_DEFAULTS["redis.port"], REDIS_HA_DEFAULTS["sentinel.port"]},
        ),
        "its-databases-redis-metrics": ({prometheus}, {REDIS_HA_DEFAULTS["exporter.port"]}),
    }
    policies = {p["metadata"]["name"]: p for p in rendered.of_kind("NetworkPolicy")}
    assert set(policies) == {*expected, "its-databases-default-deny"}
    for name, (peers, ports) in expected.items():
        assert peers_of(policies[name]) == peers, name
        assert ports_of(policies[name]) == ports, name


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_data_flows(env: str) -> None:
    flows: list[Flow] = [
        # The Pooler: the app's API, worker and migration Job on 5432; Prometheus on 9127.
        *[("pooler", app, 5432, True) for app in ("api", "worker", "ingest", "migrate")],
        ("pooler", "api", 6432, False),
        ("pooler", "api", 9127, False),
        ("pooler", "helm-test", 5432, False),
        ("pooler", "stranger-in-its", 5432, False),
        ("pooler", "stranger", 5432, False),
        ("pooler", "prometheus", 9127, True),
        ("pooler", "prometheus", 5432, False),
        ("pooler", "grafana", 9127, False),
        ("pooler", "redis", 5432, False),
        # PostgreSQL: the Pooler, each other and the join Job, the operator, Prometheus.
        ("pg-primary", "pooler", 5432, True),
        ("pg-primary", "pooler", 8000, False),
        ("pg-primary", "api", 5432, False),
        ("pg-primary", "migrate", 5432, False),
        ("pg-primary", "pg-replica", 5432, True),
        ("pg-replica", "pg-primary", 5432, True),
        ("pg-primary", "pg-join-job", 5432, True),
        ("pg-primary", "pg-initdb-job", 5432, False),
        ("pg-primary", "pg-replica", 8000, False),
        ("pg-primary", "cnpg-operator", 8000, True),
        ("pg-replica", "cnpg-operator", 5432, True),
        ("pg-primary", "cnpg-operator", 9187, False),
        ("pg-primary", "prometheus", 9187, True),
        ("pg-primary", "prometheus", 5432, False),
        ("pg-primary", "redis", 5432, False),
        ("pg-primary", "stranger", 5432, False),
        # Redis and Sentinel: the API and the worker, each other, Prometheus on the exporter.
        *[("redis", app, port, True) for app in ("api", "worker", "ingest") for port in (6379, 26379)],
        ("redis", "migrate", 6379, False),
        ("redis", "api", 9121, False),
        ("redis", "helm-test", 26379, False),
        ("redis", "redis", 6379, True),
        ("redis", "redis", 26379, True),
        ("redis", "prometheus", 9121, True),
        ("redis", "prometheus", 6379, False),
        ("redis", "pooler", 6379, False),
        ("redis", "stranger", 26379, False),
    ]
    assert not wrong(all_policies(env), env, flows)


def test_a_peer_removed_from_the_values_is_no_longer_admitted() -> None:
    env = "prod"
    clients = _chart_values("its-databases")["pooler"]["clients"]
    without_migrate = [c for c in clients if c["podLabels"]["app.kubernetes.io/component"] != "migrate"]
    changed = override(
        "its-databases",
        env,
        yaml.safe_dump({"networkPolicy": {"pooler": {"clients": without_migrate}, "redis": {"clients": []}}}),
    )
    policies = network_policies(changed)
    flows: list[Flow] = [
        ("pooler", "api", 5432, True),
        ("pooler", "worker", 5432, True),
        ("pooler", "migrate", 5432, False),
        # No client left: the policy is not rendered at all (a rule without peers would admit
        # everyone), so nobody from outside reaches Redis, and the pods still reach each other.
        ("redis", "api", 6379, False),
        ("redis", "stranger", 6379, False),
        ("redis", "redis", 26379, True),
    ]
    assert not wrong(policies, env, flows)
    assert "its-databases-redis-from-app" not in {
        p["metadata"]["name"] for p in changed.of_kind("NetworkPolicy")
    }
    moved = override("its-databases", env, "networkPolicy:\n  monitoring:\n    namespace: observability\n")
    elsewhere = Pod("prometheus elsewhere", "observability", dict(pods(env)["prometheus"].labels))
    metrics = moved.named("NetworkPolicy", "its-databases-postgres-metrics")
    assert not admits([metrics], pods(env)["pg-primary"], pods(env)["prometheus"], 9187)
    assert admits([metrics], pods(env)["pg-primary"], elsewhere, 9187)


# ---------------------------------------------------------------------------------------------
# minio


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_minio_flows(env: str) -> None:
    rendered = env_render("its-minio-buckets", env)
    everyone = pods(env)
    s3 = MINIO_DEFAULTS["minioAPIPort"]
    console = MINIO_DEFAULTS["minioConsolePort"]
    expected_peers = {
        "its-minio-buckets-minio-from-app": {_app_peer(c, env) for c in ("api", "worker", "ingest")},
        "its-minio-buckets-minio-from-bucket-job": {
            _peer(
                everyone["bucket-job"],
                "app.kubernetes.io/name",
                "app.kubernetes.io/instance",
                same_namespace=True,
            )
        },
        "its-minio-buckets-minio-from-backup": {
            (_namespace("its-databases", env), (("cnpg.io/podRole", "instance"),)),
            (_namespace("its-databases", env), (("cnpg.io/jobRole", "full-recovery"),)),
        },
        "its-minio-buckets-minio-peers": {_peer(everyone["minio"], "app", "release", same_namespace=True)},
        "its-minio-buckets-minio-metrics": {_peer(everyone["prometheus"], "app.kubernetes.io/name")},
    }
    for name, peers in expected_peers.items():
        assert peers_of(_policy(rendered, name)) == peers, name
        assert ports_of(_policy(rendered, name)) == {s3}, name
    flows: list[Flow] = [
        *[
            ("minio", source, s3, True)
            for source in ("api", "worker", "ingest", "bucket-job", "minio", "prometheus")
        ],
        *[("minio", source, s3, True) for source in ("pg-primary", "pg-replica", "pg-recovery-job")],
        *[("minio", source, s3, False) for source in ("migrate", "helm-test", "pooler", "pg-join-job")],
        *[("minio", source, s3, False) for source in ("stranger", "stranger-in-its", "grafana", "redis")],
        # The console is admitted from nowhere.
        *[
            ("minio", source, console, False)
            for source in ("api", "minio", "prometheus", "traefik", "stranger")
        ],
        # The Job's own policy: nothing reaches it.
        ("bucket-job", "minio", 8080, False),
    ]
    assert not wrong(all_policies(env), env, flows)
    changed = override("its-minio-buckets", env, "networkPolicy:\n  backup: []\n")
    assert not wrong(
        network_policies(changed), env, [("minio", "pg-primary", s3, False), ("minio", "api", s3, True)]
    )


# ---------------------------------------------------------------------------------------------
# vault


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_vault_flows(env: str) -> None:
    rendered = env_render("its-vault-config", env)
    everyone = pods(env)
    expected = {
        "its-vault-config-openbao-from-app": (
            {_app_peer(c, env) for c in ("api", "worker", "ingest", "migrate")},
            {8200},
        ),
        "its-vault-config-openbao-from-config-job": (
            {
                _peer(
                    everyone["vault-config-job"],
                    "app.kubernetes.io/name",
                    "app.kubernetes.io/instance",
                    same_namespace=True,
                )
            },
            {8200},
        ),
        "its-vault-config-openbao-peers": (
            {
                _peer(
                    everyone["openbao"],
                    "app.kubernetes.io/name",
                    "app.kubernetes.io/instance",
                    "component",
                    same_namespace=True,
                )
            },
            {8200, 8201},
        ),
        "its-vault-config-openbao-metrics": (
            {_peer(everyone["prometheus"], "app.kubernetes.io/name")},
            {8200},
        ),
        "its-vault-config-injector-webhook": (set(), {OPENBAO_DEFAULTS["injector.port"]}),
    }
    for name, (peers, ports) in expected.items():
        assert peers_of(_policy(rendered, name)) == peers, name
        assert ports_of(_policy(rendered, name)) == ports, name
    flows: list[Flow] = [
        *[
            ("openbao", source, 8200, True)
            for source in ("api", "worker", "ingest", "migrate", "vault-config-job", "prometheus")
        ],
        ("openbao", "openbao", 8200, True),
        ("openbao", "openbao", 8201, True),
        *[("openbao", source, 8201, False) for source in ("api", "vault-config-job", "prometheus")],
        *[
            ("openbao", source, 8200, False)
            for source in ("helm-test", "stranger-in-its", "stranger", "injector")
        ],
        ("openbao", "api-server", 8200, False),
        ("openbao", "grafana", 8200, False),
        ("openbao", "redis", 8200, False),
        # The injector's webhook: any source, that port only.
        ("injector", "api-server", 8080, True),
        ("injector", "stranger", 8080, True),
        ("injector", "api-server", 8200, False),
        ("injector", "api", 8200, False),
        ("vault-config-job", "openbao", 8200, False),
        # The raft snapshot CronJob takes its snapshot from the API port; nothing reaches it.
        ("openbao", "vault-snapshot", 8200, True),
        ("openbao", "vault-snapshot", 8201, False),
        ("vault-snapshot", "openbao", 8200, False),
        ("vault-snapshot", "stranger", 443, False),
    ]
    assert not wrong(all_policies(env), env, flows)
    # Its egress: DNS and OpenBao (the Job's own policy selects it too), and HTTPS out (S3, STS).
    snapshot = everyone["vault-snapshot"]
    egress = [
        rule
        for p in rendered.of_kind("NetworkPolicy")
        if "Egress" in p["spec"]["policyTypes"]
        and p["spec"]["podSelector"]["matchLabels"].items() <= snapshot.labels.items()
        for rule in p["spec"].get("egress", [])
    ]
    egress_ports = {(port["port"], port["protocol"]) for rule in egress for port in rule["ports"]}
    assert egress_ports == {(53, "UDP"), (53, "TCP"), (8200, "TCP"), (443, "TCP")}
    changed = override("its-vault-config", env, "networkPolicy:\n  injector:\n    enabled: false\n")
    assert not wrong(network_policies(changed), env, [("injector", "api-server", 8080, False)])


# ---------------------------------------------------------------------------------------------
# monitoring


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_monitoring_flows(env: str) -> None:
    rendered = env_render("its-monitoring", env)
    same_namespace = _policy(rendered, "its-monitoring-same-namespace")
    assert same_namespace["spec"]["podSelector"] == {}
    assert same_namespace["spec"]["ingress"] == [{"from": [{"podSelector": {}}]}]
    webhook = _policy(rendered, "its-monitoring-operator-webhook")
    assert ports_of(webhook) == {KUBE_PROMETHEUS_STACK_DEFAULTS["prometheusOperator.tls.internalPort"]}
    assert peers_of(webhook) == set()
    # None of the UIs is exposed (kube-prometheus-stack's values enable no Ingress).
    assert {p["metadata"]["name"] for p in rendered.of_kind("NetworkPolicy")} == {
        "its-monitoring-default-deny",
        "its-monitoring-same-namespace",
        "its-monitoring-operator-webhook",
    }
    inside = ("prometheus", "alertmanager", "grafana", "kube-state-metrics", "prometheus-operator")
    flows: list[Flow] = [
        ("prometheus", "grafana", PROMETHEUS_WEB, True),
        ("alertmanager", "prometheus", ALERTMANAGER_WEB, True),
        ("alertmanager", "alertmanager", ALERTMANAGER_MESH, True),
        ("alertmanager", "grafana", ALERTMANAGER_WEB, True),
        *[(target, "prometheus", 8080, True) for target in inside],
        ("prometheus-operator", "api-server", 10250, True),
        ("prometheus-operator", "stranger", 10250, True),
        ("prometheus-operator", "api-server", 8080, False),
        ("prometheus", "api-server", 10250, False),
        *[
            ("prometheus", source, PROMETHEUS_WEB, False)
            for source in ("traefik", "api", "stranger", "keda-operator")
        ],
        *[("grafana", source, GRAFANA_WEB, False) for source in ("traefik", "api", "stranger")],
        *[("alertmanager", source, ALERTMANAGER_WEB, False) for source in ("traefik", "api", "stranger")],
        ("kube-state-metrics", "api", 8080, False),
    ]
    assert not wrong(all_policies(env), env, flows)
    exposed = override(
        "its-monitoring", env, "networkPolicy:\n  exposed:\n    grafana:\n      enabled: true\n"
    )
    ingress = exposed.named("NetworkPolicy", "its-monitoring-grafana-from-ingress")
    assert peers_of(ingress) == {(pods(env)["traefik"].namespace, ())} and ports_of(ingress) == {GRAFANA_WEB}
    assert not wrong(
        network_policies(exposed),
        env,
        [
            ("grafana", "traefik", GRAFANA_WEB, True),
            ("grafana", "traefik", 8080, False),
            ("grafana", "stranger", GRAFANA_WEB, False),
            ("prometheus", "traefik", PROMETHEUS_WEB, False),
        ],
    )


# ---------------------------------------------------------------------------------------------
# kafka: the Strimzi cluster operator's own policies


def strimzi_listener_policy(listeners: list[dict[str, Any]], brokers: Pod) -> Manifest:
    """The listener rules of the NetworkPolicy Strimzi 0.48 generates for the brokers
    (KafkaCluster.generateNetworkPolicy: one rule per listener, `from` its networkPolicyPeers,
    every source when it has none)."""
    return {
        "metadata": {"name": f"{KAFKA_NAME}-network-policy-kafka", "namespace": brokers.namespace},
        "spec": {
            "podSelector": {"matchLabels": dict(brokers.labels)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "ports": [{"port": listener["port"], "protocol": "TCP"}],
                    "from": listener.get("networkPolicyPeers", []),
                }
                for listener in listeners
            ],
        },
    }


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_kafka_adds_only_the_deny_because_strimzi_admits_its_own_flows(env: str) -> None:
    """Strimzi generates the NetworkPolicies of the Kafka cluster while
    STRIMZI_NETWORK_POLICY_GENERATION is on (its default; Strimzi docs, "Cluster Operator
    configuration"), and "by default ... a NetworkPolicy resource for every enabled Kafka
    listener, allowing connections from all namespaces" unless the listener sets
    networkPolicyPeers ("Restricting access to listeners with network policies"). The kafka
    chart therefore renders the default deny only; the app (and KEDA's Kafka scaler) reach the
    plain listener through Strimzi's policy."""
    rendered = env_render("its-kafka-topics", env)
    assert [p["metadata"]["name"] for p in rendered.of_kind("NetworkPolicy")] == [
        "its-kafka-topics-default-deny"
    ]
    _, _, namespace, strimzi = _upstream("strimzi-kafka-operator", env)
    assert namespace == rendered.render.namespace
    assert strimzi.get("generateNetworkPolicy", True) is True, (
        "Strimzi's policies are what admit Kafka's flows"
    )
    listeners = kafka_spec(load_stack_file(env).data_stacks.kafka)["kafka"]["listeners"]
    assert all(not listener.get("networkPolicyPeers") for listener in listeners), (
        "a listener restricted by networkPolicyPeers must name the app's pods and KEDA's"
    )
    bootstrap = yaml.safe_load((CHARTS_DIR / "its-camera-ai" / "values.yaml").read_text())["config"]["kafka"]
    port = int(bootstrap["bootstrapServers"].rsplit(":", 1)[1])
    assert port in {listener["port"] for listener in listeners}
    policies = [*all_policies(env), strimzi_listener_policy(listeners, pods(env)["kafka-broker"])]
    flows: list[Flow] = [
        ("kafka-broker", "api", port, True),
        ("kafka-broker", "worker", port, True),
        ("kafka-broker", "ingest", port, True),
        ("kafka-broker", "keda-operator", port, True),
        ("kafka-broker", "api", 9091, False),  # replication: Strimzi admits its own components only
    ]
    assert not wrong(policies, env, flows)
    assert not wrong(all_policies(env), env, [("kafka-broker", "api", port, False)]), "the deny alone"


# ---------------------------------------------------------------------------------------------
# Defaults agree with the upstream releases of infrastructure/cloud


def _chart_values(chart: str) -> dict[str, Any]:
    return dict(yaml.safe_load((CHARTS_DIR / chart / "values.yaml").read_text())["networkPolicy"])


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_defaults_match_the_upstream_releases(env: str) -> None:
    everyone = pods(env)
    prometheus = {
        "namespace": everyone["prometheus"].namespace,
        "podLabels": {"app.kubernetes.io/name": "prometheus"},
    }

    databases = _chart_values("its-databases")
    assert databases["monitoring"] == prometheus
    operator = databases["postgres"]["operator"]
    assert operator["namespace"] == everyone["cnpg-operator"].namespace
    assert operator["podLabels"].items() <= everyone["cnpg-operator"].labels.items()
    _, _, data, redis = _upstream("redis", env)
    assert data == _namespace("its-databases", env), "redis-ha runs in the namespace its-databases owns"
    assert redis["exporter"]["enabled"] is True
    assert databases["redis"]["podLabels"].items() <= everyone["redis"].labels.items()
    assert databases["redis"]["ports"] == [
        redis.get("redis", {}).get("port", REDIS_HA_DEFAULTS["redis.port"]),
        redis.get("sentinel", {}).get("port", REDIS_HA_DEFAULTS["sentinel.port"]),
    ]
    assert databases["redis"]["exporterPort"] == redis["exporter"].get(
        "port", REDIS_HA_DEFAULTS["exporter.port"]
    )
    app_config = yaml.safe_load((CHARTS_DIR / "its-camera-ai" / "values.yaml").read_text())["config"]
    assert {s.rsplit(":", 1)[1] for s in app_config["redis"]["sentinels"]} <= {
        str(p) for p in databases["redis"]["ports"]
    }

    minio_chart = _chart_values("its-minio-buckets")
    _, _, minio_namespace, minio = _upstream("minio", env)
    assert minio_namespace == _namespace("its-minio-buckets", env)
    assert minio_chart["server"]["podLabels"] == dict(everyone["minio"].labels)
    assert minio_chart["server"]["port"] == int(minio.get("minioAPIPort", MINIO_DEFAULTS["minioAPIPort"]))
    assert minio_chart["monitoring"] == prometheus
    assert {peer["namespace"] for peer in minio_chart["backup"]} == {data}

    vault_chart = _chart_values("its-vault-config")
    _, _, vault_namespace, openbao = _upstream("openbao", env)
    assert vault_namespace == _namespace("its-vault-config", env)
    assert vault_chart["server"]["podLabels"] == dict(everyone["openbao"].labels)
    raft = openbao["server"]["ha"]["raft"]["config"]
    assert f'address = "[::]:{vault_chart["server"]["apiPort"]}"' in raft
    assert f'cluster_address = "[::]:{vault_chart["server"]["clusterPort"]}"' in raft
    assert vault_chart["injector"]["enabled"] is openbao["injector"]["enabled"]
    assert vault_chart["injector"]["podLabels"] == dict(everyone["injector"].labels)
    assert vault_chart["injector"]["port"] == openbao["injector"].get(
        "port", OPENBAO_DEFAULTS["injector.port"]
    )
    assert vault_chart["monitoring"] == prometheus

    monitoring_chart = _chart_values("its-monitoring")
    _, _, monitoring_namespace, kps = _upstream("kube-prometheus-stack", env)
    assert monitoring_namespace == _namespace("its-monitoring", env) == prometheus["namespace"]
    assert monitoring_chart["operator"]["podLabels"].items() <= everyone["prometheus-operator"].labels.items()
    assert monitoring_chart["operator"]["webhookPort"] == (
        kps.get("prometheusOperator", {})
        .get("tls", {})
        .get("internalPort", KUBE_PROMETHEUS_STACK_DEFAULTS["prometheusOperator.tls.internalPort"])
    )
    assert monitoring_chart["ingressController"]["namespace"] == everyone["traefik"].namespace
    for ui in ("grafana", "prometheus", "alertmanager"):
        exposed = monitoring_chart["exposed"][ui]
        assert exposed["enabled"] is bool(kps.get(ui, {}).get("ingress", {}).get("enabled", False)), ui
        assert exposed["podLabels"].items() <= everyone[ui].labels.items(), ui

    # The app's pods named as clients are the ones the app chart renders, in its namespace.
    for chart, lists in (
        ("its-databases", (databases["pooler"]["clients"], databases["redis"]["clients"])),
        ("its-minio-buckets", (minio_chart["clients"],)),
        ("its-vault-config", (vault_chart["clients"],)),
    ):
        for clients in lists:
            for client in clients:
                app_pod = everyone[client["podLabels"]["app.kubernetes.io/component"]]
                assert client["namespace"] == app_pod.namespace, chart
                assert client["podLabels"].items() <= app_pod.labels.items(), chart
