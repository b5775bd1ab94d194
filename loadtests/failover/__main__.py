"""`python -m loadtests.failover [drill ...]`: run the drills against the running platform
(`make up` first), print each result and the report table, and write reports/failover.json and
reports/failover.md; exit 1 if any drill did not confirm its fault, lost an acknowledged write
or took longer than the RTO.

`--target cluster [--kubeconfig F] [--context C] [component ...]` runs the same faults on a
real cluster instead: each component's pod deleted with no grace period, timed until the
workload is whole again (loadtests/failover/cluster.py). It measures pod restoration only: no
write load runs against a cluster's pods yet, so it prints no write figures."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from infra.local.config import LocalPlatformConfig
from infra.local.platform import Platform
from loadtests.failover.drills import DRILLS
from loadtests.failover.report import markdown, write_report

RTO_SECONDS = 15 * 60
REPORTS = Path("reports")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.failover", description=__doc__)
    parser.add_argument(
        "drills", nargs="*", metavar="drill", help=f"any of {', '.join(DRILLS)} (default: all)"
    )
    parser.add_argument("--target", choices=["local", "cluster"], default="local")
    parser.add_argument("--kubeconfig", help="cluster target: the kubeconfig (default: KUBECONFIG)")
    parser.add_argument("--context", help="cluster target: the kubeconfig context")
    parser.add_argument("--reports", type=Path, default=REPORTS, help="where the report goes")
    args = parser.parse_args(argv)
    if args.target == "cluster":
        return _on_cluster(parser, args.drills, args.kubeconfig, args.context)
    unknown = sorted(set(args.drills) - set(DRILLS))
    if unknown:
        parser.error(f"unknown drill(s) {', '.join(unknown)}; known: {', '.join(DRILLS)}")
    platform = Platform(LocalPlatformConfig.load())
    results = []
    for name in args.drills or list(DRILLS):
        result = DRILLS[name](platform)
        results.append(result)
        print(result.summary(), flush=True)
    as_json, as_md = write_report(results, args.reports)
    print(f"\n{markdown(results)}\nreport: {as_json}, {as_md}", flush=True)
    failed = any(
        not r.passed or r.recovery_seconds is None or r.recovery_seconds > RTO_SECONDS for r in results
    )
    return 1 if failed else 0


def _on_cluster(
    parser: argparse.ArgumentParser, names: list[str], kubeconfig: str | None, context: str | None
) -> int:
    from loadtests.failover.cluster import COMPONENTS, ClusterTarget

    unknown = sorted(set(names) - set(COMPONENTS))
    if unknown:
        parser.error(f"unknown component(s) {', '.join(unknown)}; known: {', '.join(COMPONENTS)}")
    target = ClusterTarget(kubeconfig, context)
    failed = False
    for name in names or [n for n in COMPONENTS if n not in ("api", "worker")]:
        result = target.kill(name)
        print(result.summary(), flush=True)
        print(json.dumps(asdict(result), default=str), flush=True)
        failed |= result.recovery_seconds > RTO_SECONDS
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
