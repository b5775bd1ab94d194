"""`python -m infra.local up|down|status|smoke|backup|restore`: the local platform's entry point."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from infra.local import backup
from infra.local.config import LocalPlatformConfig, PlatformConfigError
from infra.local.platform import Platform
from infra.local.stacks import Vault


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.local", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start, provision and smoke-check the platform (idempotent)")
    up.add_argument("--no-smoke", action="store_true")
    sub.add_parser("down", help="stop every process of the platform")
    sub.add_parser("status", help="print one JSON object: endpoints and health of each service")
    sub.add_parser("smoke", help="frame in, detection out, through the running platform")
    sub.add_parser("unsealer", help=argparse.SUPPRESS)
    sub.add_parser("backup", help="PostgreSQL base backup to the backups bucket")
    restore = sub.add_parser("restore", help="newest backup into a new data dir, served on --port")
    restore.add_argument("--data-dir", type=Path, required=True)
    restore.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    try:
        platform = Platform(LocalPlatformConfig.load())
    except PlatformConfigError as error:
        print(f"infra.local: {error}", file=sys.stderr)
        return 2
    if args.command == "up":
        platform.up(smoke=not args.no_smoke)
    elif args.command == "down":
        platform.down()
    elif args.command == "status":
        report = platform.status()
        print(json.dumps(report, indent=2, default=str))
        return 0 if all(service["healthy"] for service in report.values()) else 1
    elif args.command == "smoke":
        platform.smoke()
    elif args.command == "unsealer":
        platform.stack(Vault).unseal_forever()
    elif args.command == "backup":
        print(backup.describe(backup.backup(platform.cfg, platform.secrets)))
    elif args.command == "restore":
        print(backup.describe(backup.restore(platform.cfg, platform.secrets, args.data_dir, args.port)))
    return 0
