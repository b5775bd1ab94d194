"""Network: the VPC over three zones, its subnets, NAT, endpoints and flow logs."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws

from infra.pulumi.aws_common import encrypted_log_group, service_trust_policy

# Interface endpoints nodes need to pull images and get IRSA credentials without a NAT hop.
INTERFACE_ENDPOINTS = ("ecr.api", "ecr.dkr", "sts")


@dataclass(frozen=True)
class NetworkArgs:
    cluster_name: str
    region: str
    vpc_cidr: str
    availability_zones: Sequence[str]
    nat_gateways: Literal["single", "perAz"]
    flow_log_retention_days: int
    tags: Mapping[str, str]
    protect: bool


def subnet_layout(vpc_cidr: str, zones: int) -> tuple[list[str], list[str]]:
    """(private, public) CIDRs: large private subnets for pod IPs (VPC CNI), small public ones."""
    vpc = ipaddress.IPv4Network(vpc_cidr)
    private = list(vpc.subnets(new_prefix=vpc.prefixlen + 2))[:zones]  # /18 of a /16
    public_block = list(vpc.subnets(new_prefix=vpc.prefixlen + 2))[3]
    public = list(public_block.subnets(new_prefix=vpc.prefixlen + 6))[:zones]  # /22 of a /16
    return [str(n) for n in private], [str(n) for n in public]


class Network(pulumi.ComponentResource):
    vpc: aws.ec2.Vpc
    private_subnets: list[aws.ec2.Subnet]
    public_subnets: list[aws.ec2.Subnet]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("its:network:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        cluster_tag = {f"kubernetes.io/cluster/{args.cluster_name}": "shared"}

        self.vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.vpc_cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={**tags, "Name": args.cluster_name},
            opts=child,
        )
        # Nothing may use the default security group (CIS 5.4): manage it with no rule at all.
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg",
            vpc_id=self.vpc.id,
            tags={**tags, "Name": f"{args.cluster_name}-default"},
            opts=child,
        )
        igw = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=self.vpc.id, tags={**tags, "Name": args.cluster_name}, opts=child
        )

        private_cidrs, public_cidrs = subnet_layout(args.vpc_cidr, len(args.availability_zones))
        self.public_subnets = []
        self.private_subnets = []
        for index, zone in enumerate(args.availability_zones):
            self.public_subnets.append(
                aws.ec2.Subnet(
                    f"{name}-public-{zone}",
                    vpc_id=self.vpc.id,
                    cidr_block=public_cidrs[index],
                    availability_zone=zone,
                    # Load balancers get public addresses; instances never do.
                    map_public_ip_on_launch=False,
                    tags={
                        **tags,
                        **cluster_tag,
                        "Name": f"{args.cluster_name}-public-{zone}",
                        "kubernetes.io/role/elb": "1",
                    },
                    opts=child,
                )
            )
            self.private_subnets.append(
                aws.ec2.Subnet(
                    f"{name}-private-{zone}",
                    vpc_id=self.vpc.id,
                    cidr_block=private_cidrs[index],
                    availability_zone=zone,
                    tags={
                        **tags,
                        **cluster_tag,
                        "Name": f"{args.cluster_name}-private-{zone}",
                        "kubernetes.io/role/internal-elb": "1",
                    },
                    opts=child,
                )
            )

        public_rt = aws.ec2.RouteTable(
            f"{name}-public-rt",
            vpc_id=self.vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)],
            tags={**tags, "Name": f"{args.cluster_name}-public"},
            opts=child,
        )
        for zone, subnet in zip(args.availability_zones, self.public_subnets, strict=True):
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{zone}", subnet_id=subnet.id, route_table_id=public_rt.id, opts=child
            )

        # dev saves two NAT gateways and accepts that one zone's outage cuts egress everywhere.
        nat_zones = args.availability_zones if args.nat_gateways == "perAz" else args.availability_zones[:1]
        self.nat_gateways: list[aws.ec2.NatGateway] = []
        for index, zone in enumerate(nat_zones):
            eip = aws.ec2.Eip(
                f"{name}-nat-{zone}",
                domain="vpc",
                tags={**tags, "Name": f"{args.cluster_name}-nat-{zone}"},
                opts=child,
            )
            self.nat_gateways.append(
                aws.ec2.NatGateway(
                    f"{name}-nat-{zone}",
                    allocation_id=eip.id,
                    subnet_id=self.public_subnets[index].id,
                    tags={**tags, "Name": f"{args.cluster_name}-{zone}"},
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
                )
            )

        private_route_tables: list[aws.ec2.RouteTable] = []
        for index, (zone, subnet) in enumerate(
            zip(args.availability_zones, self.private_subnets, strict=True)
        ):
            nat = self.nat_gateways[index if args.nat_gateways == "perAz" else 0]
            table = aws.ec2.RouteTable(
                f"{name}-private-rt-{zone}",
                vpc_id=self.vpc.id,
                routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nat.id)],
                tags={**tags, "Name": f"{args.cluster_name}-private-{zone}"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{zone}", subnet_id=subnet.id, route_table_id=table.id, opts=child
            )
            private_route_tables.append(table)

        self.endpoints = self._endpoints(name, args, tags, private_route_tables)
        self.flow_log = self._flow_logs(name, args, tags)

        self.register_outputs(
            {
                "vpcId": self.vpc.id,
                "privateSubnetIds": [s.id for s in self.private_subnets],
                "publicSubnetIds": [s.id for s in self.public_subnets],
            }
        )

    def _endpoints(
        self, name: str, args: NetworkArgs, tags: dict[str, str], route_tables: list[aws.ec2.RouteTable]
    ) -> list[aws.ec2.VpcEndpoint]:
        child = pulumi.ResourceOptions(parent=self)
        endpoint_sg = aws.ec2.SecurityGroup(
            f"{name}-endpoints",
            vpc_id=self.vpc.id,
            description="HTTPS from inside the VPC to the interface endpoints",
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    protocol="tcp",
                    from_port=443,
                    to_port=443,
                    cidr_blocks=[args.vpc_cidr],
                    description="HTTPS from the VPC",
                )
            ],
            tags={**tags, "Name": f"{args.cluster_name}-endpoints"},
            opts=child,
        )
        endpoints = [
            aws.ec2.VpcEndpoint(
                f"{name}-s3",
                vpc_id=self.vpc.id,
                service_name=f"com.amazonaws.{args.region}.s3",
                vpc_endpoint_type="Gateway",
                route_table_ids=[t.id for t in route_tables],
                tags={**tags, "Name": f"{args.cluster_name}-s3"},
                opts=child,
            )
        ]
        for service in INTERFACE_ENDPOINTS:
            endpoints.append(
                aws.ec2.VpcEndpoint(
                    f"{name}-{service.replace('.', '-')}",
                    vpc_id=self.vpc.id,
                    service_name=f"com.amazonaws.{args.region}.{service}",
                    vpc_endpoint_type="Interface",
                    private_dns_enabled=True,
                    subnet_ids=[s.id for s in self.private_subnets],
                    security_group_ids=[endpoint_sg.id],
                    tags={**tags, "Name": f"{args.cluster_name}-{service}"},
                    opts=child,
                )
            )
        return endpoints

    def _flow_logs(self, name: str, args: NetworkArgs, tags: dict[str, str]) -> aws.ec2.FlowLog:
        child = pulumi.ResourceOptions(parent=self)
        log_group = encrypted_log_group(
            f"{name}-flow-logs",
            log_name=f"/aws/vpc/{args.cluster_name}/flow-logs",
            retention_days=args.flow_log_retention_days,
            region=args.region,
            description=f"VPC flow logs of {args.cluster_name}",
            tags=tags,
            protect=args.protect,
            parent=self,
        )
        role = aws.iam.Role(
            f"{name}-flow-logs",
            assume_role_policy=service_trust_policy("vpc-flow-logs.amazonaws.com"),
            tags=tags,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-flow-logs",
            role=role.id,
            policy=log_group.arn.apply(
                lambda arn: json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": [
                                    "logs:CreateLogStream",
                                    "logs:PutLogEvents",
                                    "logs:DescribeLogStreams",
                                ],
                                "Resource": [arn, f"{arn}:*"],
                            }
                        ],
                    }
                )
            ),
            opts=child,
        )
        return aws.ec2.FlowLog(
            f"{name}-flow-log",
            vpc_id=self.vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=log_group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=60,
            tags=tags,
            opts=child,
        )
