"""Wraps the plain rules of rules.py as pulumi_policy policies (all mandatory)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from infra.pulumi.policy.rules import RESOURCE_RULES, STACK_RULES, Props, Rule, StackRule

PACK_NAME = "its-camera-ai-mandatory"


def _resource_validator(rule: Rule) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for message in rule.check(args.resource_type, args.props):
            report_violation(message, None)

    return validate


def _stack_validator(rule: StackRule) -> Callable[[StackValidationArgs, ReportViolation], None]:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources: list[tuple[str, str, Props]] = [(r.resource_type, r.name, r.props) for r in args.resources]
        for message in rule.check(resources):
            report_violation(message, None)

    return validate


def policies() -> list[Any]:
    out: list[Any] = [
        ResourceValidationPolicy(
            name=rule.name,
            description=rule.description,
            validate=_resource_validator(rule),
            enforcement_level=EnforcementLevel.MANDATORY,
        )
        for rule in RESOURCE_RULES
    ]
    out += [
        StackValidationPolicy(
            name=rule.name,
            description=rule.description,
            validate=_stack_validator(rule),
            enforcement_level=EnforcementLevel.MANDATORY,
        )
        for rule in STACK_RULES
    ]
    return out


def build_policy_pack() -> None:
    """Serves the pack to the Pulumi CLI: PolicyPack() blocks, answering the engine's analyzer calls."""
    PolicyPack(name=PACK_NAME, enforcement_level=EnforcementLevel.MANDATORY, policies=policies())
