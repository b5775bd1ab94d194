"""Runs the real Pulumi program of one stack under `pulumi.runtime.set_mocks` and prints, as JSON,
every resource it registered (type, name, inputs, options that matter) and the stack outputs.

One process per stack (the Pulumi runtime is process-global):
    python -m tests.pulumi.mock_program <stack> [--override '<json {key: value}>'] ...
An override replaces a top-level key of Pulumi.<stack>.yaml's config (`its-camera-ai:nodePools`,
...) before the program starts; the result then reports the error the program raised, if any.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
import traceback
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks

from infra.facts.stack_config import PROJECT, engine_config
from infra.pulumi import program

ACCOUNT_ID = "123456789012"
# The hosted zone AWS gives network load balancers in eu-west-1.
MOCK_NLB_ZONE = "Z2IFOLAFXWLO4F"
# When every mocked certificate's validity starts.
MOCK_SIGNED_AT = "2026-12-01T10:30:00Z"
ISSUER = "https://oidc.eks.eu-west-1.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF"


# How the engine's wire format marks a secret value: {SECRET_SIG: SECRET_VALUE_SIG, "value": v}.
SECRET_SIG, SECRET_VALUE_SIG = "4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270"


def unwrap_secrets(value: Any) -> Any:
    """Inputs as the resource receives them: each secret's value, under the key "secret" so a
    test can also check the value was sent as a secret."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == SECRET_VALUE_SIG:
            return {"secret": unwrap_secrets(value["value"])}
        return {key: unwrap_secrets(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(item) for item in value]
    return value


def mock_password(name: str, length: int) -> str:
    """A RandomPassword's result: `length` characters, alphanumeric, different per resource
    (so a test can tell which password went where)."""
    digest = hashlib.sha256(name.encode()).hexdigest()
    return (digest * (length // len(digest) + 1))[:length]


def mock_pem(kind: str, name: str) -> str:
    """A PEM block naming the resource that made it (no cryptography under mocks)."""
    return f"-----BEGIN {kind}-----\n{name}\n-----END {kind}-----\n"


class RecordingMocks(pulumi.runtime.Mocks):
    """Answers like AWS/Kubernetes would, with just enough outputs for the program's applies."""

    def __init__(self) -> None:
        self.resources: list[dict[str, Any]] = []
        # (type, name) -> the options the program gave: the mock engine is handed inputs only.
        self.options: dict[tuple[str, str], dict[str, Any]] = {}

    def record_options(self, args: pulumi.ResourceTransformationArgs) -> None:
        """A stack transformation: sees every resource's options as the program set them."""
        opts = args.opts
        depends_on = opts.depends_on if isinstance(opts.depends_on, list) else [opts.depends_on]
        self.options[(args.type_, args.name)] = {
            "protect": bool(opts.protect),
            "parent": opts.parent._name if opts.parent is not None else None,
            "dependsOn": sorted(d._name for d in depends_on if isinstance(d, pulumi.Resource)),
            "retainOnDelete": bool(opts.retain_on_delete),
        }

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        self.resources.append({"type": args.typ, "name": args.name, "inputs": unwrap_secrets(args.inputs)})
        outputs: dict[str, Any] = dict(args.inputs)
        resource_id = f"{args.name}-id"
        outputs.setdefault("arn", f"arn:aws:mock:eu-west-1:{ACCOUNT_ID}:{args.name}")
        if args.typ == "aws:eks/cluster:Cluster":
            outputs.update(
                endpoint="https://0123456789ABCDEF.gr7.eu-west-1.eks.amazonaws.com",
                certificateAuthority={"data": "LS0tLS1CRUdJTi0tLS0t"},
                identities=[{"oidcs": [{"issuer": ISSUER}]}],
            )
        elif args.typ == "aws:eks/nodeGroup:NodeGroup":
            outputs["resources"] = [{"autoscalingGroups": [{"name": f"eks-{args.name}-asg"}]}]
        elif args.typ == "aws:ec2/launchTemplate:LaunchTemplate":
            outputs["latestVersion"] = 1
        elif args.typ == "aws:iam/role:Role":
            outputs.setdefault("name", args.name)  # auto-named by AWS from the resource's name
            outputs["arn"] = f"arn:aws:iam::{ACCOUNT_ID}:role/{outputs['name']}"
        elif args.typ == "aws:kms/key:Key":
            outputs["keyId"] = resource_id
        elif args.typ == "aws:s3/bucket:Bucket":
            # S3 names a bucket made from a prefix: the prefix and a unique suffix.
            outputs.setdefault("bucket", f"{args.inputs.get('bucketPrefix', '')}{args.name}")
            outputs["arn"] = f"arn:aws:s3:::{outputs['bucket']}"
        elif args.typ == "random:index/randomPassword:RandomPassword":
            outputs["result"] = mock_password(args.name, int(args.inputs["length"]))
        elif args.typ == "tls:index/privateKey:PrivateKey":
            outputs.update(
                privateKeyPem=mock_pem("EC PRIVATE KEY", args.name),
                publicKeyPem=mock_pem("PUBLIC KEY", args.name),
            )
        elif args.typ == "tls:index/certRequest:CertRequest":
            outputs["certRequestPem"] = mock_pem("CERTIFICATE REQUEST", args.name)
        elif args.typ in (
            "tls:index/selfSignedCert:SelfSignedCert",
            "tls:index/locallySignedCert:LocallySignedCert",
        ):
            outputs["certPem"] = mock_pem("CERTIFICATE", args.name)
            # The TLS provider stamps the validity's start when it signs (RFC 3339).
            outputs["validityStartTime"] = MOCK_SIGNED_AT
        elif args.typ == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
            outputs["arn"] = f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/{ISSUER.removeprefix('https://')}"
        return resource_id, outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": ACCOUNT_ID,
                "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/ci",
                "userId": "AIDA",
                "id": ACCOUNT_ID,
            }, []
        if args.token == "aws:index/getPartition:getPartition":
            return {
                "partition": "aws",
                "dnsSuffix": "amazonaws.com",
                "reverseDnsPrefix": "com.amazonaws",
                "id": "aws",
            }, []
        if args.token == "aws:lb/getLoadBalancer:getLoadBalancer":
            # The NLB the load balancer controller made for Traefik's Service, by its name.
            name = args.args["name"]
            return {
                "name": name,
                "arn": f"arn:aws:elasticloadbalancing:eu-west-1:{ACCOUNT_ID}:loadbalancer/net/{name}/0123",
                "dnsName": f"{name}-0123456789.elb.eu-west-1.amazonaws.com",
                "zoneId": MOCK_NLB_ZONE,
                "id": name,
            }, []
        return {}, []


def run_stack(stack: str, overrides: dict[str, Any]) -> dict[str, Any]:
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False)
    config = engine_config(stack)
    for key, value in overrides.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value if isinstance(value, str) else json.dumps(value)
    pulumi.runtime.set_all_config(config)

    exports: dict[str, Any] = {}
    original_export = pulumi.export

    def record_export(name: str, value: Any) -> None:
        exports[name] = value
        original_export(name, value)

    pulumi.export = record_export
    resolved: dict[str, Any] = {}
    secret: list[str] = []
    error: str | None = None

    async def record_secrets() -> None:
        for name, value in exports.items():
            if isinstance(value, pulumi.Output) and await value.is_secret():
                secret.append(name)

    @pulumi_mocks.test  # type: ignore[untyped-decorator]
    def program_run() -> pulumi.Output[Any]:
        pulumi.runtime.register_stack_transformation(lambda a: mocks.record_options(a))
        program.run()
        return pulumi.Output.all(
            pulumi.Output.all(**exports).apply(resolved.update),
            pulumi.Output.from_input(asyncio.ensure_future(record_secrets())),  # type: ignore[arg-type]
        )

    try:
        program_run()
    except Exception as exc:
        error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    finally:
        pulumi.export = original_export
    return {
        "stack": stack,
        "error": error,
        "resources": [
            {**resource, "options": mocks.options.get((resource["type"], resource["name"]))}
            for resource in mocks.resources
        ],
        "exports": resolved,
        "secretExports": sorted(secret),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("stack")
    parser.add_argument("--override", default="{}")
    options = parser.parse_args()
    result = run_stack(options.stack, json.loads(options.override))
    json.dump(result, sys.stdout, default=str)


if __name__ == "__main__":
    main()
