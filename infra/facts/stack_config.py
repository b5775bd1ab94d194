"""Typed stack configuration: the `its-camera-ai:*` keys of `Pulumi.<stack>.yaml`, validated once.

Two ways in, one model: `from_pulumi()` inside a Pulumi program (the only `pulumi.Config` call of
the program) and `load_stack_file(stack)` for anything that has no engine (tests, the simulated
nodes generator): plain YAML + pydantic, no side effect at import. Every error names the key in
Pulumi's spelling (`its-camera-ai:nodePools[2].maxSize`) and, when read from disk, the file.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

import pulumi
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from infra.facts.compatibility import COMPATIBILITY_FILE, compatibility
from infra.facts.paths import INFRASTRUCTURE, REPO_ROOT

PROJECT = "its-camera-ai"
CLOUD_DIR = INFRASTRUCTURE / "cloud"
INSTANCE_TYPES_FILE = CLOUD_DIR / "instance-types.yaml"

POOL_LABEL = "its.ai/pool"
GPU_LABEL = "nvidia.com/gpu.present"
GPU_TAINT_KEY = "nvidia.com/gpu"
GPU_RESOURCE = "nvidia.com/gpu"
# The label cluster-autoscaler's AWS provider reads to know a node (or a node group's template)
# has GPUs: without it, it scales up GPU nodes for pods that wait on the device plugin, again.
ACCELERATOR_LABEL = "k8s.amazonaws.com/accelerator"
REQUIRED_TAGS = ("owner", "cost-center", "environment")
ALL_LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
# Keys Pulumi stores as plain strings; every other key is structured (JSON in the engine).
_STRING_KEYS = frozenset({"environment", "kubernetesVersion", "vpcCidr", "natGateways"})

Environment = Literal["dev", "staging", "prod"]
TaintEffect = Literal["NoSchedule", "NoExecute", "PreferNoSchedule"]
LogType = Literal["api", "audit", "authenticator", "controllerManager", "scheduler"]
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,37}[a-z0-9]$")]


class StackConfigError(ValueError):
    """The stack configuration is invalid; the message names the file (if any) and every key."""


class InstanceType(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel)

    cpu: int = Field(gt=0)
    memory_gib: int = Field(alias="memoryGiB", gt=0)
    gpus: int = Field(ge=0)
    gpu_model: str | None


@cache
def instance_types(path: Path = INSTANCE_TYPES_FILE) -> dict[str, InstanceType]:
    """infrastructure/cloud/instance-types.yaml: capacity per EC2 instance type."""
    raw = yaml.safe_load(path.read_text()) or {}
    try:
        return {name: InstanceType.model_validate(spec) for name, spec in raw.items()}
    except ValidationError as error:
        raise RuntimeError(f"{_rel(path)}: {error}") from None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True)


class Taint(_Model):
    key: str = Field(min_length=1)
    value: str = ""
    effect: TaintEffect

    def as_kubernetes(self) -> str:
        return f"{self.key}={self.value}:{self.effect}"


REQUIRED_GPU_TAINT = Taint(key=GPU_TAINT_KEY, value="true", effect="NoSchedule")


class NodePool(_Model):
    name: Name
    instance_types: list[str] = Field(min_length=1)
    capacity_type: Literal["ON_DEMAND", "SPOT"]
    min_size: int = Field(ge=0)
    max_size: int = Field(ge=1)
    desired_size: int = Field(ge=0)
    disk_size_gib: int = Field(alias="diskSizeGiB", ge=20, le=16384)
    ami_type: str = Field(min_length=1)
    gpu: bool
    labels: dict[str, str] = Field(default_factory=dict)
    taints: list[Taint] = Field(default_factory=list)
    # One node group per availability zone (for pools that host EBS-backed pods: a volume lives
    # in one zone, and only a group of that zone can make a node for its pod).
    zonal: bool = False

    @field_validator("instance_types")
    @classmethod
    def _known_instance_types(cls, value: list[str]) -> list[str]:
        known = instance_types()
        unknown = [t for t in value if t not in known]
        if unknown:
            raise ValueError(f"unknown instance type(s) {unknown}: add them to {_rel(INSTANCE_TYPES_FILE)}")
        return value

    @model_validator(mode="after")
    def _sizes_and_gpu_rules(self) -> NodePool:
        errors: list[str] = []
        if self.max_size < self.min_size:
            errors.append("maxSize: must be >= minSize")
        if not self.min_size <= self.desired_size <= self.max_size:
            errors.append("desiredSize: must be between minSize and maxSize")
        if ACCELERATOR_LABEL in self.labels:
            errors.append(f"labels.{ACCELERATOR_LABEL}: set from {_rel(INSTANCE_TYPES_FILE)}; leave it out")
        if self.labels.get(POOL_LABEL, self.name) != self.name:
            errors.append(f"labels.{POOL_LABEL}: must equal the pool name {self.name!r} (or be left out)")
        nvidia_ami = "NVIDIA" in self.ami_type.upper()
        gpu_types = [t for t in self.instance_types if instance_types()[t].gpus > 0]
        if self.gpu:
            if len(gpu_types) != len(self.instance_types):
                errors.append("instanceTypes: a gpu pool may only use instance types with gpus > 0")
            if not nvidia_ami:
                errors.append("amiType: a gpu pool needs an NVIDIA AMI type (e.g. AL2023_x86_64_NVIDIA)")
            if self.labels.get(GPU_LABEL) != "true":
                errors.append(f'labels: a gpu pool needs {GPU_LABEL}: "true"')
            if REQUIRED_GPU_TAINT not in self.taints:
                errors.append(f"taints: a gpu pool needs the taint {REQUIRED_GPU_TAINT.as_kubernetes()}")
            models = sorted({str(instance_types()[t].gpu_model) for t in gpu_types})
            if len(models) > 1:
                errors.append(f"instanceTypes: a gpu pool needs one GPU model, not {models}")
        else:
            if gpu_types:
                errors.append(f"instanceTypes: {gpu_types} have GPUs; set gpu: true or pick CPU types")
            if nvidia_ami:
                errors.append("amiType: an NVIDIA AMI type needs gpu: true")
        if errors:
            raise ValueError("; ".join(errors))
        return self

    def kubernetes_labels(self) -> dict[str, str]:
        """The node labels every node of the pool carries (the pool label is always added, and
        on a GPU pool the accelerator label)."""
        accelerator = {ACCELERATOR_LABEL: self.accelerator()} if self.gpu else {}
        return {**self.labels, **accelerator, POOL_LABEL: self.name}

    def accelerator(self) -> str:
        """The GPU model of a GPU pool as a label value (instance-types.yaml's gpuModel,
        `NVIDIA A10G` -> `nvidia-a10g`)."""
        model = instance_types()[self.instance_types[0]].gpu_model
        if not self.gpu or model is None:
            raise ValueError(f"pool {self.name}: not a gpu pool")
        return "-".join(model.lower().split())

    def zone_sizes(self, zones: int) -> list[tuple[int, int, int]]:
        """(min, max, desired) of each zone's node group of a zonal pool: each bound split as
        evenly as it goes, the remainder to the first zones. The same split of every bound keeps
        min <= desired <= max in every zone, and the zones' sums are the pool's bounds."""

        def split(total: int) -> list[int]:
            return [total // zones + (1 if index < total % zones else 0) for index in range(zones)]

        return list(zip(split(self.min_size), split(self.max_size), split(self.desired_size), strict=True))

    def gpus_per_node(self) -> int:
        """GPUs of the smallest instance type (what the autoscaler may assume for scale-from-zero)."""
        return min(instance_types()[t].gpus for t in self.instance_types)


class AccessEntry(_Model):
    principal_arn: str = Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/-]+$")
    policy: Literal["cluster-admin", "admin", "view"]


class KafkaConfig(_Model):
    version: str = Field(pattern=r"^\d+\.\d+\.\d+$")
    replicas: int = Field(ge=1, le=9)
    replication_factor: int = Field(ge=1)
    min_insync_replicas: int = Field(ge=1)
    storage_gib: int = Field(alias="storageGiB", ge=1)

    @model_validator(mode="after")
    def _replication_fits(self) -> KafkaConfig:
        if self.replication_factor > self.replicas:
            raise ValueError("replicationFactor: must be <= replicas (one replica per broker)")
        if self.min_insync_replicas > self.replication_factor:
            raise ValueError("minInsyncReplicas: must be <= replicationFactor")
        if self.replication_factor > 1 and self.min_insync_replicas >= self.replication_factor:
            raise ValueError(
                "minInsyncReplicas: must be < replicationFactor, or one broker down stops writes"
            )
        return self


class DataStacksConfig(_Model):
    # Catalogue releases (infrastructure/cloud/upstream-charts.yaml) this stack installs.
    releases: list[str] = Field(min_length=1)
    kafka: KafkaConfig

    @field_validator("releases")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("releases: listed twice")
        return value


class PostgresBackupsConfig(_Model):
    # COMPLIANCE: no one, the account's root included, shortens a lock or deletes a locked
    # backup; GOVERNANCE: an identity with s3:BypassGovernanceRetention may (the backup role
    # never has it). How long a lock lasts: infrastructure/database/recovery.yaml.
    object_lock_mode: Literal["GOVERNANCE", "COMPLIANCE"]


class PublicDnsConfig(_Model):
    """The account's public DNS (a prerequisite: the domain and its Route53 hosted zone). The
    program points the API's host (the its-camera-ai Ingress host of the environment's GitOps
    values) at the ingress load balancer there, and cert-manager proves the host to Let's
    Encrypt through the same zone (DNS-01)."""

    hosted_zone_id: str = Field(pattern=r"^Z[A-Z0-9]{1,31}$")
    # The Route53 zone's name (e.g. its-camera-ai.example); the API host must lie inside it.
    zone_name: str = Field(pattern=r"^([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}$")
    # Let's Encrypt's contact for the ACME account (expiry notices).
    acme_email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")
    # staging: Let's Encrypt's untrusted test CA (no rate limits) for a first try.
    acme_server: Literal["production", "staging"] = "production"


class StackConfig(_Model):
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    environment: Environment
    # The minor and the add-on versions are the compatibility table's (infrastructure/cloud/
    # compatibility.yaml); a stack file may restate the minor, never disagree with it.
    declared_kubernetes_version: str | None = Field(default=None, alias="kubernetesVersion")
    declared_addon_versions: dict[str, str] | None = Field(default=None, alias="addonVersions")
    availability_zones: list[str] = Field(min_length=3, max_length=3)
    vpc_cidr: str
    nat_gateways: Literal["single", "perAz"]
    endpoint_public_access: bool
    public_access_cidrs: list[str] = Field(default_factory=list)
    cluster_log_types: list[LogType] = Field(min_length=1)
    protect_stateful_resources: bool = True
    flow_log_retention_days: int = Field(default=90, ge=1)
    access_entries: list[AccessEntry] = Field(default_factory=list)
    tags: dict[str, str]
    node_pools: list[NodePool] = Field(min_length=1)
    data_stacks: DataStacksConfig
    postgres_backups: PostgresBackupsConfig
    # Needed where the environment publishes the API (its Ingress is on): staging and prod.
    public_dns: PublicDnsConfig | None = None

    @field_validator("availability_zones")
    @classmethod
    def _distinct_zones(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("must be 3 distinct zones")
        return value

    @field_validator("vpc_cidr")
    @classmethod
    def _vpc_cidr(cls, value: str) -> str:
        network = ipaddress.ip_network(value, strict=True)
        if network.version != 4 or not 16 <= network.prefixlen <= 20 or not network.is_private:
            raise ValueError("must be a private IPv4 network from /16 to /20")
        return value

    @field_validator("public_access_cidrs")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            ipaddress.ip_network(cidr, strict=True)
        return value

    @field_validator("declared_kubernetes_version")
    @classmethod
    def _the_table_s_minor(cls, value: str | None) -> str | None:
        minor = compatibility().minor
        if value is not None and value != minor:
            raise ValueError(
                f"{value} disagrees with the cluster's minor {minor} ({_rel(COMPATIBILITY_FILE)} "
                "kubernetes.minor); change the table, or leave the key out"
            )
        return value

    @field_validator("declared_addon_versions")
    @classmethod
    def _addons_live_in_the_table(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is not None:
            raise ValueError(f"the add-on versions live in {_rel(COMPATIBILITY_FILE)} (addons): remove it")
        return value

    @field_validator("tags")
    @classmethod
    def _required_tags(cls, value: dict[str, str]) -> dict[str, str]:
        missing = [t for t in ("owner", "cost-center") if not value.get(t)]
        if missing:
            raise ValueError(f"missing required tag(s) {missing}")
        return value

    @field_validator("node_pools")
    @classmethod
    def _unique_pools(cls, value: list[NodePool]) -> list[NodePool]:
        names = [p.name for p in value]
        if len(set(names)) != len(names):
            raise ValueError(f"pool names must be unique: {names}")
        return value

    @model_validator(mode="after")
    def _cross_key_rules(self) -> StackConfig:
        if self.endpoint_public_access and not self.public_access_cidrs:
            # EKS opens a public endpoint to 0.0.0.0/0 when no CIDR is given.
            raise _KeyError("publicAccessCidrs", "endpointPublicAccess needs at least one CIDR")
        if self.environment == "prod":
            for i, cidr in enumerate(self.public_access_cidrs):
                if ipaddress.ip_network(cidr).prefixlen == 0:
                    raise _KeyError(f"publicAccessCidrs[{i}]", "prod must not open the API to 0.0.0.0/0")
        if self.environment == "prod" and self.postgres_backups.object_lock_mode != "COMPLIANCE":
            raise _KeyError("postgresBackups.objectLockMode", "prod's backups are locked in COMPLIANCE mode")
        if "audit" not in self.cluster_log_types:
            raise _KeyError("clusterLogTypes", "must include audit")
        if self.tags.get("environment", self.environment) != self.environment:
            raise _KeyError("tags.environment", f"must equal environment {self.environment!r}")
        if not any(not p.gpu for p in self.node_pools):
            raise _KeyError("nodePools", "needs at least one CPU pool")
        zones = len(self.availability_zones)
        for i, pool in enumerate(self.node_pools):
            if pool.zonal and pool.max_size < zones:
                raise _KeyError(
                    f"nodePools[{i}].maxSize",
                    f"a zonal pool needs maxSize >= {zones} (one node group per availability zone)",
                )
        return self

    @property
    def kubernetes_version(self) -> str:
        """The cluster's Kubernetes minor (the compatibility table's)."""
        return compatibility().minor

    @property
    def addon_versions(self) -> dict[str, str]:
        """The EKS add-on versions for that minor (the compatibility table's)."""
        return compatibility().addon_versions()

    @property
    def project(self) -> str:
        return PROJECT

    @property
    def cluster_name(self) -> str:
        return f"{PROJECT}-{self.environment}"

    @property
    def resource_tags(self) -> dict[str, str]:
        """Tags of every taggable AWS resource: config tags + environment + who manages it."""
        return {**self.tags, "environment": self.environment, "managed-by": "pulumi", "project": PROJECT}

    def node_pool(self, name: str) -> NodePool:
        return next(p for p in self.node_pools if p.name == name)


class _KeyError(ValueError):
    """A cross-key rule failed: carries the Pulumi key it concerns."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def _key(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "region":
            return "aws:region"
        else:
            out += f".{part}" if out else part
    return f"{PROJECT}:{out}" if out else PROJECT


def _format(error: ValidationError) -> list[str]:
    lines = []
    for item in error.errors():
        loc = tuple(item["loc"])
        context = item.get("ctx", {}).get("error")
        if isinstance(context, _KeyError):
            lines.append(f"{PROJECT}:{context.key}: {context.message}")
            continue
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "missing":
            message = "required key is missing"
        # Model-level rules report several "<field>: <why>" parts on the model's own key.
        parts = message.split("; ") if item["type"] == "value_error" else [message]
        for part in parts:
            field, sep, why = part.partition(": ")
            if (
                sep
                and field.replace(".", "").replace("/", "").replace("-", "").isalnum()
                and " " not in field
            ):
                lines.append(f"{_key((*loc, field))}: {why}")
            else:
                lines.append(f"{_key(loc)}: {part}")
    return lines


def parse(values: Mapping[str, Any], source: str) -> StackConfig:
    """Validate `aws:region` + the `its-camera-ai:*` keys (key without the project prefix)."""
    try:
        config = StackConfig.model_validate(dict(values))
    except ValidationError as error:
        lines = _format(error)
        raise StackConfigError(f"{source}: invalid stack configuration\n  " + "\n  ".join(lines)) from None
    return config


_FIELD_ALIASES = frozenset(f.alias or name for name, f in StackConfig.model_fields.items())


def stack_file(stack: str) -> Path:
    return REPO_ROOT / f"Pulumi.{stack}.yaml"


def read_stack_values(stack: str) -> dict[str, Any]:
    """The raw `config:` map of Pulumi.<stack>.yaml (keys as Pulumi spells them)."""
    path = stack_file(stack)
    if not path.is_file():
        raise StackConfigError(f"{path.name}: no such stack file at the repository root")
    document = yaml.safe_load(path.read_text()) or {}
    raw = document.get("config")
    if not isinstance(raw, dict):
        raise StackConfigError(f"{path.name}: has no `config:` map")
    return raw


def _project_values(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, value in raw.items():
        namespace, _, name = key.partition(":")
        if key == "aws:region":
            values["region"] = value
        elif namespace == PROJECT:
            values[name] = value
        elif namespace != "aws":
            raise StackConfigError(f"{source}: {key}: unknown configuration namespace")
    return values


def load_stack_file(stack: str) -> StackConfig:
    """StackConfig of Pulumi.<stack>.yaml, without the Pulumi engine."""
    source = stack_file(stack).name
    return parse(_project_values(read_stack_values(stack), source), source)


def engine_config(stack: str) -> dict[str, str]:
    """Pulumi.<stack>.yaml as the engine hands config to a program: strings raw, the rest JSON."""
    out: dict[str, str] = {}
    for key, value in read_stack_values(stack).items():
        out[key] = value if isinstance(value, str) else json.dumps(value)
    return out


def from_pulumi() -> StackConfig:
    """StackConfig of the running stack: the only place the program reads pulumi.Config."""
    source = f"Pulumi.{pulumi.get_stack()}.yaml"
    project_config = pulumi.Config(PROJECT)
    values: dict[str, Any] = {}
    region = pulumi.Config("aws").get("region")
    if region is not None:
        values["region"] = region
    for alias in sorted(_FIELD_ALIASES - {"region"}):
        try:
            value = project_config.get(alias) if alias in _STRING_KEYS else project_config.get_object(alias)
        except Exception as error:  # the engine's parse error, reported with the key
            raise StackConfigError(f"{source}: {PROJECT}:{alias}: {error}") from None
        if value is not None:
            values[alias] = value
    return parse(values, source)
