"""`python -m loadtests.slo [--profile short|full] [--users N] [--reports DIR]`: run the Locust
scenarios headless against the running platform with the SLO thresholds, writing an HTML report
and CSV stats under reports/; the exit code is Locust's: non-zero when an SLO is broken.
`--users` replaces the profile's user count (the full profile's burst triples it), to find the
highest count the machine holds within the SLO."""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from infra.local.config import LocalPlatformConfig
from infra.local.platform import Platform
from infra.local.stacks import App

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Profile:
    users: int
    seconds: int
    frames_per_second_per_camera: float
    burst: bool


# Sized for this 2-core machine with the platform and the CPU worker beside it; a cluster
# profile would raise users and rate. Measured, shared with other builds: the full profile held
# the SLO at 2 users, not at 3 (README, "Performance"); --users runs it at another count.
PROFILES = {
    # 60 s: about 180 requests, so the p95 is decided by nine of them, not by the four or five
    # that one scheduling hiccup of the shared machine makes slow in a 30 s run.
    "short": Profile(users=3, seconds=60, frames_per_second_per_camera=1.0, burst=False),
    "full": Profile(users=12, seconds=180, frames_per_second_per_camera=1.0, burst=True),
}


def locust_command(api_url: str, credentials: Path, profile: Profile, reports: Path) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(ROOT / "loadtests" / "locustfile.py"),
        "--headless",
        "--host",
        api_url,
        "--users",
        str(profile.users),
        "--spawn-rate",
        str(profile.users),
        "--run-time",
        f"{profile.seconds}s",
        "--stop-timeout",
        "5",
        "--csv",
        str(reports / "load"),
        "--html",
        str(reports / "load.html"),
        "--only-summary",
        # The keys stay in the 0600 file: never on a command line (ps shows it to every user).
        f"--credentials={credentials}",
        "--frames-per-second-per-camera",
        str(profile.frames_per_second_per_camera),
    ]
    return command + (["--burst"] if profile.burst else [])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.slo", description=__doc__)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="short")
    parser.add_argument("--reports", type=Path, default=ROOT / "reports")
    parser.add_argument("--users", type=int, help="users instead of the profile's (1..500)")
    args = parser.parse_args(argv)
    profile = PROFILES[args.profile]
    if args.users is not None:
        if not 1 <= args.users <= 500:
            parser.error("--users must be 1..500")
        profile = replace(profile, users=args.users)
    platform = Platform(LocalPlatformConfig.load())
    args.reports.mkdir(parents=True, exist_ok=True)
    api_url = platform.stack(App).api_url
    return subprocess.run(
        locust_command(api_url, platform.secrets.credentials_file, profile, args.reports),
        check=False,
    ).returncode


if __name__ == "__main__":
    raise SystemExit(main())
