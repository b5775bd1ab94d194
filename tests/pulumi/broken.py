"""Broken stack configurations: each must stop the program before any resource is registered,
with an error naming the file and the key."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from infra.facts.stack_config import read_stack_values


@dataclass(frozen=True)
class BrokenConfig:
    id: str
    stack: str
    override: dict[str, Any] = field(hash=False)
    expected: tuple[str, ...]


def pools_with(stack: str, index: int, **changes: Any) -> list[dict[str, Any]]:
    pools: list[dict[str, Any]] = copy.deepcopy(read_stack_values(stack)["its-camera-ai:nodePools"])
    pools[index].update(changes)
    return pools


BROKEN_CONFIGS = (
    BrokenConfig(
        "missing-key",
        "staging",
        {"its-camera-ai:vpcCidr": None},
        ("Pulumi.staging.yaml", "its-camera-ai:vpcCidr", "required key is missing"),
    ),
    BrokenConfig(
        "bad-value",
        "dev",
        {"its-camera-ai:natGateways": "two"},
        ("Pulumi.dev.yaml", "its-camera-ai:natGateways"),
    ),
    BrokenConfig(
        "gpu-pool-without-taint",
        "prod",
        {"its-camera-ai:nodePools": pools_with("prod", 2, taints=[])},
        ("Pulumi.prod.yaml", "its-camera-ai:nodePools[2].taints", "nvidia.com/gpu=true:NoSchedule"),
    ),
    BrokenConfig(
        "prod-open-to-the-world",
        "prod",
        {"its-camera-ai:publicAccessCidrs": ["10.0.0.0/8", "0.0.0.0/0"]},
        ("Pulumi.prod.yaml", "its-camera-ai:publicAccessCidrs[1]", "0.0.0.0/0"),
    ),
    BrokenConfig(
        "max-below-min",
        "prod",
        {"its-camera-ai:nodePools": pools_with("prod", 2, maxSize=1)},
        ("Pulumi.prod.yaml", "its-camera-ai:nodePools[2].maxSize", "must be >= minSize"),
    ),
    BrokenConfig(
        "zonal-pool-smaller-than-its-zones",
        "dev",
        {"its-camera-ai:nodePools": pools_with("dev", 1, minSize=1, desiredSize=1, maxSize=2)},
        ("Pulumi.dev.yaml", "its-camera-ai:nodePools[1].maxSize", "zonal pool needs maxSize >= 3"),
    ),
    BrokenConfig(
        "prod-backups-not-in-compliance-mode",
        "prod",
        {"its-camera-ai:postgresBackups": {"objectLockMode": "GOVERNANCE"}},
        ("Pulumi.prod.yaml", "its-camera-ai:postgresBackups.objectLockMode", "COMPLIANCE"),
    ),
    BrokenConfig(
        "minor-disagrees-with-the-table",
        "staging",
        {"its-camera-ai:kubernetesVersion": "1.33"},
        (
            "Pulumi.staging.yaml",
            "its-camera-ai:kubernetesVersion",
            "infrastructure/cloud/compatibility.yaml kubernetes.minor",
        ),
    ),
    BrokenConfig(
        "published-api-without-public-dns",
        "prod",
        {"its-camera-ai:publicDns": None},
        ("Pulumi.prod.yaml", "its-camera-ai:publicDns", "api.its-camera-ai.example"),
    ),
    BrokenConfig(
        "api-host-outside-the-hosted-zone",
        "staging",
        {
            "its-camera-ai:publicDns": {
                "hostedZoneId": "Z0OTHERZONE",
                "zoneName": "elsewhere.example",
                "acmeEmail": "platform-team@its-camera-ai.example",
            }
        },
        ("Pulumi.staging.yaml", "its-camera-ai:publicDns.zoneName", "api.staging.its-camera-ai.example"),
    ),
    BrokenConfig(
        "addon-versions-outside-the-table",
        "dev",
        {"its-camera-ai:addonVersions": {"vpc-cni": "v1.19.5-eksbuild.1"}},
        ("Pulumi.dev.yaml", "its-camera-ai:addonVersions", "infrastructure/cloud/compatibility.yaml"),
    ),
)
