"""Nodes as the cluster-autoscaler, EBS volumes and the pods' credentials need them: IMDSv2 with
hop limit 1, the accelerator label on GPU nodes, a node group per zone where EBS-backed pods
run, the CNI and the load balancer controller on their own IRSA roles, Traefik behind an NLB."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.facts.stack_config import (
    ACCELERATOR_LABEL,
    StackConfigError,
    instance_types,
    load_stack_file,
    parse,
    read_stack_values,
)
from infra.pulumi.catalogue import load_catalogue
from infra.pulumi.load_balancer import LBC_POLICY_FILE, LBC_POLICY_VERSION, LBC_RELEASE
from infra.pulumi.nodepools import AUTOSCALER_TEMPLATE, IMDS_HOP_LIMIT
from tests.pulumi.broken import pools_with
from tests.pulumi.stacks import Resource, StackRun

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
RELEASE = "kubernetes:helm.sh/v3:Release"


def _release(run: StackRun, name: str) -> Resource:
    (release,) = [r for r in run.of_type(RELEASE) if r.inputs["name"] == name]
    return release


def test_every_node_group_boots_from_a_template_with_imdsv2_and_hop_limit_1(run: StackRun) -> None:
    templates = {f"{t.name}-id": t for t in run.of_type("aws:ec2/launchTemplate:LaunchTemplate")}
    groups = run.of_type(NODE_GROUP)
    assert groups
    for group in groups:
        template = templates[group.inputs["launchTemplate"]["id"]]
        assert template.inputs["metadataOptions"] == {
            "httpEndpoint": "enabled",
            "httpTokens": "required",
            "httpPutResponseHopLimit": 1,
        }, group.name
    assert IMDS_HOP_LIMIT == 1


def test_gpu_groups_carry_the_accelerator_label_of_their_instance_types(run: StackRun) -> None:
    cfg = load_stack_file(run.stack)
    gpu_pools = [p for p in cfg.node_pools if p.gpu]
    assert gpu_pools
    for pool in gpu_pools:
        models = {instance_types()[t].gpu_model for t in pool.instance_types}
        (model,) = models
        assert model is not None
        expected = model.lower().replace(" ", "-")
        groups = [g for g in run.of_type(NODE_GROUP) if g.inputs["labels"].get("its.ai/pool") == pool.name]
        assert groups and all(g.inputs["labels"][ACCELERATOR_LABEL] == expected for g in groups)
        # And on every ASG of the pool, for the autoscaler's scale from zero.
        for group in groups:
            asg = f"eks-{group.name}-asg"
            tags = {
                t.inputs["tag"]["key"]: t.inputs["tag"]["value"]
                for t in run.of_type("aws:autoscaling/tag:Tag")
                if t.inputs["autoscalingGroupName"] == asg
            }
            assert tags[f"{AUTOSCALER_TEMPLATE}/label/{ACCELERATOR_LABEL}"] == expected
            assert group.inputs["tags"][f"{AUTOSCALER_TEMPLATE}/label/{ACCELERATOR_LABEL}"] == expected
    cpu_groups = [g for g in run.of_type(NODE_GROUP) if "NVIDIA" not in g.inputs["amiType"]]
    assert cpu_groups and not any(ACCELERATOR_LABEL in g.inputs["labels"] for g in cpu_groups)


def test_zonal_pools_have_one_group_per_zone_in_that_zone_s_subnet(run: StackRun) -> None:
    cfg = load_stack_file(run.stack)
    zonal = [p for p in cfg.node_pools if p.zonal]
    assert [p.name for p in zonal] == ["general"]
    subnet_zone = {
        f"{s.name}-id": s.inputs["availabilityZone"]
        for s in run.of_type("aws:ec2/subnet:Subnet")
        if "private" in s.name
    }
    for pool in zonal:
        groups = [g for g in run.of_type(NODE_GROUP) if g.inputs["labels"].get("its.ai/pool") == pool.name]
        zones = [[subnet_zone[s] for s in g.inputs["subnetIds"]] for g in groups]
        assert sorted(z for (z,) in zones) == sorted(cfg.availability_zones)
        for group in groups:
            sizes = group.inputs["scalingConfig"]
            assert sizes["minSize"] <= sizes["desiredSize"] <= sizes["maxSize"] and sizes["maxSize"] >= 1
        # Split as evenly as it goes: the zones' groups differ by one node at most.
        for key in ("minSize", "maxSize", "desiredSize"):
            values = [g.inputs["scalingConfig"][key] for g in groups]
            assert max(values) - min(values) <= 1, key
    for group in run.of_type(NODE_GROUP):
        if group.inputs["labels"]["its.ai/pool"] not in {p.name for p in zonal}:
            assert len(group.inputs["subnetIds"]) == 3


def test_the_autoscaler_balances_the_zones_groups(run: StackRun) -> None:
    values = _release(run, "cluster-autoscaler").inputs["values"]
    # extraArgs become --key=value flags (cluster-autoscaler chart 9.50.1, templates/deployment.yaml).
    assert values["extraArgs"]["balance-similar-node-groups"] is True


def test_the_vpc_cni_uses_its_own_role(run: StackRun) -> None:
    (cni,) = [a for a in run.of_type("aws:eks/addon:Addon") if a.inputs["addonName"] == "vpc-cni"]
    assert cni.inputs["serviceAccountRoleArn"].endswith(":role/cluster-cni-irsa")
    attached = [
        a.inputs["policyArn"]
        for a in run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.inputs["role"] == "cluster-cni-irsa"
    ]
    assert attached == ["arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"]
    node_policies = [
        a.inputs["policyArn"]
        for a in run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.name.startswith("nodepools-node-")
    ]
    assert not any(p.endswith("AmazonEKS_CNI_Policy") for p in node_policies)


def test_the_load_balancer_controller_runs_on_irsa_with_its_published_policy(run: StackRun) -> None:
    cfg = load_stack_file(run.stack)
    entry = load_catalogue().release(LBC_RELEASE)
    release = _release(run, LBC_RELEASE)
    # The policy file is the controller's of the pinned chart's application version.
    assert f"v{entry.version}" == LBC_POLICY_VERSION
    values = release.inputs["values"]
    assert values["clusterName"] == cfg.cluster_name and values["region"] == cfg.region
    assert values["vpcId"] == "network-vpc-id"
    account = values["serviceAccount"]
    assert account["name"] == "aws-load-balancer-controller" and account["create"] is True
    assert account["annotations"]["eks.amazonaws.com/role-arn"].endswith(":role/load-balancer-controller")
    policy = run.named("aws:iam/policy:Policy", "load-balancer-controller")
    assert json.loads(policy.inputs["policy"]) == json.loads(LBC_POLICY_FILE.read_text())
    attached = [
        a.inputs["policyArn"]
        for a in run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.inputs["role"] == "load-balancer-controller"
    ]
    assert attached == [f"arn:aws:mock:eu-west-1:123456789012:{policy.name}"]
    # Installed before Traefik, whose Service it serves.
    assert LBC_RELEASE in _release(run, "traefik").options.depends_on


def test_traefik_is_an_nlb_of_the_load_balancer_controller_with_ip_targets(run: StackRun) -> None:
    service = _release(run, "traefik").inputs["values"]["service"]
    assert service["type"] == "LoadBalancer"
    published = load_stack_file(run.stack).public_dns is not None
    assert service["annotations"] == {
        "service.beta.kubernetes.io/aws-load-balancer-type": "external",
        "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
        "service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing",
        # Where the API is published, the program names the NLB to find it (test_public_endpoint).
        **(
            {"service.beta.kubernetes.io/aws-load-balancer-name": f"its-camera-ai-{run.stack}-ingress"}
            if published
            else {}
        ),
    }


def _parse_withpools_with(stack: str, pools: list[dict[str, Any]]) -> None:
    """The stack file with other node pools, validated as the program validates it."""
    values = {k.partition(":")[2]: v for k, v in read_stack_values(stack).items() if k.startswith("its-")}
    parse({**values, "region": "eu-west-1", "nodePools": pools}, f"Pulumi.{stack}.yaml")


@pytest.mark.parametrize(
    ("changes", "key", "message"),
    [
        (
            {"maxSize": 2, "minSize": 1, "desiredSize": 1},
            "nodePools[1].maxSize",
            "zonal pool needs maxSize >= 3",
        ),
        ({"labels": {ACCELERATOR_LABEL: "x"}}, f"nodePools[1].labels.{ACCELERATOR_LABEL}", "leave it out"),
    ],
)
def test_a_zonal_pool_too_small_to_split_or_a_hand_set_accelerator_label_is_refused(
    changes: dict[str, Any], key: str, message: str
) -> None:
    with pytest.raises(StackConfigError) as error:
        _parse_withpools_with("dev", pools_with("dev", 1, **changes))
    assert f"its-camera-ai:{key}" in str(error.value) and message in str(error.value)


def test_a_gpu_pool_of_two_gpu_models_is_refused() -> None:
    with pytest.raises(StackConfigError) as error:
        _parse_withpools_with("prod", pools_with("prod", 2, instanceTypes=["g5.xlarge", "g4dn.xlarge"]))
    assert "its-camera-ai:nodePools[2].instanceTypes" in str(error.value)
    assert "one GPU model" in str(error.value)
