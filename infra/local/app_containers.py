"""The app as containers (`make up APP=containers`, ITS_APP_RUNTIME=containers): the API, the
worker and the ingest run from the images `make images` builds, with the securityContext, env, mounts and
resource limits the its-camera-ai chart renders for dev, read from the render (infra/charts.py),
never restated here.

What cannot be the cluster's is replaced, each named below: the host network instead of a pod
network (loopback only: every local server listens on 127.0.0.1); the local platform's endpoints
and AppRole login instead of in-cluster Services and the Kubernetes auth; the AppRole secret-id
file, bind-mounted read-only, instead of the projected service-account token; no CA Secrets
(the local data plane is plain loopback), so their mounts and the settings naming them go.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from infra.charts import Manifest, env_render

RUNTIME_VARIABLE = "ITS_APP_RUNTIME"
RUNTIMES = ("host", "containers")
CHART = "its-camera-ai"
CHART_ENV = "dev"
# The chart's settings the local platform always sets itself: where the servers are, how to log
# in, and the weights (the local object store holds no model; the image ships the default one).
LOCAL_MODEL_URI = "file://app/worker/models/its-vehicles-yolo11n.pt"


class ContainerSpecError(ValueError):
    """The chart renders something this runner does not know how to apply; named, not dropped."""


def runtime() -> str:
    value = os.environ.get(RUNTIME_VARIABLE, "host")
    if value not in RUNTIMES:
        raise ContainerSpecError(f"{RUNTIME_VARIABLE}={value!r}: expected one of {', '.join(RUNTIMES)}")
    return value


@dataclass(frozen=True)
class ChartContainer:
    """One container of the dev render, with its pod's spec."""

    pod: Manifest
    container: Manifest

    @property
    def env(self) -> dict[str, str]:
        values = {}
        for item in self.container.get("env", []):
            if "value" in item:
                values[item["name"]] = str(item["value"])
            elif "fieldRef" not in item.get("valueFrom", {}):
                raise ContainerSpecError(f"{self.container['name']}: env {item['name']} is not a plain value")
        return values

    @property
    def pod_fields(self) -> list[str]:
        """Settings the chart takes from the pod's own fields (the ingest's member id is the pod's
        name): no pod here, so the local platform must set each one."""
        return [
            item["name"] for item in self.container.get("env", []) if "fieldRef" in item.get("valueFrom", {})
        ]


def chart_container(kind: str, name: str) -> ChartContainer:
    """The first container of the dev render's KIND whose name starts with NAME."""
    rendered = env_render(CHART, CHART_ENV)
    for obj in rendered.of_kind(kind):
        if obj["metadata"]["name"].startswith(name):
            pod = obj["spec"]["template"]["spec"]
            return ChartContainer(pod, pod["containers"][0])
    raise ContainerSpecError(f"the {CHART_ENV} render of {CHART} has no {kind} {name}*")


def _quantity_bytes(value: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 10**3, "M": 10**6, "G": 10**9}
    for suffix, factor in units.items():
        if value.endswith(suffix):
            return int(float(value.removesuffix(suffix)) * factor)
    return int(value)


def _cpus(value: str) -> str:
    return str(int(value.removesuffix("m")) / 1000) if value.endswith("m") else value


def security_arguments(spec: ChartContainer) -> list[str]:
    """podman flags for the pod's and the container's securityContext; an unknown key fails."""
    merged: dict[str, Any] = {
        **spec.pod.get("securityContext", {}),
        **spec.container.get("securityContext", {}),
    }
    args: list[str] = []
    known = {"runAsNonRoot", "runAsUser", "runAsGroup", "fsGroup", "seccompProfile", "readOnlyRootFilesystem"}
    known |= {"allowPrivilegeEscalation", "privileged", "capabilities"}
    unknown = set(merged) - known
    if unknown:
        raise ContainerSpecError(f"securityContext keys this runner cannot apply: {sorted(unknown)}")
    if merged.get("runAsNonRoot") and int(merged.get("runAsUser", 0)) == 0:
        raise ContainerSpecError("runAsNonRoot with uid 0")
    args += ["--user", f"{merged['runAsUser']}:{merged['runAsGroup']}"]
    if "fsGroup" in merged:
        args += ["--group-add", str(merged["fsGroup"])]
    if merged.get("readOnlyRootFilesystem"):
        args.append("--read-only")
    if merged.get("allowPrivilegeEscalation") is False:
        args += ["--security-opt", "no-new-privileges"]
    if merged.get("privileged"):
        raise ContainerSpecError("a privileged container is not run here")
    for capability in merged.get("capabilities", {}).get("drop", []):
        args += ["--cap-drop", capability]
    for capability in merged.get("capabilities", {}).get("add", []):
        args += ["--cap-add", capability]
    profile = merged.get("seccompProfile", {}).get("type", "RuntimeDefault")
    if profile != "RuntimeDefault":  # podman's default profile is the runtime default
        raise ContainerSpecError(f"seccompProfile {profile} is not applied here")
    return args


def resource_arguments(spec: ChartContainer) -> list[str]:
    limits = spec.container.get("resources", {}).get("limits", {})
    args = []
    if "cpu" in limits:
        args += ["--cpus", _cpus(str(limits["cpu"]))]
    if "memory" in limits:
        args += ["--memory", str(_quantity_bytes(str(limits["memory"])))]
    return args


def mount_arguments(spec: ChartContainer) -> tuple[list[str], list[str]]:
    """tmpfs for each emptyDir (its sizeLimit); the paths of the mounts with no local source
    (Secrets, projected tokens), whose settings the caller drops or replaces."""
    volumes = {v["name"]: v for v in spec.pod.get("volumes", [])}
    args: list[str] = []
    absent: list[str] = []
    for mount in spec.container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        if "emptyDir" in volume:
            size = volume["emptyDir"].get("sizeLimit")
            options = "rw,mode=1777" + (f",size={_quantity_bytes(str(size))}" if size else "")
            args += ["--tmpfs", f"{mount['mountPath']}:{options}"]
        elif "secret" in volume or "projected" in volume:
            absent.append(str(mount["mountPath"]))
        else:
            raise ContainerSpecError(f"volume {mount['name']}: only emptyDir, secret and projected are known")
    return args, absent


def environment(spec: ChartContainer, local: Mapping[str, str], absent: list[str]) -> dict[str, str]:
    """The chart's env, with what only the cluster has replaced by the local platform's values;
    a setting that names a mount with no local source goes."""
    merged = {k: v for k, v in spec.env.items() if not any(path in v for path in absent)}
    unset = [name for name in spec.pod_fields if name not in local]
    if unset:
        raise ContainerSpecError(f"{spec.container['name']}: the pod's fields {unset} have no local value")
    for key, value in local.items():
        if key in merged or key.startswith("ITS_"):
            merged[key] = value
    return merged


def podman_command(
    name: str,
    spec: ChartContainer,
    image: str,
    local_env: Mapping[str, str],
    files: Mapping[str, str],
    command: list[str] | None = None,
) -> list[str]:
    """`podman run` of the chart's container on the host network, in the foreground (supervised)."""
    mounts, absent = mount_arguments(spec)
    env = environment(spec, local_env, absent)
    args = ["podman", "run", "--rm", "--replace", "--name", name, "--pull=never", "--network", "host"]
    args += security_arguments(spec) + resource_arguments(spec) + mounts
    for host_path, container_path in files.items():
        args += ["--volume", f"{host_path}:{container_path}:ro"]
    for key, value in sorted(env.items()):
        args += ["--env", f"{key}={value}"]
    return [*args, image, *(command or [])]
