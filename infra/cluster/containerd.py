"""The real node's container runtime: Debian's containerd with a configuration of its own, the
images it runs imported from podman (never pulled), and what is left of its containers after a
stop cleaned up (only what names this cluster's state directory or root).

Its root (content store, snapshots, metadata) lives in the build cache, one per cluster port
base, so an image is imported once per content: the next `cluster-up` on the same ports finds
it by its reference, whose tag is the hash of the image's inputs (infra/images). Its state
(sockets, task bundles) lives in the cluster's state directory and goes with it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from infra.cluster.config import ClusterConfig
from infra.images import podman
from infra.kernel.layout import CACHE_DIR, HOST

# Debian's containernetworking-plugins: the loopback plugin is the only one the node uses (its
# pods share the host's network; no pod network is configured).
CNI_BIN_DIR = Path("/usr/lib/cni")
K8S_NAMESPACE = "k8s.io"
SHIM = "containerd-shim-runc-v2"


def root_dir(cfg: ClusterConfig) -> Path:
    return CACHE_DIR / "containerd" / str(cfg.port_base)


def state_dir(cfg: ClusterConfig) -> Path:
    return cfg.path("containerd")


def socket(cfg: ClusterConfig) -> Path:
    return state_dir(cfg) / "containerd.sock"


def config_text(cfg: ClusterConfig, sandbox_image: str) -> str:
    """containerd's configuration: the defaults, but for what must be this node's own."""
    state = state_dir(cfg)
    return f"""\
# Rendered by infra/cluster/containerd.py for the local cluster's real node.
version = 2
root = "{root_dir(cfg)}"
state = "{state / "state"}"

[grpc]
  address = "{socket(cfg)}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{state / "opt"}"

[plugins."io.containerd.grpc.v1.cri"]
  # The project's pause image (busybox-static), imported like the app's: nothing is pulled.
  sandbox_image = "{sandbox_image}"
  # The sandbox cannot lower oom_score_adj (no CAP_SYS_RESOURCE): without this every pod
  # sandbox fails ("can't get final child's PID from pipe").
  restrict_oom_score_adj = true
  stream_server_address = "{HOST}"
  stream_server_port = "{cfg.ports.containerd_stream}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{state / "cni"}"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
"""


# A pod that is not on the host network gets only a loopback interface: no pod network, no
# address of a range the project did not create.
LOOPBACK_CONFLIST = """\
{
  "cniVersion": "0.4.0",
  "name": "its-loopback",
  "plugins": [{"type": "loopback"}]
}
"""


def render(cfg: ClusterConfig, sandbox_image: str) -> Path:
    state = state_dir(cfg)
    (state / "cni").mkdir(parents=True, exist_ok=True)
    root_dir(cfg).mkdir(parents=True, exist_ok=True)
    (state / "cni" / "10-its-loopback.conflist").write_text(LOOPBACK_CONFLIST)
    path = cfg.conf_dir / "containerd.toml"
    path.write_text(config_text(cfg, sandbox_image))
    return path


def ctr_command(cfg: ClusterConfig, *args: str) -> list[str]:
    """`ctr` against the node's containerd, in the namespace the CRI (the kubelet) uses."""
    return ["ctr", "--address", str(socket(cfg)), "--namespace", K8S_NAMESPACE, *args]


def ctr(cfg: ClusterConfig, *args: str, timeout: float = 60) -> str:
    done = subprocess.run(
        ctr_command(cfg, *args),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"ctr {' '.join(args[:3])}: {done.stderr.strip()[-500:]}")
    return done.stdout


def images(cfg: ClusterConfig) -> set[str]:
    return set(ctr(cfg, "images", "list", "--quiet").split())


@dataclass(frozen=True)
class Imported:
    reference: str
    seconds: float
    cached: bool

    def line(self) -> str:
        how = "already in the node's containerd, not imported" if self.cached else "imported"
        return f"{self.reference}: {how} ({self.seconds:.1f}s)"


def import_image(cfg: ClusterConfig, reference: str) -> Imported:
    """The podman image REFERENCE in the node's containerd, imported unless it is there (its tag
    is the hash of its inputs, so the same name is the same content)."""
    started = time.monotonic()
    if reference in images(cfg):
        return Imported(reference, time.monotonic() - started, cached=True)
    name = reference.rpartition(":")[0]
    # podman writes the OCI archive to the pipe; its scratch space goes to the cache directory
    # (the worker image is gigabytes), not /var/tmp.
    env = {**podman.environment(), "TMPDIR": str(podman.IMAGES_CACHE)}
    save = subprocess.Popen(
        ["podman", "save", "--format", "oci-archive", reference],  # to stdout, the pipe
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    load = subprocess.run(
        ctr_command(cfg, "images", "import", "--base-name", name, "-"),
        stdin=save.stdout,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert save.stdout is not None and save.stderr is not None
    save.stdout.close()
    saved = save.wait(timeout=60)
    if saved != 0 or load.returncode != 0:
        raise RuntimeError(
            f"importing {reference} into the node's containerd: podman save exited {saved} "
            f"({save.stderr.read().decode()[-300:]}), ctr import exited {load.returncode} "
            f"({load.stderr.strip()[-300:]})"
        )
    if reference not in images(cfg):
        raise RuntimeError(f"ctr import of {reference} created {load.stdout.strip()[-300:]}, not {reference}")
    return Imported(reference, time.monotonic() - started, cached=False)


def stop_containers(cfg: ClusterConfig, grace: float = 10) -> None:
    """Every task of the node's containerd stopped (SIGTERM, then SIGKILL after GRACE seconds)
    and deleted, so nothing of a pod outlives the node: a shim keeps its container running
    after containerd stops."""
    if not socket(cfg).exists():
        return
    try:
        tasks = [line.split()[0] for line in ctr(cfg, "tasks", "list", "--quiet").splitlines() if line]
    except (RuntimeError, subprocess.TimeoutExpired):
        return
    for task in tasks:
        _ctr_best_effort(cfg, "tasks", "kill", task)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _running_tasks(cfg):
        time.sleep(0.5)
    for task in _running_tasks(cfg):
        _ctr_best_effort(cfg, "tasks", "kill", "--signal", "SIGKILL", task)
    time.sleep(1)
    for task in tasks:
        _ctr_best_effort(cfg, "tasks", "delete", task)


def _ctr_best_effort(cfg: ClusterConfig, *args: str) -> None:
    """A ctr call during shutdown: a task that already went is not an error."""
    subprocess.run(ctr_command(cfg, *args), capture_output=True, timeout=30, check=False)


def _running_tasks(cfg: ClusterConfig) -> list[str]:
    try:
        listed = ctr(cfg, "tasks", "list").splitlines()[1:]
    except (RuntimeError, subprocess.TimeoutExpired):
        return []
    return [line.split()[0] for line in listed if line.split() and line.split()[-1] == "RUNNING"]


def leftover_shims(cfg: ClusterConfig) -> list[int]:
    """PIDs of the runc shims this node's containerd started (their arguments name its socket)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if args and Path(args[0].decode(errors="replace")).name == SHIM and str(socket(cfg)).encode() in args:
            found.append(int(entry.name))
    return found


def kill_leftover_shims(cfg: ClusterConfig) -> None:
    """After containerd stopped: each of its shims, with whatever it still runs, is killed."""
    for pid in leftover_shims(cfg):
        for child in _descendants(pid):
            _kill(child)
        _kill(pid)


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def unmount_under(*roots: Path) -> list[str]:
    """Unmount whatever containerd and the kubelet left mounted under ROOTS (deepest first):
    a container's root filesystem, a pod's Secret volume. Returns the mount points that would
    not go."""
    mounted = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if any(point == str(root) or point.startswith(f"{root}/") for root in roots):
            mounted.append(point)
    stuck = []
    for point in sorted(mounted, key=len, reverse=True):
        done = subprocess.run(["umount", point], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            lazy = subprocess.run(["umount", "-l", point], capture_output=True, text=True, check=False)
            if lazy.returncode != 0:
                stuck.append(point)
    return stuck
