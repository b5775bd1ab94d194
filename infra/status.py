"""`python -m infra.status`: one JSON object for everything local: the local platform's services
(infra.local) and the local Kubernetes cluster (infra.cluster). The exit code is the platform's
(the cluster is optional, so it is reported, not required)."""

from __future__ import annotations

import json
import sys

from infra.cluster.config import ClusterConfig
from infra.cluster.health import ClusterHealth
from infra.local.config import LocalPlatformConfig, PlatformConfigError
from infra.local.platform import Platform


def main() -> int:
    try:
        platform = Platform(LocalPlatformConfig.load())
    except PlatformConfigError as error:
        print(f"infra.status: {error}", file=sys.stderr)
        return 2
    report: dict[str, object] = dict(platform.status())
    healthy = all(service["healthy"] for service in platform.status().values())
    report.update(ClusterHealth(ClusterConfig.load()).status())
    print(json.dumps(report, indent=2, default=str))
    return 0 if healthy else 1


if __name__ == "__main__":
    raise SystemExit(main())
