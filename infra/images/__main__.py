"""python -m infra.images lock [--check] | packages [BASE ...]

lock      write (or check) tools/images/<image>.lock from requirements.lock
packages  build each base and record its package set in tools/images/<base>.packages
build     build each image (cached by the hash of its inputs); print its size and digest;
          --record ENV writes the digests into ENV's its-camera-ai values (GitOps)
"""

from __future__ import annotations

import argparse
import sys

from infra.facts.images import images_file
from infra.facts.paths import relative
from infra.images import base, build, gitops, locks, podman


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.images", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    lock = commands.add_parser("lock", help="derive each image's lock from requirements.lock")
    lock.add_argument("--check", action="store_true", help="fail if a committed lock is stale")
    packages = commands.add_parser("packages", help="record each base's package set from the mirror")
    packages.add_argument("bases", nargs="*", help="default: every base of tools/images/images.yaml")
    builder = commands.add_parser("build", help="build the images; print reference, size, digest")
    builder.add_argument("images", nargs="*", help="default: every image of tools/images/images.yaml")
    builder.add_argument(
        "--record", metavar="ENV", action="append", default=[], help="write the digests into ENV's values"
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "lock":
            return _lock(check=args.check)
        if args.command == "packages":
            for name in args.bases or images_file().bases:
                print(f"{name}: {base.build(name, record=True)}")
            return 0
        if args.command == "build":
            return _build(args.images or list(images_file().images), args.record)
    except (locks.LockError, base.BaseImageError, podman.PodmanError, gitops.GitOpsValuesError) as error:
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


def _build(images: list[str], environments: list[str]) -> int:
    built = []
    for name in images:
        result = build.build(name)
        print(result.line(), flush=True)
        built.append(result)
    for env in environments:
        path = gitops.values_file(env)
        gitops.record(path, {b.image: (b.reference.rpartition(":")[2], b.digest) for b in built})
        print(f"recorded {', '.join(b.image for b in built)} digests in {relative(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
