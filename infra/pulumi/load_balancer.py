"""LoadBalancerController: the IAM policy and IRSA role of the AWS Load Balancer Controller, and
the values only the program knows for its release (installed by DataStacks in its wave, before
Traefik, whose Service it turns into an NLB with IP targets).

The policy is the controller's published one, kept verbatim in
infrastructure/cloud/iam/aws-load-balancer-controller.json. Source:
github.com/kubernetes-sigs/aws-load-balancer-controller, tag v3.5.0 (commit
11eb202c97e4ae2ee45e0658c4cde9a4b59f33d4), docs/install/iam_policy.json. The tag is the
application version of the pinned chart (eks-charts aws-load-balancer-controller 3.5.0):
upgrading the chart means fetching the policy of the new tag (tests/pulumi checks they agree).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.facts.stack_config import CLOUD_DIR
from infra.pulumi.aws_common import irsa_role
from infra.pulumi.catalogue import Catalogue

LBC_RELEASE = "aws-load-balancer-controller"
LBC_POLICY_FILE = CLOUD_DIR / "iam" / "aws-load-balancer-controller.json"
LBC_POLICY_VERSION = "v3.5.0"


def lbc_policy() -> str:
    """The controller's published IAM policy, as the file holds it (validated as JSON)."""
    document = json.loads(LBC_POLICY_FILE.read_text())
    if document.get("Version") != "2012-10-17" or not document.get("Statement"):
        raise ValueError(f"{LBC_POLICY_FILE.name}: not an IAM policy document")
    return json.dumps(document)


@dataclass(frozen=True)
class LoadBalancerControllerArgs:
    cluster_name: str
    environment: str
    region: str
    vpc_id: pulumi.Input[str]
    catalogue: Catalogue
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer_url: pulumi.Input[str]
    tags: Mapping[str, str]


class LoadBalancerController(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: LoadBalancerControllerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("its:ingress:LoadBalancerController", name, None, opts)
        release = args.catalogue.release(LBC_RELEASE)
        service_account = str(release.values(args.environment)["serviceAccount"]["name"])
        policy = aws.iam.Policy(
            name,
            description=f"AWS Load Balancer Controller of {args.cluster_name} ({LBC_POLICY_VERSION})",
            policy=lbc_policy(),
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.role = irsa_role(
            name,
            oidc_provider_arn=args.oidc_provider_arn,
            oidc_issuer_url=args.oidc_issuer_url,
            namespace=release.namespace,
            service_account=service_account,
            policy_arns=[policy.arn],
            tags=args.tags,
            parent=self,
        )
        # Only the program knows these; values/aws-load-balancer-controller holds the rest.
        self.release_values: dict[str, Any] = {
            "clusterName": args.cluster_name,
            "region": args.region,
            "vpcId": args.vpc_id,
            "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": self.role.arn}},
        }
        self.register_outputs({"roleArn": self.role.arn})
