"""Alertmanager in the cloud, under mocks per stack: a topic per receiver of alertmanager.yaml,
Alertmanager's IRSA role may only publish there, and the configuration the release gets is the
shared file with only the receivers filled in (and is one amtool accepts)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from infra.facts.stack_config import load_stack_file
from infra.pulumi.alerting import ALERTMANAGER_SERVICE_ACCOUNT, shared_alertmanager_config
from infra.pulumi.catalogue import load_catalogue
from tests.pulumi.stacks import StackRun

ISSUER = "oidc.eks.eu-west-1.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF"


def _alertmanager_values(run: StackRun) -> dict[str, Any]:
    (release,) = [
        r for r in run.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["name"] == "kube-prometheus-stack"
    ]
    values: dict[str, Any] = release.inputs["values"]["alertmanager"]
    return values


def test_one_encrypted_topic_per_receiver(run: StackRun) -> None:
    receivers = [r["name"] for r in shared_alertmanager_config()["receivers"]]
    topics = run.of_type("aws:sns/topic:Topic")
    cluster = load_stack_file(run.stack).cluster_name
    assert sorted(t.inputs["name"] for t in topics) == sorted(f"{cluster}-alerts-{r}" for r in receivers)
    key = next(k for k in run.of_type("aws:kms/key:Key") if k.name == "alerting-topics")
    assert key.inputs["enableKeyRotation"] is True
    assert all(t.inputs["kmsMasterKeyId"].endswith(":alerting-topics") for t in topics)


def test_only_alertmanager_may_publish_and_only_to_its_topics(run: StackRun) -> None:
    role = next(r for r in run.of_type("aws:iam/role:Role") if r.name == "alerting-alertmanager")
    (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    namespace = load_catalogue().release("kube-prometheus-stack").namespace
    assert trust["Condition"]["StringEquals"][f"{ISSUER}:sub"] == (
        f"system:serviceaccount:{namespace}:{ALERTMANAGER_SERVICE_ACCOUNT}"
    )
    policy = next(p for p in run.of_type("aws:iam/policy:Policy") if p.name == "alerting-publish")
    statements = {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
    assert set(statements) == {"Publish", "EncryptMessages"}
    assert statements["Publish"]["Action"] == "sns:Publish"
    assert sorted(statements["Publish"]["Resource"]) == sorted(
        f"arn:aws:mock:eu-west-1:123456789012:alerting-{r['name']}"
        for r in shared_alertmanager_config()["receivers"]
    )
    assert statements["EncryptMessages"]["Resource"].endswith(":alerting-topics")
    annotations = _alertmanager_values(run)["serviceAccount"]["annotations"]
    assert annotations == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/alerting-alertmanager"
    }


def test_pages_and_tickets_reach_their_topics_with_the_shared_routes(run: StackRun, tmp_path: Path) -> None:
    config = _alertmanager_values(run)["config"]
    shared = shared_alertmanager_config()
    # The shared routes and inhibit rules, unchanged but for Watchdog's route in front.
    assert config["inhibit_rules"] == shared["inhibit_rules"]
    watchdog, *routes = config["route"]["routes"]
    assert watchdog == {"matchers": ['alertname="Watchdog"'], "receiver": "null"}
    assert routes == shared["route"]["routes"]
    assert {k: v for k, v in config["route"].items() if k != "routes"} == {
        k: v for k, v in shared["route"].items() if k != "routes"
    }
    # Critical (kube-prometheus-stack's) and page (ours) go to pages; the rest to tickets.
    (page_route,) = routes
    assert page_route["receiver"] == "pages" and page_route["matchers"] == ['severity=~"page|critical"']
    assert config["route"]["receiver"] == "tickets"
    receivers = {r["name"]: r for r in config["receivers"]}
    region = load_stack_file(run.stack).region
    for name in ("pages", "tickets"):
        (sns,) = receivers[name]["sns_configs"]
        assert sns["topic_arn"] == f"arn:aws:mock:eu-west-1:123456789012:alerting-{name}"
        assert sns["sigv4"] == {"region": region} and sns["send_resolved"] is True
    assert receivers["null"] == {"name": "null"}
    # Alertmanager's own checker accepts what the release gets.
    path = tmp_path / "alertmanager.yaml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run(["amtool", "check-config", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_release_gets_the_files_values_and_the_program_s_only(run: StackRun) -> None:
    files = load_catalogue().release("kube-prometheus-stack").values(run.stack)
    assert "config" not in files.get("alertmanager", {})
    (release,) = [
        r for r in run.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["name"] == "kube-prometheus-stack"
    ]
    values = release.inputs["values"]
    assert {k: v for k, v in values.items() if k != "alertmanager"} == {
        k: v for k, v in files.items() if k != "alertmanager"
    }
    assert set(values["alertmanager"]) == set(files["alertmanager"]) | {"config", "serviceAccount"}


def test_the_control_plane_eks_hides_is_neither_scraped_nor_alerted_on(run: StackRun) -> None:
    values = load_catalogue().release("kube-prometheus-stack").values(run.stack)
    for component in ("kubeControllerManager", "kubeScheduler", "kubeEtcd", "kubeProxy"):
        assert values[component]["enabled"] is False, component
    rules = values["defaultRules"]["rules"]
    for group in (
        "etcd",
        "kubeControllerManager",
        "kubeSchedulerAlerting",
        "kubeSchedulerRecording",
        "kubeProxy",
    ):
        assert rules[group] is False, group
