"""python -m infra.images lock [--check]: write (or check) tools/images/<image>.lock."""

from __future__ import annotations

import argparse
import sys

from infra.images import locks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.images", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    lock = commands.add_parser("lock", help="derive each image's lock from requirements.lock")
    lock.add_argument("--check", action="store_true", help="fail if a committed lock is stale")
    args = parser.parse_args(argv)
    try:
        if args.command == "lock":
            return _lock(check=args.check)
    except locks.LockError as error:
        print(f"infra.images: {error}", file=sys.stderr)
        return 1
    return 2


def _lock(*, check: bool) -> int:
    if check:
        stale = locks.stale_locks()
        for path in stale:
            print(f"{path} is stale: run python -m infra.images lock", file=sys.stderr)
        return 1 if stale else 0
    for path in locks.write_locks():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
