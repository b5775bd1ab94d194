"""The default StorageClass: declared by the program, encrypted with its key, made before any data
stack, and the only class any release or chart of this repository names."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from infra.pulumi.project_charts import project_chart_values, project_charts
from infra.pulumi.storage import DEFAULT_CLASS_ANNOTATION, EBS_CSI_PROVISIONER, STORAGE_CLASS
from tests.pulumi.stacks import StackRun

STORAGE_CLASS_TYPE = "kubernetes:storage.k8s.io/v1:StorageClass"
STORAGE_CLASS_KEYS = frozenset({"storageclass", "storageclassname"})
# What a chart's storageClass key may hold: the program's class, or nothing (the default, ours).
ALLOWED_CLASSES = frozenset({"", STORAGE_CLASS})


def storage_class_values(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (path, value) of a storageClass / storageClassName key anywhere in a values tree
    (and Strimzi's `class` of a persistent-claim volume)."""
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}.{key}" if path else str(key)
            if str(key).lower() in STORAGE_CLASS_KEYS or (
                key == "class" and node.get("type") == "persistent-claim"
            ):
                yield here, value
            yield from storage_class_values(value, here)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from storage_class_values(item, f"{path}[{index}]")


def test_the_walker_finds_a_class_wherever_it_is_named() -> None:
    values = {
        "persistence": {"storageClass": "gp2"},
        "server": {"volumeClaimTemplates": [{"spec": {"storageClassName": "io2"}}]},
        "volumes": [{"type": "persistent-claim", "class": "sc1"}],
    }
    assert [v for _, v in storage_class_values(values)] == ["gp2", "io2", "sc1"]


def test_the_default_class_is_encrypted_gp3_with_the_program_s_key(run: StackRun) -> None:
    (storage_class,) = run.of_type(STORAGE_CLASS_TYPE)
    inputs = storage_class.inputs
    assert inputs["metadata"]["name"] == STORAGE_CLASS
    assert inputs["metadata"]["annotations"] == {DEFAULT_CLASS_ANNOTATION: "true"}
    assert inputs["provisioner"] == EBS_CSI_PROVISIONER
    assert inputs["volumeBindingMode"] == "WaitForFirstConsumer"
    assert inputs["allowVolumeExpansion"] is True
    assert inputs["reclaimPolicy"] == ("Delete" if run.stack == "dev" else "Retain")
    parameters = inputs["parameters"]
    assert (parameters["type"], parameters["encrypted"]) == ("gp3", "true")
    # The key is the program's own, rotating, and the EBS CSI driver's role may use it, and only it.
    key = run.named("aws:kms/key:Key", "storage-ebs")
    assert parameters["kmsKeyId"] == f"arn:aws:mock:eu-west-1:123456789012:{key.name}"
    assert key.inputs["enableKeyRotation"] is True
    grant = run.named("aws:iam/rolePolicy:RolePolicy", "storage-ebs-csi-kms")
    assert grant.inputs["role"] == "addons-ebs-csi"  # the mock's name of the role
    statements = json.loads(grant.inputs["policy"])["Statement"]
    assert all(s["Resource"] == [parameters["kmsKeyId"]] for s in statements)
    assert {"addons-aws-ebs-csi-driver", "storage-ebs-csi-kms"} <= set(storage_class.options.depends_on)


def test_every_data_stack_release_waits_for_the_class(run: StackRun) -> None:
    (storage_class,) = run.of_type(STORAGE_CLASS_TYPE)
    data_releases = [
        r for r in run.of_type("kubernetes:helm.sh/v3:Release") if r.options.parent == "data-stacks"
    ]
    assert data_releases
    late = [r.name for r in data_releases if storage_class.name not in r.options.depends_on]
    assert late == []


def test_no_release_or_chart_names_another_class(run: StackRun) -> None:
    named: list[tuple[str, Any]] = []
    for release in run.of_type("kubernetes:helm.sh/v3:Release"):
        named += [(f"{release.name}: {p}", v) for p, v in storage_class_values(release.inputs["values"])]
    for kind in ("Kafka", "KafkaNodePool"):
        for cr in run.of_type(f"kubernetes:kafka.strimzi.io/v1beta2:{kind}"):
            named += [(f"{kind}: {p}", v) for p, v in storage_class_values(cr.inputs["spec"])]
    for chart in project_charts():
        values = project_chart_values(chart, run.stack)
        named += [(f"{chart}: {p}", v) for p, v in storage_class_values(values)]
    assert [(where, value) for where, value in named if value not in ALLOWED_CLASSES] == []
    # The walk reaches the database cluster's key (the chart's storage.storageClass).
    assert ("its-databases: cluster.storage.storageClass", "") in named
