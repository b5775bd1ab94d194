"""`python -m loadtests.failover [drill ...]`: run the drills against the running platform
(`make up` first) and print each result; exit 1 if any lost an acknowledged write or took
longer than the RTO."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from infra.local.cli import Platform
from infra.local.config import LocalPlatformConfig
from loadtests.failover.drills import DRILLS

RTO_SECONDS = 15 * 60


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.failover", description=__doc__)
    parser.add_argument(
        "drills", nargs="*", metavar="drill", help=f"any of {', '.join(DRILLS)} (default: all)"
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.drills) - set(DRILLS))
    if unknown:
        parser.error(f"unknown drill(s) {', '.join(unknown)}; known: {', '.join(DRILLS)}")
    platform = Platform(LocalPlatformConfig.load())
    failed = False
    for name in args.drills or list(DRILLS):
        result = DRILLS[name](platform)
        print(result.summary(), flush=True)
        print(json.dumps(asdict(result), default=str), flush=True)
        failed |= result.lost > 0 or result.recovery_seconds > RTO_SECONDS
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
