"""How long the local cluster takes from `cluster-up` (binaries cached) to every Application of
this repository Synced and Healthy, per stack, against the control plane's own start-up in the
same run as the baseline; for dev, also to the app's pods Ready on the real node (with the
local platform of ITS_STATE_DIR / ITS_PORT_BASE running, `make up`; without it there is no real
node and the column says so), and the seconds the node's image import took (cached after the
first run on the same ports).

    python -m loadtests.bench_cluster [--stack dev|prod ...]

Each run uses a fresh temporary state directory and ports from ITS_CLUSTER_PORT_BASE (default
30000), and stops everything after.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from infra.cluster.cli import Cluster
from infra.cluster.config import ClusterConfig
from infra.kernel.ports import port_base_from_env


def run(stack: str, port_base: int) -> dict[str, float]:
    state = Path(tempfile.mkdtemp(prefix=f"its-bench-cluster-{stack}-"))
    cluster = Cluster(ClusterConfig.load(state_dir=state, port_base=port_base, stack=stack))
    try:
        cluster.up()
        return dict(cluster.timings)
    finally:
        cluster.stop()
        shutil.rmtree(state, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", action="append", choices=["dev", "staging", "prod"])
    args = parser.parse_args()
    base = port_base_from_env("ITS_CLUSTER_PORT_BASE", 30000)
    results = {stack: run(stack, base) for stack in args.stack or ["dev", "prod"]}
    print(
        "\nstack   control plane   nodes   argocd   all Applications healthy   ratio to control plane"
        "   images into the real node   app pods Ready on the real node"
    )
    for stack, t in results.items():
        baseline = t["control-plane"]
        imported = t["images-imported"] - t["real-node"] if "images-imported" in t else None
        print(
            f"{stack:<7} {baseline:>11.1f}s {t['nodes']:>6.1f}s {t['argocd']:>7.1f}s "
            f"{t['applications']:>22.1f}s {t['applications'] / baseline:>22.2f} "
            + (f"{imported:>26.1f}s" if imported is not None else f"{'no real node':>27}")
            + (f"{t['app-pods-ready']:>33.1f}s" if "app-pods-ready" in t else f"{'no real node':>34}")
        )


if __name__ == "__main__":
    main()
