"""LOCAL ONLY: the values that put the app's pods on the real node, and the one Secret they need.

They enter the GitOps tree through the seam the Pulumi program uses in the cloud: `platform` in
the root Application's values (infra/pulumi/gitops_root.with_platform_values), which the app of
apps hands to the its-camera-ai chart as its `platform` value. The dev overlay in Git is the
same; the chart's `platform.local` block (its values.yaml) names each replacement. The AppRole
role ids and secret ids go into a Secret in the app's namespace, never into values or Git.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from infra.cluster.config import ClusterConfig
from infra.cluster.local_platform import LocalPlatform
from infra.cluster.node import RUNTIME_CLASS
from infra.facts.vault import vault_layout
from infra.kernel.layout import HOST

APP_CHART = "its-camera-ai"
APPROLE_SECRET = "its-local-vault-approle"  # noqa: S105 - a Secret's name


def platform_values(cfg: ClusterConfig, platform: LocalPlatform, images: Mapping[str, str]) -> dict[str, Any]:
    """`platform` of the root Application: `local` for the app chart (values.schema.json)."""
    return {
        "local": {
            "runtimeClassName": RUNTIME_CLASS,
            "host": HOST,
            "apiPort": cfg.ports.node_api,
            "workerMetricsPort": cfg.ports.node_worker_metrics,
            "ingestMetricsPort": cfg.ports.node_ingest_metrics,
            "images": dict(images),
            "database": {"pooler": platform.pooler, "primary": platform.primary},
            "kafkaBootstrapServers": ",".join(platform.kafka_brokers),
            "redisSentinels": platform.sentinels,
            "minioEndpoint": platform.minio,
            "vault": {"addr": platform.vault_url, "appRoleSecret": APPROLE_SECRET},
        }
    }


def approle_secret(platform: LocalPlatform, namespace: str) -> dict[str, Any]:
    """Every app identity's AppRole login (vault.yaml's approles), for the pods to mount."""
    data: dict[str, str] = {}
    for role in vault_layout().approles:
        login = platform.login(role.name)
        data[f"{role.name}.role-id"] = login.role_id
        data[f"{role.name}.secret-id"] = login.secret_id
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": APPROLE_SECRET,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": APP_CHART, "its.ai/local-only": "true"},
        },
        "type": "Opaque",
        "stringData": data,
    }
