"""The public API under mocks, per stack: where it is published (staging, prod), the program
points the host at the ingress NLB it names, and cert-manager may prove the host to Let's
Encrypt through the stack's hosted zone and nothing else; where it is not (dev), none of it."""

from __future__ import annotations

import json

import pytest

from infra.facts.stack_config import load_stack_file
from infra.pulumi.project_charts import project_chart_values
from infra.pulumi.public_endpoint import ACME_SERVERS, api_host
from tests.charts.helm import env_render
from tests.pulumi.stacks import STACKS, StackRun, stack_run
from tests.pulumi.test_secrets import SECRET_TYPE

ISSUER_TYPE = "kubernetes:cert-manager.io/v1:ClusterIssuer"
RECORD_TYPE = "aws:route53/record:Record"
PUBLISHED = [s for s in STACKS if api_host(project_chart_values("its-camera-ai", s)) is not None]


@pytest.fixture(params=PUBLISHED)
def run(request: pytest.FixtureRequest) -> StackRun:
    result = stack_run(request.param)
    assert result.error is None, result.error
    return result


def _release_values(run: StackRun, name: str) -> dict[str, object]:
    (release,) = [r for r in run.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["name"] == name]
    values: dict[str, object] = release.inputs["values"]
    return values


def test_staging_and_prod_publish_the_api_and_dev_does_not() -> None:
    assert PUBLISHED == ["staging", "prod"]
    dev = stack_run("dev")
    assert not dev.of_type(ISSUER_TYPE) and not dev.of_type(RECORD_TYPE)
    assert "apiHost" not in dev.exports


def test_the_host_is_an_alias_of_the_nlb_the_program_named(run: StackRun) -> None:
    dns = load_stack_file(run.stack).public_dns
    assert dns is not None
    host = api_host(project_chart_values("its-camera-ai", run.stack))
    assert host is not None
    (record,) = run.of_type(RECORD_TYPE)
    assert (record.inputs["zoneId"], record.inputs["name"], record.inputs["type"]) == (
        dns.hosted_zone_id,
        host.host,
        "A",
    )
    name = f"its-camera-ai-{run.stack}-ingress"
    traefik = _release_values(run, "traefik")
    assert traefik["service"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-name"] == name  # type: ignore[index]
    # The alias is the NLB found by that name (the mock answers the lookup by name).
    (alias,) = record.inputs["aliases"]
    assert alias["name"] == f"{name}-0123456789.elb.eu-west-1.amazonaws.com"
    assert alias["evaluateTargetHealth"] is True
    assert run.exports["apiHost"] == host.host


def test_the_issuer_is_the_one_the_ingress_names_and_solves_dns01_in_the_zone(run: StackRun) -> None:
    dns = load_stack_file(run.stack).public_dns
    assert dns is not None
    (issuer,) = run.of_type(ISSUER_TYPE)
    (ingress,) = env_render("its-camera-ai", run.stack).of_kind("Ingress")
    assert (
        ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"]
        == issuer.inputs["metadata"]["name"]
    )
    (tls,) = ingress["spec"]["tls"]
    assert tls["secretName"] == "its-api-tls"
    acme = issuer.inputs["spec"]["acme"]
    assert acme["server"] == ACME_SERVERS[dns.acme_server] and acme["email"] == dns.acme_email
    (solver,) = acme["solvers"]
    assert solver["dns01"] == {"route53": {"region": "eu-west-1", "hostedZoneID": dns.hosted_zone_id}}
    # cert-manager's CRDs before the issuer.
    assert issuer.options.depends_on == ("cert-manager",)


def test_cert_manager_may_write_only_the_challenge_of_the_host(run: StackRun) -> None:
    dns = load_stack_file(run.stack).public_dns
    host = api_host(project_chart_values("its-camera-ai", run.stack))
    assert dns is not None and host is not None
    (policy,) = [p for p in run.of_type("aws:iam/policy:Policy") if p.name == "acme-dns-challenge"]
    statements = {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
    write = statements["WriteTheChallenge"]
    assert write["Action"] == "route53:ChangeResourceRecordSets"
    assert write["Resource"] == f"arn:aws:route53:::hostedzone/{dns.hosted_zone_id}"
    assert write["Condition"]["ForAllValues:StringEquals"] == {
        "route53:ChangeResourceRecordSetsNormalizedRecordNames": [f"_acme-challenge.{host.host}"],
        "route53:ChangeResourceRecordSetsRecordTypes": ["TXT"],
    }
    # Nothing else of the account's DNS is writable.
    changes = [s["Sid"] for s in statements.values() if s["Action"] == "route53:ChangeResourceRecordSets"]
    assert changes == ["WriteTheChallenge"]
    account: dict[str, dict[str, str]] = _release_values(run, "cert-manager")["serviceAccount"]  # type: ignore[assignment]
    role_arn = account["annotations"]["eks.amazonaws.com/role-arn"]
    assert role_arn.endswith(":role/acme-dns-cert-manager")


def test_the_certificate_is_cert_manager_s_not_an_operator_s(run: StackRun) -> None:
    """The program makes no its-api-tls (cert-manager does, from the issuer) and nobody by hand."""
    names = {r.inputs["metadata"]["name"] for r in run.of_type(SECRET_TYPE)}
    assert "its-api-tls" not in names
