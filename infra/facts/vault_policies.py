"""infrastructure/vault/policies/*.hcl, parsed as HCL (python-hcl2) into typed path rules, and
Vault's own matching: which rule governs a path, and whether it grants a capability.

Vault picks the one most specific rule for a path (its documented priority: the later the first
wildcard, the higher; a trailing `*` below none; fewer `+` segments above more; longer above
shorter; then lexicographically larger); capabilities are never merged across rules, and `deny`
wins within the rule that governs."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
from pydantic import BaseModel, ConfigDict

from infra.facts._load import FactFileError
from infra.facts.paths import relative
from infra.facts.vault import POLICIES_DIR

CAPABILITIES = frozenset({"create", "read", "update", "patch", "delete", "list", "sudo", "deny", "subscribe"})


class PathRule(BaseModel):
    model_config = ConfigDict(frozen=True)

    pattern: str
    capabilities: frozenset[str]

    def matches(self, path: str) -> bool:
        return _compiled(self.pattern).fullmatch(path) is not None

    def priority(self) -> tuple[int, bool, int, int, str]:
        wildcards = [i for i, char in enumerate(self.pattern) if char in "*+"]
        first = wildcards[0] if wildcards else len(self.pattern) + 1
        return (
            first,
            not self.pattern.endswith("*"),
            -self.pattern.count("+"),
            len(self.pattern),
            self.pattern,
        )


class VaultPolicy(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    rules: tuple[PathRule, ...]

    def governing(self, path: str) -> PathRule | None:
        candidates = [rule for rule in self.rules if rule.matches(path)]
        return max(candidates, key=PathRule.priority, default=None)

    def allows(self, path: str, capability: str) -> bool:
        rule = self.governing(path)
        return rule is not None and "deny" not in rule.capabilities and capability in rule.capabilities


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    # `+` is one path segment; `*` only ends a pattern, as a prefix glob.
    body = pattern[:-1] if pattern.endswith("*") else pattern
    regex = "[^/]+".join(re.escape(part) for part in body.split("+"))
    return re.compile(regex + (".*" if pattern.endswith("*") else ""))


def _unquoted(value: str) -> str:
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value


def parse_policy(path: Path) -> VaultPolicy:
    """One policy file; FactFileError naming the file (and the block) for anything but path blocks
    with known capabilities."""
    where = relative(path)
    try:
        document: dict[str, Any] = hcl2.loads(path.read_text())
    except Exception as error:  # lark's parse errors carry the line and column
        raise FactFileError(f"{where}: not HCL: {error}") from None
    unknown = sorted(key for key in document if not key.startswith("__") and key != "path")
    if unknown:
        raise FactFileError(f"{where}: only path blocks belong in a policy, found {', '.join(unknown)}")
    rules = []
    for block in document.get("path", []):
        for raw_pattern, body in block.items():
            pattern = _unquoted(raw_pattern)
            capabilities = frozenset(_unquoted(c) for c in body.get("capabilities", []))
            if not capabilities or capabilities - CAPABILITIES:
                raise FactFileError(
                    f'{where}: path "{pattern}": capabilities must be some of {sorted(CAPABILITIES)}, '
                    f"got {sorted(capabilities) or 'none'}"
                )
            if "*" in pattern[:-1]:
                raise FactFileError(f'{where}: path "{pattern}": `*` may only end a pattern')
            rules.append(PathRule(pattern=pattern, capabilities=capabilities))
    if not rules:
        raise FactFileError(f"{where}: no path blocks")
    return VaultPolicy(name=path.stem, rules=tuple(rules))


@cache
def vault_policies(directory: Path = POLICIES_DIR) -> dict[str, VaultPolicy]:
    return {path.stem: parse_policy(path) for path in sorted(directory.glob("*.hcl"))}
