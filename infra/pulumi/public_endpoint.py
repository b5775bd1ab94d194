"""The public API's name and certificate, with no hand step but the account's domain.

- AcmeDns (before the releases): the IRSA role of cert-manager's service account, allowed only
  to write the ACME challenge's TXT record of the API host in the stack's hosted zone
  (publicDns.hostedZoneId), and the values that give cert-manager the role and the ingress
  load balancer the name this program chooses.
- PublicEndpoint (after them): the ClusterIssuer the app's Ingress names (its-camera-ai values
  api.ingress.clusterIssuer), which gets Let's Encrypt certificates through DNS-01, so
  cert-manager issues and renews `its-api-tls`; and the host's alias record on that load
  balancer, found by its name once the Traefik release is up.

The API host is the its-camera-ai Ingress host of the environment's GitOps values; it must lie
in the hosted zone (publicDns.zoneName), which the account provides.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.facts.stack_config import PublicDnsConfig, StackConfigError
from infra.pulumi.aws_common import irsa_role

CERT_MANAGER_RELEASE = "cert-manager"
TRAEFIK_RELEASE = "traefik"
# The jetstack chart names cert-manager's controller service account after the release.
CERT_MANAGER_SERVICE_ACCOUNT = "cert-manager"
LB_NAME_ANNOTATION = "service.beta.kubernetes.io/aws-load-balancer-name"
IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"
# AWS: a load balancer's name is at most 32 characters of letters, digits and hyphens.
LB_NAME_MAX = 32
ACME_SERVERS = {
    "production": "https://acme-v02.api.letsencrypt.org/directory",
    "staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
}


@dataclass(frozen=True)
class ApiHost:
    """Where the API is published: the Ingress host and the ClusterIssuer its Ingress names."""

    host: str
    cluster_issuer: str


def api_host(app_values: Mapping[str, Any]) -> ApiHost | None:
    ingress = app_values["api"]["ingress"]
    if not ingress.get("enabled"):
        return None
    return ApiHost(str(ingress["host"]), str(ingress["clusterIssuer"]))


def checked_dns(stack: str, dns: PublicDnsConfig | None, host: ApiHost) -> PublicDnsConfig:
    source = f"Pulumi.{stack}.yaml: its-camera-ai:publicDns"
    if dns is None:
        raise StackConfigError(
            f"{source}: required, the API is published at {host.host} "
            "(infrastructure/gitops values its-camera-ai api.ingress)"
        )
    if not host.host.endswith("." + dns.zone_name):
        raise StackConfigError(f"{source}.zoneName: {host.host} is not inside {dns.zone_name}")
    return dns


def load_balancer_name(cluster_name: str) -> str:
    name = f"{cluster_name}-ingress"
    if len(name) > LB_NAME_MAX:
        raise StackConfigError(f"the ingress load balancer's name {name!r} is over {LB_NAME_MAX} characters")
    return name


def challenge_policy(zone_id: str, host: str) -> str:
    """cert-manager's Route53 DNS-01 solver: find the zone, write and read back the one TXT
    record of the host's challenge, follow the change; nothing else of any zone."""
    zone_arn = f"arn:aws:route53:::hostedzone/{zone_id}"
    challenge = f"_acme-challenge.{host}"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "FollowChanges", "Effect": "Allow", "Action": "route53:GetChange",
                 "Resource": "arn:aws:route53:::change/*"},
                {"Sid": "FindZone", "Effect": "Allow", "Action": "route53:ListHostedZonesByName",
                 "Resource": "*"},
                {"Sid": "ReadRecords", "Effect": "Allow", "Action": "route53:ListResourceRecordSets",
                 "Resource": zone_arn},
                {
                    "Sid": "WriteTheChallenge",
                    "Effect": "Allow",
                    "Action": "route53:ChangeResourceRecordSets",
                    "Resource": zone_arn,
                    "Condition": {
                        "ForAllValues:StringEquals": {
                            "route53:ChangeResourceRecordSetsNormalizedRecordNames": [challenge],
                            "route53:ChangeResourceRecordSetsRecordTypes": ["TXT"],
                        }
                    },
                },
            ],
        }
    )  # fmt: skip


@dataclass(frozen=True)
class AcmeDnsArgs:
    cluster_name: str
    namespace: str  # cert-manager's
    dns: PublicDnsConfig
    host: ApiHost
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer_url: pulumi.Input[str]
    tags: Mapping[str, str]


class AcmeDns(pulumi.ComponentResource):
    def __init__(self, name: str, args: AcmeDnsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("its:dns:AcmeDns", name, None, opts)
        self._args = args
        policy = aws.iam.Policy(
            f"{name}-challenge",
            description=f"cert-manager: the DNS-01 challenge record of {args.host.host}",
            policy=challenge_policy(args.dns.hosted_zone_id, args.host.host),
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.role = irsa_role(
            f"{name}-cert-manager",
            oidc_provider_arn=args.oidc_provider_arn,
            oidc_issuer_url=args.oidc_issuer_url,
            namespace=args.namespace,
            service_account=CERT_MANAGER_SERVICE_ACCOUNT,
            policy_arns=[policy.arn],
            tags=dict(args.tags),
            parent=self,
        )
        self.load_balancer = load_balancer_name(args.cluster_name)
        self.register_outputs({"roleArn": self.role.arn, "loadBalancer": self.load_balancer})

    @property
    def release_values(self) -> dict[str, dict[str, Any]]:
        """By release: cert-manager's service account gets the role; Traefik's Service asks the
        load balancer controller for an NLB of the chosen name."""
        return {
            CERT_MANAGER_RELEASE: {"serviceAccount": {"annotations": {IRSA_ANNOTATION: self.role.arn}}},
            TRAEFIK_RELEASE: {"service": {"annotations": {LB_NAME_ANNOTATION: self.load_balancer}}},
        }


@dataclass(frozen=True)
class PublicEndpointArgs:
    region: str
    dns: PublicDnsConfig
    host: ApiHost
    load_balancer: str
    provider: k8s.Provider
    cert_manager: pulumi.Resource
    traefik: pulumi.Resource


class PublicEndpoint(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: PublicEndpointArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("its:dns:PublicEndpoint", name, None, opts)
        self.issuer = k8s.apiextensions.CustomResource(
            f"{name}-issuer",
            api_version="cert-manager.io/v1",
            kind="ClusterIssuer",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=args.host.cluster_issuer),
            spec=cluster_issuer_spec(args.region, args.dns),
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[args.cert_manager]),
        )
        # The NLB exists once the Traefik release is up (its Service is what asks for it).
        balancer = aws.lb.get_load_balancer_output(
            name=args.load_balancer,
            opts=pulumi.InvokeOutputOptions(parent=self, depends_on=[args.traefik]),
        )
        self.record = aws.route53.Record(
            f"{name}-api",
            zone_id=args.dns.hosted_zone_id,
            name=args.host.host,
            type="A",
            aliases=[
                aws.route53.RecordAliasArgs(
                    name=balancer.dns_name, zone_id=balancer.zone_id, evaluate_target_health=True
                )
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"host": args.host.host, "issuer": args.host.cluster_issuer})


def cluster_issuer_spec(region: str, dns: PublicDnsConfig) -> dict[str, Any]:
    return {
        "acme": {
            "email": dns.acme_email,
            "server": ACME_SERVERS[dns.acme_server],
            # The ACME account's key: cert-manager makes and keeps it (its namespace).
            "privateKeySecretRef": {"name": "its-public-acme-account"},
            "solvers": [
                {
                    "selector": {"dnsZones": [dns.zone_name]},
                    # Ambient credentials: the IRSA role of AcmeDns on cert-manager's account.
                    "dns01": {"route53": {"region": region, "hostedZoneID": dns.hosted_zone_id}},
                }
            ],
        }
    }
