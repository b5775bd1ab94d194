"""The stack: config, then network, cluster, node pools, add-ons, storage, the data stacks and the
GitOps root."""

from __future__ import annotations

from typing import Any

import pulumi

from infra.facts.recovery import recovery
from infra.facts.stack_config import StackConfig, from_pulumi
from infra.pulumi.addons import Addons, AddonsArgs
from infra.pulumi.alerting import KUBE_PROMETHEUS_STACK_RELEASE, Alerting, AlertingArgs
from infra.pulumi.backups import PostgresBackups, PostgresBackupsArgs
from infra.pulumi.catalogue import Catalogue, load_catalogue
from infra.pulumi.cluster import Cluster, ClusterArgs
from infra.pulumi.data_stacks import DataStacks, DataStacksArgs, merged_values
from infra.pulumi.gitops_root import GitopsRoot, GitopsRootArgs, chart_namespace
from infra.pulumi.load_balancer import LBC_RELEASE, LoadBalancerController, LoadBalancerControllerArgs
from infra.pulumi.network import Network, NetworkArgs
from infra.pulumi.nodepools import AUTOSCALER_RELEASE, DEVICE_PLUGIN_RELEASE, NodePools, NodePoolsArgs
from infra.pulumi.project_charts import project_chart_values
from infra.pulumi.public_endpoint import (
    CERT_MANAGER_RELEASE,
    TRAEFIK_RELEASE,
    AcmeDns,
    AcmeDnsArgs,
    PublicEndpoint,
    PublicEndpointArgs,
    api_host,
    checked_dns,
)
from infra.pulumi.secrets import PlatformSecrets, PlatformSecretsArgs
from infra.pulumi.storage import Storage, StorageArgs
from infra.pulumi.vault_bootstrap import (
    OPERATOR_POLICY,
    OPERATOR_SERVICE_ACCOUNT,
    PROVISIONER_POLICY,
    KubernetesRole,
    VaultBootstrap,
    VaultBootstrapArgs,
    self_init_config_map,
)
from infra.pulumi.vault_unseal import OPENBAO_RELEASE, SnapshotIdentity, VaultUnseal, VaultUnsealArgs

ARGOCD_RELEASE = "argocd"


def run(config: StackConfig | None = None) -> None:
    # Validation happens here, before the first resource is registered.
    cfg = config or from_pulumi()
    catalogue = load_catalogue()
    unknown = [r for r in cfg.data_stacks.releases if r not in catalogue.names()]
    if unknown:
        raise ValueError(
            f"Pulumi.{pulumi.get_stack()}.yaml: its-camera-ai:data_stacks.releases: {unknown} are not in "
            "infrastructure/cloud/upstream-charts.yaml"
        )
    for release in cfg.data_stacks.releases:  # every values file must exist before anything starts
        catalogue.release(release).values(cfg.environment)
    # Where the API is published, the stack's public DNS must carry its host.
    host = api_host(project_chart_values("its-camera-ai", cfg.environment))
    dns = checked_dns(pulumi.get_stack(), cfg.public_dns, host) if host else None
    tags = cfg.resource_tags

    network = Network(
        "network",
        NetworkArgs(
            cluster_name=cfg.cluster_name,
            region=cfg.region,
            vpc_cidr=cfg.vpc_cidr,
            availability_zones=cfg.availability_zones,
            nat_gateways=cfg.nat_gateways,
            flow_log_retention_days=cfg.flow_log_retention_days,
            tags=tags,
            protect=cfg.protect_stateful_resources,
        ),
    )
    cluster = Cluster(
        "cluster",
        ClusterArgs(
            cluster_name=cfg.cluster_name,
            region=cfg.region,
            kubernetes_version=cfg.kubernetes_version,
            private_subnet_ids=[s.id for s in network.private_subnets],
            endpoint_public_access=cfg.endpoint_public_access,
            public_access_cidrs=cfg.public_access_cidrs,
            log_types=cfg.cluster_log_types,
            log_retention_days=cfg.flow_log_retention_days,
            access_entries=cfg.access_entries,
            addon_versions=cfg.addon_versions,
            tags=tags,
            protect=cfg.protect_stateful_resources,
        ),
    )
    node_pools = NodePools(
        "nodepools",
        NodePoolsArgs(
            cluster_name=cluster.cluster.name,
            cluster_display_name=cfg.cluster_name,
            kubernetes_version=cfg.kubernetes_version,
            environment=cfg.environment,
            private_subnet_ids=[s.id for s in network.private_subnets],
            availability_zones=cfg.availability_zones,
            pools=cfg.node_pools,
            partition=cluster.partition,
            tags=tags,
            catalogue=catalogue,
            enabled_releases=cfg.data_stacks.releases,
            provider=cluster.provider,
            region=cfg.region,
            oidc_provider_arn=cluster.oidc_provider.arn,
            oidc_issuer_url=cluster.oidc_issuer_url,
            depends_on=cluster.addons,
        ),
    )
    addons = Addons(
        "addons",
        AddonsArgs(
            cluster_name=cluster.cluster.name,
            partition=cluster.partition,
            oidc_provider_arn=cluster.oidc_provider.arn,
            oidc_issuer_url=cluster.oidc_issuer_url,
            addon_versions=cfg.addon_versions,
            tags=tags,
            depends_on=list(node_pools.node_groups.values()),
        ),
    )
    # The default StorageClass: every PersistentVolumeClaim of the data stacks binds to it.
    storage = Storage(
        "storage",
        StorageArgs(
            cluster_name=cfg.cluster_name,
            ebs_csi_role_name=addons.ebs_csi_role.name,
            provider=cluster.provider,
            tags=tags,
            protect=cfg.protect_stateful_resources,
            depends_on=addons.addons,
        ),
    )
    # Before any release: the data stacks start with their credentials in place.
    platform_secrets = PlatformSecrets(
        "platform-secrets",
        PlatformSecretsArgs(
            environment=cfg.environment,
            catalogue=catalogue,
            releases=cfg.data_stacks.releases,
            provider=cluster.provider,
            protect=cfg.protect_stateful_resources,
        ),
    )
    # The load balancer controller's IRSA role and the VPC it serves, before its release.
    release_values: dict[str, Any] = {}
    if LBC_RELEASE in cfg.data_stacks.releases:
        release_values[LBC_RELEASE] = LoadBalancerController(
            "load-balancer-controller",
            LoadBalancerControllerArgs(
                cluster_name=cfg.cluster_name,
                environment=cfg.environment,
                region=cfg.region,
                vpc_id=network.vpc.id,
                catalogue=catalogue,
                oidc_provider_arn=cluster.oidc_provider.arn,
                oidc_issuer_url=cluster.oidc_issuer_url,
                tags=tags,
            ),
        ).release_values
    # The public API's DNS and certificate: cert-manager's role, the ingress NLB's name.
    acme = None
    if host is not None and dns is not None:
        acme = AcmeDns(
            "acme-dns",
            AcmeDnsArgs(
                cluster_name=cfg.cluster_name,
                namespace=catalogue.release(CERT_MANAGER_RELEASE).namespace,
                dns=dns,
                host=host,
                oidc_provider_arn=cluster.oidc_provider.arn,
                oidc_issuer_url=cluster.oidc_issuer_url,
                tags=tags,
            ),
        )
        release_values.update(acme.release_values)
    # OpenBao's seal key, its IRSA role and its snapshot store, and what it initialises itself
    # with, before its release.
    vault_unseal: VaultUnseal | None = None
    vault_bootstrap: VaultBootstrap | None = None
    if OPENBAO_RELEASE in cfg.data_stacks.releases:
        vault_unseal = vault_aws(cfg, catalogue.release(OPENBAO_RELEASE).namespace, cluster, platform_secrets)
        vault_bootstrap = vault_init(cfg, catalogue, cluster, platform_secrets)
    # Where Alertmanager delivers (SNS topics, its IRSA role), before its release.
    alerting = (
        Alerting(
            "alerting",
            AlertingArgs(
                cluster_name=cfg.cluster_name,
                region=cfg.region,
                namespace=catalogue.release(KUBE_PROMETHEUS_STACK_RELEASE).namespace,
                oidc_provider_arn=cluster.oidc_provider.arn,
                oidc_issuer_url=cluster.oidc_issuer_url,
                tags=cfg.resource_tags,
                protect=cfg.protect_stateful_resources,
            ),
        )
        if KUBE_PROMETHEUS_STACK_RELEASE in cfg.data_stacks.releases
        else None
    )
    data_stacks = DataStacks(
        "data-stacks",
        DataStacksArgs(
            environment=cfg.environment,
            catalogue=catalogue,
            releases=[
                r for r in cfg.data_stacks.releases if r not in (DEVICE_PLUGIN_RELEASE, AUTOSCALER_RELEASE)
            ],
            kafka=cfg.data_stacks.kafka,
            provider=cluster.provider,
            protect=cfg.protect_stateful_resources,
            kafka_client_namespaces=[
                chart_namespace("its-camera-ai"),
                *([catalogue.release("keda").namespace] if "keda" in cfg.data_stacks.releases else []),
            ],
            release_values={
                **release_values,
                **(
                    {
                        OPENBAO_RELEASE: merged_values(
                            vault_unseal.release_values, vault_bootstrap.release_values
                        )
                    }
                    if vault_unseal and vault_bootstrap
                    else {}
                ),
                **({KUBE_PROMETHEUS_STACK_RELEASE: alerting.release_values} if alerting else {}),
            },
            depends_on=[
                *addons.addons,
                *node_pools.node_groups.values(),
                *platform_secrets.secrets.values(),
                *([vault_bootstrap.config_map] if vault_bootstrap else []),
                storage.storage_class,
            ],
        ),
    )
    if host is not None and dns is not None and acme is not None:
        PublicEndpoint(
            "public-endpoint",
            PublicEndpointArgs(
                region=cfg.region,
                dns=dns,
                host=host,
                load_balancer=acme.load_balancer,
                provider=cluster.provider,
                cert_manager=data_stacks.releases[CERT_MANAGER_RELEASE],
                traefik=data_stacks.releases[TRAEFIK_RELEASE],
            ),
        )
        pulumi.export("apiHost", host.host)
    # Backups leave the cluster: the environment's bucket, written by the database's own role.
    backups = PostgresBackups(
        "postgres-backups",
        PostgresBackupsArgs(
            cluster_name=cfg.cluster_name,
            region=cfg.region,
            recovery=recovery(),
            object_lock_mode=cfg.postgres_backups.object_lock_mode,
            namespace=chart_namespace("its-databases"),
            service_account=str(project_chart_values("its-databases", cfg.environment)["cluster"]["name"]),
            oidc_provider_arn=cluster.oidc_provider.arn,
            oidc_issuer_url=cluster.oidc_issuer_url,
            tags=tags,
            protect=cfg.protect_stateful_resources,
        ),
    )
    if ARGOCD_RELEASE in data_stacks.releases:
        GitopsRoot(
            "gitops-root",
            GitopsRootArgs(
                environment=cfg.environment,
                provider=cluster.provider,
                platform_values={"postgresBackup": backups.chart_values},
                depends_on=[
                    *data_stacks.releases.values(),
                    *data_stacks.kafka_resources,
                    *node_pools.releases.values(),
                ],
            ),
        )

    all_releases = {**data_stacks.releases, **node_pools.releases}
    pulumi.export("vpcId", network.vpc.id)
    pulumi.export("privateSubnetIds", [s.id for s in network.private_subnets])
    pulumi.export("publicSubnetIds", [s.id for s in network.public_subnets])
    pulumi.export("clusterName", cluster.cluster.name)
    pulumi.export("clusterEndpoint", cluster.cluster.endpoint)
    pulumi.export("oidcProviderArn", cluster.oidc_provider.arn)
    pulumi.export("kubeconfig", cluster.kubeconfig)
    pulumi.export("postgresBackupBucket", backups.bucket.bucket)
    pulumi.export(
        "nodePools", {name: group.node_group_name for name, group in node_pools.node_groups.items()}
    )
    pulumi.export("releases", {name: catalogue.release(name).version for name in all_releases})
    if alerting:
        pulumi.export("alertTopics", {receiver: topic.arn for receiver, topic in alerting.topics.items()})
    if vault_unseal:
        pulumi.export("openbaoSealKeyArn", vault_unseal.seal_key.arn)
        pulumi.export("openbaoSnapshotBucket", vault_unseal.snapshot_bucket.bucket)


def vault_aws(cfg: StackConfig, namespace: str, cluster: Cluster, secrets: PlatformSecrets) -> VaultUnseal:
    snapshots = project_chart_values("its-vault-config", cfg.environment)["snapshots"]
    return VaultUnseal(
        "vault-unseal",
        VaultUnsealArgs(
            cluster_name=cfg.cluster_name,
            region=cfg.region,
            namespace=namespace,
            oidc_provider_arn=cluster.oidc_provider.arn,
            oidc_issuer_url=cluster.oidc_issuer_url,
            snapshots=SnapshotIdentity(
                namespace=chart_namespace("its-vault-config"),
                service_account=snapshots["serviceAccount"],
                target_config_map=snapshots["targetConfigMap"],
            ),
            provider=cluster.provider,
            tags=cfg.resource_tags,
            protect=cfg.protect_stateful_resources,
            # The snapshot identity's namespace is made with the Secrets.
            depends_on=list(secrets.secrets.values()),
        ),
    )


def vault_init(
    cfg: StackConfig, catalogue: Catalogue, cluster: Cluster, secrets: PlatformSecrets
) -> VaultBootstrap:
    """OpenBao's self-initialisation: its provisioner is the its-vault-config Job (the service
    account and role of that chart's values), its break-glass the operator account made here."""
    release = catalogue.release(OPENBAO_RELEASE)
    config = project_chart_values("its-vault-config", cfg.environment)
    audience = str(config["app"]["tokenAudience"])
    return VaultBootstrap(
        "vault-bootstrap",
        VaultBootstrapArgs(
            namespace=release.namespace,
            config_map=self_init_config_map(release.values(cfg.environment)),
            provisioner=KubernetesRole(
                name=str(config["provisioner"]["vaultRole"]),
                service_account=str(config["provisioner"]["serviceAccount"]),
                namespace=chart_namespace("its-vault-config"),
                audience=audience,
                policy=PROVISIONER_POLICY,
                ttl="15m",
                max_ttl="30m",
            ),
            operator=KubernetesRole(
                name=OPERATOR_POLICY,
                service_account=OPERATOR_SERVICE_ACCOUNT,
                namespace=release.namespace,
                audience=audience,
                policy=OPERATOR_POLICY,
                ttl="1h",
                max_ttl="1h",
            ),
            provider=cluster.provider,
            depends_on=list(secrets.secrets.values()),
        ),
    )
