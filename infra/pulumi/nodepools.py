"""NodePools: one EKS managed node group per configured pool, their IAM role and launch templates,
the cluster-autoscaler that sizes them (with its IRSA role and the node-template tags that let it
scale a pool from zero) and, when a GPU pool exists, the NVIDIA device plugin that advertises
nvidia.com/gpu."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.facts.stack_config import GPU_RESOURCE, NodePool
from infra.pulumi.aws_common import irsa_role, managed_policy_arn, service_trust_policy
from infra.pulumi.catalogue import Catalogue, helm_release

# The CNI's AmazonEKS_CNI_Policy is not here: the vpc-cni add-on has its own IRSA role
# (cluster.py), so no pod that reaches the node's credentials can rewrite the VPC's interfaces.
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryReadOnly")
# IMDSv2 only, and a hop limit of 1: a pod in its own network namespace is one hop further and
# never gets the node role's credentials (pods use IRSA). Host-network pods still reach it.
IMDS_HOP_LIMIT = 1
# Kubernetes taint effects as the EKS API spells them.
EKS_TAINT_EFFECTS = {
    "NoSchedule": "NO_SCHEDULE",
    "NoExecute": "NO_EXECUTE",
    "PreferNoSchedule": "PREFER_NO_SCHEDULE",
}
AUTOSCALER_TEMPLATE = "k8s.io/cluster-autoscaler/node-template"
DEVICE_PLUGIN_RELEASE = "nvidia-device-plugin"
AUTOSCALER_RELEASE = "cluster-autoscaler"
AUTOSCALER_NAMESPACE = "kube-system"
AUTOSCALER_SERVICE_ACCOUNT = "cluster-autoscaler"


def autoscaler_policy(cluster_name: str) -> str:
    """What cluster-autoscaler may do: read every group, but resize or shrink only the groups
    EKS tagged as this cluster's (k8s.io/cluster-autoscaler/<cluster>=owned)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "Discover",
                    "Effect": "Allow",
                    "Action": [
                        "autoscaling:DescribeAutoScalingGroups",
                        "autoscaling:DescribeAutoScalingInstances",
                        "autoscaling:DescribeLaunchConfigurations",
                        "autoscaling:DescribeScalingActivities",
                        "autoscaling:DescribeTags",
                        "ec2:DescribeImages",
                        "ec2:DescribeInstanceTypes",
                        "ec2:DescribeLaunchTemplateVersions",
                        "ec2:GetInstanceTypesFromInstanceRequirements",
                        "eks:DescribeNodegroup",
                    ],
                    "Resource": "*",
                },
                {
                    "Sid": "ResizeOwnGroups",
                    "Effect": "Allow",
                    "Action": [
                        "autoscaling:SetDesiredCapacity",
                        "autoscaling:TerminateInstanceInAutoScalingGroup",
                    ],
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned"}
                    },
                },
            ],
        }
    )


@dataclass(frozen=True)
class GroupLayout:
    """One EKS node group of a pool: its name, its zones and its (min, max, desired)."""

    name: str
    zones: tuple[str, ...]
    sizes: tuple[int, int, int]


def node_group_layout(pool: NodePool, zones: Sequence[str], region: str) -> list[GroupLayout]:
    """A pool's node groups: one over every zone, or for a zonal pool one per zone, named
    <pool>-<zone letter> (general-a), with the pool's bounds split between them. With
    balance-similar-node-groups the autoscaler keeps the zones' groups the same size."""
    if not pool.zonal:
        return [GroupLayout(pool.name, tuple(zones), (pool.min_size, pool.max_size, pool.desired_size))]
    return [
        GroupLayout(f"{pool.name}-{zone.removeprefix(region)}", (zone,), sizes)
        for zone, sizes in zip(zones, pool.zone_sizes(len(zones)), strict=True)
    ]


@dataclass(frozen=True)
class NodePoolsArgs:
    # The cluster's output name (so node groups wait for the cluster) and the same name as text.
    cluster_name: pulumi.Input[str]
    cluster_display_name: str
    kubernetes_version: str
    environment: str
    # The private subnets, one per zone, in the order of availability_zones.
    private_subnet_ids: Sequence[pulumi.Input[str]]
    availability_zones: Sequence[str]
    pools: Sequence[NodePool]
    partition: pulumi.Input[str]
    tags: Mapping[str, str]
    catalogue: Catalogue
    enabled_releases: Sequence[str]
    provider: k8s.Provider
    region: str
    # IRSA of the cluster-autoscaler.
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer_url: pulumi.Input[str]
    depends_on: Sequence[pulumi.Resource] = ()


def autoscaler_template_tags(pool: NodePool) -> dict[str, str]:
    """ASG tags that let cluster-autoscaler build a node of an empty (min 0) group from thin air."""
    tags = {f"{AUTOSCALER_TEMPLATE}/label/{k}": v for k, v in pool.kubernetes_labels().items()}
    tags.update({f"{AUTOSCALER_TEMPLATE}/taint/{t.key}": f"{t.value}:{t.effect}" for t in pool.taints})
    if pool.gpu:
        tags[f"{AUTOSCALER_TEMPLATE}/resources/{GPU_RESOURCE}"] = str(pool.gpus_per_node())
    return tags


class NodePools(pulumi.ComponentResource):
    def __init__(self, name: str, args: NodePoolsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("its:nodepools:NodePools", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)

        self.node_role = aws.iam.Role(
            f"{name}-node",
            assume_role_policy=service_trust_policy("ec2.amazonaws.com"),
            tags=tags,
            opts=child,
        )
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{policy}",
                role=self.node_role.name,
                policy_arn=managed_policy_arn(args.partition, policy),
                opts=child,
            )
            for policy in NODE_POLICIES
        ]

        # Node groups by their EKS name: the pool's, or <pool>-<zone letter> for a zonal pool.
        self.node_groups: dict[str, aws.eks.NodeGroup] = {}
        for pool in args.pools:
            template = self._launch_template(name, args, pool, tags)
            for group in node_group_layout(pool, args.availability_zones, args.region):
                subnets = [args.private_subnet_ids[args.availability_zones.index(z)] for z in group.zones]
                self.node_groups[group.name] = self._node_group(
                    name, args, pool, group, subnets, template, tags, attachments
                )

        # The releases of this component: the device plugin and the autoscaler.
        self.releases: dict[str, k8s.helm.v3.Release] = {}
        if any(p.gpu for p in args.pools) and DEVICE_PLUGIN_RELEASE in args.enabled_releases:
            self.releases[DEVICE_PLUGIN_RELEASE] = helm_release(
                args.catalogue.release(DEVICE_PLUGIN_RELEASE),
                environment=args.environment,
                provider=args.provider,
                parent=self,
                depends_on=[*args.depends_on, *self.node_groups.values()],
            )
        if AUTOSCALER_RELEASE in args.enabled_releases:
            self.releases[AUTOSCALER_RELEASE] = self._autoscaler(name, args, tags)

        self.register_outputs({"nodeGroups": {n: g.node_group_name for n, g in self.node_groups.items()}})

    def _autoscaler(self, name: str, args: NodePoolsArgs, tags: dict[str, str]) -> k8s.helm.v3.Release:
        policy = aws.iam.Policy(
            f"{name}-autoscaler",
            description=f"cluster-autoscaler of {args.cluster_display_name}",
            policy=autoscaler_policy(args.cluster_display_name),
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        role = irsa_role(
            f"{name}-autoscaler",
            oidc_provider_arn=args.oidc_provider_arn,
            oidc_issuer_url=args.oidc_issuer_url,
            namespace=AUTOSCALER_NAMESPACE,
            service_account=AUTOSCALER_SERVICE_ACCOUNT,
            policy_arns=[policy.arn],
            tags=tags,
            parent=self,
        )
        release = args.catalogue.release(AUTOSCALER_RELEASE)
        return helm_release(
            release,
            environment=args.environment,
            provider=args.provider,
            parent=self,
            depends_on=[*args.depends_on, *self.node_groups.values()],
            # Only the program knows these; the files hold everything else. The image is the
            # autoscaler release of the cluster's minor (infrastructure/cloud/compatibility.yaml).
            program_values={
                "image": {"tag": release.app_version},
                "awsRegion": args.region,
                "autoDiscovery": {"clusterName": args.cluster_display_name},
                "rbac": {"serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": role.arn}}},
            },
        )

    def _launch_template(
        self, name: str, args: NodePoolsArgs, pool: NodePool, tags: dict[str, str]
    ) -> aws.ec2.LaunchTemplate:
        node_tags = {**tags, "Name": f"{args.cluster_display_name}-{pool.name}"}
        return aws.ec2.LaunchTemplate(
            f"{name}-{pool.name}",
            description=f"Nodes of the {pool.name} pool",
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name="/dev/xvda",
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_size=pool.disk_size_gib,
                        volume_type="gp3",
                        encrypted="true",
                        delete_on_termination="true",
                    ),
                )
            ],
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=IMDS_HOP_LIMIT
            ),
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=node_tags)
                for kind in ("instance", "volume", "network-interface")
            ],
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _node_group(
        self,
        name: str,
        args: NodePoolsArgs,
        pool: NodePool,
        group: GroupLayout,
        subnet_ids: list[pulumi.Input[str]],
        template: aws.ec2.LaunchTemplate,
        tags: dict[str, str],
        attachments: list[aws.iam.RolePolicyAttachment],
    ) -> aws.eks.NodeGroup:
        min_size, max_size, desired_size = group.sizes
        node_group = aws.eks.NodeGroup(
            f"{name}-{group.name}",
            cluster_name=args.cluster_name,
            node_group_name=group.name,
            version=args.kubernetes_version,
            node_role_arn=self.node_role.arn,
            subnet_ids=subnet_ids,
            instance_types=list(pool.instance_types),
            capacity_type=pool.capacity_type,
            ami_type=pool.ami_type,
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=min_size, max_size=max_size, desired_size=desired_size
            ),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable_percentage=33),
            labels=pool.kubernetes_labels(),
            taints=[
                aws.eks.NodeGroupTaintArgs(key=t.key, value=t.value, effect=EKS_TAINT_EFFECTS[t.effect])
                for t in pool.taints
            ],
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=template.id, version=template.latest_version.apply(str)
            ),
            tags={**tags, **autoscaler_template_tags(pool)},
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[*attachments, *args.depends_on],
                # The cluster autoscaler owns the current size; Pulumi owns the bounds.
                ignore_changes=["scalingConfig.desiredSize"],
            ),
        )
        # Node group tags stay on the EKS object; the autoscaler reads them from the ASG.
        asg_name = node_group.resources.apply(lambda r: str(r[0]["autoscaling_groups"][0]["name"]))
        for key, value in autoscaler_template_tags(pool).items():
            aws.autoscaling.Tag(
                f"{name}-{group.name}-{key.removeprefix(AUTOSCALER_TEMPLATE + '/').replace('/', '-')}",
                autoscaling_group_name=asg_name,
                tag=aws.autoscaling.TagTagArgs(key=key, value=value, propagate_at_launch=False),
                opts=pulumi.ResourceOptions(parent=node_group),
            )
        return node_group
