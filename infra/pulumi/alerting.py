"""Alerting: where the cloud's Alertmanager delivers. One SNS topic per receiver of
infrastructure/prometheus/alertmanager.yaml (pages, tickets), KMS-encrypted, and the IRSA role of
Alertmanager's service account, allowed only to publish to those topics. No secret exists to
leak: Alertmanager signs with the role's temporary credentials (sns_configs with sigv4).

alertmanager.yaml stays the one definition of the route tree and the inhibit rules; the program
renders it for the cloud with only the receivers changed (as the local platform renders it with
webhook receivers, infra/local/stacks/monitoring.py), and hands it to kube-prometheus-stack as
program values. Who is told (an e-mail, a pager's HTTPS endpoint) is a subscription to a topic,
made by the on-call team (docs/runbooks/provisioning.md).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import yaml

from infra.facts.paths import INFRASTRUCTURE
from infra.pulumi.aws_common import irsa_role, rotating_key

ALERTMANAGER_FILE = INFRASTRUCTURE / "prometheus" / "alertmanager.yaml"
KUBE_PROMETHEUS_STACK_RELEASE = "kube-prometheus-stack"
# kube-prometheus-stack names Alertmanager's service account <fullname>-alertmanager; its
# values set fullnameOverride: kube-prometheus-stack (values/kube-prometheus-stack/values.yaml).
ALERTMANAGER_SERVICE_ACCOUNT = "kube-prometheus-stack-alertmanager"
IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"
# kube-prometheus-stack's own rules send a Watchdog that always fires (a dead man's switch);
# nothing watches for its absence yet, so it goes nowhere instead of into the tickets.
WATCHDOG_RECEIVER = "null"


@dataclass(frozen=True)
class AlertingArgs:
    cluster_name: str
    region: str
    namespace: str
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer_url: pulumi.Input[str]
    tags: Mapping[str, str]
    protect: bool


def shared_alertmanager_config() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(ALERTMANAGER_FILE.read_text())
    return config


def receiver_names(shared: Mapping[str, Any]) -> list[str]:
    return [str(r["name"]) for r in shared["receivers"]]


def cloud_alertmanager_config(
    shared: Mapping[str, Any], topics: Mapping[str, pulumi.Input[str]], region: str
) -> dict[str, Any]:
    """alertmanager.yaml as the cloud's Alertmanager runs it: each receiver publishes to its SNS
    topic (signed with the pod's IRSA credentials), and Watchdog is dropped. The route tree and
    the inhibit rules are the shared file's."""
    config = copy.deepcopy(dict(shared))
    missing = set(receiver_names(config)) - set(topics)
    if missing:
        raise ValueError(f"{ALERTMANAGER_FILE.name}: receivers without a topic: {sorted(missing)}")
    for receiver in config["receivers"]:
        receiver["sns_configs"] = [
            {
                "topic_arn": topics[receiver["name"]],
                "sigv4": {"region": region},
                "subject": "[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }}",
                "send_resolved": True,
            }
        ]
    config["receivers"].append({"name": WATCHDOG_RECEIVER})
    config["route"]["routes"] = [
        {"matchers": ['alertname="Watchdog"'], "receiver": WATCHDOG_RECEIVER},
        *config["route"].get("routes", []),
    ]
    return config


def publish_policy(topic_arns: Sequence[str], key_arn: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "Publish", "Effect": "Allow", "Action": "sns:Publish", "Resource": list(topic_arns)},
                {
                    # The topics are encrypted with this key: a publisher needs a data key.
                    "Sid": "EncryptMessages",
                    "Effect": "Allow",
                    "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                    "Resource": key_arn,
                },
            ],
        }
    )


class Alerting(pulumi.ComponentResource):
    def __init__(self, name: str, args: AlertingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("its:alerting:Alerting", name, None, opts)
        self._args = args
        tags = dict(args.tags)
        self._shared = shared_alertmanager_config()
        self.key = rotating_key(
            f"{name}-topics",
            description=f"Encrypts the alert topics of {args.cluster_name}",
            tags=tags,
            protect=args.protect,
            parent=self,
        )
        self.topics: dict[str, aws.sns.Topic] = {
            receiver: aws.sns.Topic(
                f"{name}-{receiver}",
                name=f"{args.cluster_name}-alerts-{receiver}",
                kms_master_key_id=self.key.arn,
                tags=tags,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for receiver in receiver_names(self._shared)
        }
        policy = aws.iam.Policy(
            f"{name}-publish",
            description="Alertmanager: publish to the alert topics",
            policy=pulumi.Output.all(self.key.arn, *[t.arn for t in self.topics.values()]).apply(
                lambda arns: publish_policy([str(a) for a in arns[1:]], str(arns[0]))
            ),
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.role = irsa_role(
            f"{name}-alertmanager",
            oidc_provider_arn=args.oidc_provider_arn,
            oidc_issuer_url=args.oidc_issuer_url,
            namespace=args.namespace,
            service_account=ALERTMANAGER_SERVICE_ACCOUNT,
            policy_arns=[policy.arn],
            tags=tags,
            parent=self,
        )
        self.register_outputs({"topics": {r: t.arn for r, t in self.topics.items()}})

    @property
    def release_values(self) -> dict[str, Any]:
        """kube-prometheus-stack's values only the program knows: Alertmanager's configuration
        with the topics, and its service account's IRSA role."""
        topics = {receiver: topic.arn for receiver, topic in self.topics.items()}
        return {
            "alertmanager": {
                "config": cloud_alertmanager_config(self._shared, topics, self._args.region),
                "serviceAccount": {"annotations": {IRSA_ANNOTATION: self.role.arn}},
            }
        }
