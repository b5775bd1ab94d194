"""The real program of each stack, run under Pulumi mocks: what it would ask AWS and Kubernetes for."""

from __future__ import annotations

import ipaddress
import json
import re

import pytest

from infra.facts.compatibility import compatibility
from infra.facts.stack_config import ACCELERATOR_LABEL, ALL_LOG_TYPES, GPU_LABEL, POOL_LABEL, load_stack_file
from infra.pulumi.catalogue import load_catalogue
from infra.pulumi.gitops_root import chart_namespace
from infra.pulumi.nodepools import AUTOSCALER_TEMPLATE, node_group_layout
from infra.pulumi.policy.rules import NON_TAGGABLE, REQUIRED_TAGS
from tests.pulumi.broken import BROKEN_CONFIGS, BrokenConfig
from tests.pulumi.stacks import Resource, StackRun, stack_run

VERSION = re.compile(r"^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$")
EXPECTED_NATS = {"dev": 1, "staging": 3, "prod": 3}


def test_network_has_three_zones_of_subnets_and_nat_per_environment(run: StackRun) -> None:
    cfg = load_stack_file(run.stack)
    subnets = run.of_type("aws:ec2/subnet:Subnet")
    public = [s for s in subnets if s.inputs["tags"].get("kubernetes.io/role/elb") == "1"]
    private = [s for s in subnets if s.inputs["tags"].get("kubernetes.io/role/internal-elb") == "1"]
    assert len(public) == len(private) == 3 and len(subnets) == 6
    for group in (public, private):
        assert sorted(s.inputs["availabilityZone"] for s in group) == sorted(cfg.availability_zones)
        assert all(s.inputs["tags"][f"kubernetes.io/cluster/{cfg.cluster_name}"] == "shared" for s in group)
    assert not any(s.inputs.get("mapPublicIpOnLaunch") for s in subnets)
    vpc = ipaddress.ip_network(run.one("aws:ec2/vpc:Vpc").inputs["cidrBlock"])
    networks = [ipaddress.ip_network(s.inputs["cidrBlock"]) for s in subnets]
    assert all(n.subnet_of(vpc) for n in networks)  # type: ignore[arg-type]
    assert not any(a.overlaps(b) for i, a in enumerate(networks) for b in networks[i + 1 :])
    assert len(run.of_type("aws:ec2/natGateway:NatGateway")) == EXPECTED_NATS[run.stack]
    assert cfg.nat_gateways == ("single" if run.stack == "dev" else "perAz")
    private_tables = [t for t in run.of_type("aws:ec2/routeTable:RouteTable") if "private" in t.name]
    assert len(private_tables) == 3
    assert len({t.inputs["routes"][0]["natGatewayId"] for t in private_tables}) == EXPECTED_NATS[run.stack]


def test_vpc_endpoints_and_flow_logs_exist(run: StackRun) -> None:
    endpoints = {
        e.inputs["serviceName"].rsplit(".", 1 if "ecr" not in e.inputs["serviceName"] else 2)[-1]: e.inputs
        for e in run.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
    }
    services = {e.inputs["serviceName"] for e in run.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")}
    assert services == {f"com.amazonaws.eu-west-1.{s}" for s in ("s3", "ecr.api", "ecr.dkr", "sts")}
    assert endpoints
    for endpoint in run.of_type("aws:ec2/vpcEndpoint:VpcEndpoint"):
        if endpoint.inputs["serviceName"].endswith(".s3"):
            assert (
                endpoint.inputs["vpcEndpointType"] == "Gateway" and len(endpoint.inputs["routeTableIds"]) == 3
            )
        else:
            assert endpoint.inputs["vpcEndpointType"] == "Interface" and endpoint.inputs["privateDnsEnabled"]
    (sg,) = [g for g in run.of_type("aws:ec2/securityGroup:SecurityGroup") if g.name.endswith("endpoints")]
    cfg = load_stack_file(run.stack)
    assert [(r["fromPort"], r["toPort"], r["cidrBlocks"]) for r in sg.inputs["ingress"]] == [
        (443, 443, [cfg.vpc_cidr])
    ]
    flow_log = run.one("aws:ec2/flowLog:FlowLog")
    assert (
        flow_log.inputs["trafficType"] == "ALL"
        and flow_log.inputs["logDestinationType"] == "cloud-watch-logs"
    )
    (group,) = [g for g in run.of_type("aws:cloudwatch/logGroup:LogGroup") if "flow-logs" in g.inputs["name"]]
    assert (
        group.inputs["kmsKeyId"]
        and flow_log.inputs["logDestination"] == f"arn:aws:mock:eu-west-1:123456789012:{group.name}"
    )


def test_cluster_secrets_are_kms_encrypted_with_a_rotating_key(run: StackRun) -> None:
    cluster = run.one("aws:eks/cluster:Cluster").inputs
    assert cluster["encryptionConfig"]["resources"] == ["secrets"]
    key_arn = cluster["encryptionConfig"]["provider"]["keyArn"]
    (key,) = [k for k in run.of_type("aws:kms/key:Key") if key_arn.endswith(f":{k.name}")]
    assert key.inputs["enableKeyRotation"] is True
    assert all(k.inputs["enableKeyRotation"] is True for k in run.of_type("aws:kms/key:Key"))


def test_cluster_logging_endpoint_access_and_version(run: StackRun) -> None:
    cfg = load_stack_file(run.stack)
    cluster = run.one("aws:eks/cluster:Cluster").inputs
    assert sorted(cluster["enabledClusterLogTypes"]) == sorted(ALL_LOG_TYPES)
    assert cluster["version"] == compatibility().minor == cfg.kubernetes_version
    assert cluster["accessConfig"]["authenticationMode"] == "API"
    vpc = cluster["vpcConfig"]
    assert vpc["endpointPrivateAccess"] is True
    assert vpc["endpointPublicAccess"] is cfg.endpoint_public_access
    if cfg.endpoint_public_access:
        assert vpc["publicAccessCidrs"] == cfg.public_access_cidrs
    if run.stack == "prod":
        assert "0.0.0.0/0" not in vpc.get("publicAccessCidrs", [])
        assert cluster["deletionProtection"] is True
    assert len(vpc["subnetIds"]) == 3 and all("private" in s for s in vpc["subnetIds"])


def test_oidc_provider_and_addons(run: StackRun) -> None:
    cfg = load_stack_file(run.stack)
    oidc = run.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider").inputs
    assert oidc["clientIdLists"] == ["sts.amazonaws.com"] and oidc["url"].startswith("https://oidc.eks.")
    addons = {a.inputs["addonName"]: a.inputs for a in run.of_type("aws:eks/addon:Addon")}
    assert set(addons) == {"vpc-cni", "coredns", "kube-proxy", "aws-ebs-csi-driver", "metrics-server"}
    pinned = {n: a["addonVersion"] for n, a in addons.items()}
    assert pinned == cfg.addon_versions == compatibility().addon_versions()
    assert addons["aws-ebs-csi-driver"]["serviceAccountRoleArn"]


def test_irsa_roles_trust_exactly_their_service_account(run: StackRun) -> None:
    irsa = {
        r.name: r
        for r in run.of_type("aws:iam/role:Role")
        if "AssumeRoleWithWebIdentity" in r.inputs["assumeRolePolicy"]
    }
    expected = {
        "addons-ebs-csi": "system:serviceaccount:kube-system:ebs-csi-controller-sa",
        "nodepools-autoscaler": "system:serviceaccount:kube-system:cluster-autoscaler",
        "cluster-cni-irsa": "system:serviceaccount:kube-system:aws-node",
        "load-balancer-controller": "system:serviceaccount:kube-system:aws-load-balancer-controller",
        "postgres-backups-backup-tool": "system:serviceaccount:data:its-postgres",
        "alerting-alertmanager": "system:serviceaccount:monitoring:kube-prometheus-stack-alertmanager",
        "vault-unseal-server": "system:serviceaccount:vault:openbao",
        "vault-unseal-snapshots": "system:serviceaccount:vault:openbao-snapshot",
    }
    if load_stack_file(run.stack).public_dns is not None:  # the API is published: DNS-01
        expected["acme-dns-cert-manager"] = "system:serviceaccount:cert-manager:cert-manager"
    assert set(irsa) == set(expected)
    issuer = "oidc.eks.eu-west-1.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF"
    for name, subject in expected.items():
        (statement,) = json.loads(irsa[name].inputs["assumeRolePolicy"])["Statement"]
        assert statement["Principal"]["Federated"].endswith(f":oidc-provider/{issuer}")
        assert statement["Condition"] == {
            "StringEquals": {f"{issuer}:sub": subject, f"{issuer}:aud": "sts.amazonaws.com"}
        }, name
    addon = next(
        a for a in run.of_type("aws:eks/addon:Addon") if a.inputs["addonName"] == "aws-ebs-csi-driver"
    )
    assert addon.inputs["serviceAccountRoleArn"].endswith(":role/addons-ebs-csi")


def test_node_pools_match_config(run: StackRun) -> None:
    cfg = load_stack_file(run.stack)
    groups = {g.inputs["nodeGroupName"]: g.inputs for g in run.of_type("aws:eks/nodeGroup:NodeGroup")}
    layouts = {p.name: node_group_layout(p, cfg.availability_zones, cfg.region) for p in cfg.node_pools}
    assert set(groups) == {g.name for layout in layouts.values() for g in layout}
    assert {p.name for p in cfg.node_pools} == {"system", "general", "gpu"}
    for pool in cfg.node_pools:
        for layout in layouts[pool.name]:
            group = groups[layout.name]
            assert group["instanceTypes"] == pool.instance_types
            assert group["amiType"] == pool.ami_type and group["capacityType"] == pool.capacity_type
            assert group["labels"][POOL_LABEL] == pool.name
            assert all("private" in s for s in group["subnetIds"])
            assert group["updateConfig"] == {"maxUnavailablePercentage": 33}
        # The pool's groups together have the pool's bounds.
        sizes = [groups[layout.name]["scalingConfig"] for layout in layouts[pool.name]]
        assert [sum(s[k] for s in sizes) for k in ("minSize", "maxSize", "desiredSize")] == [
            pool.min_size,
            pool.max_size,
            pool.desired_size,
        ]
    system_taints = groups["system"]["taints"]
    assert system_taints == [{"key": "CriticalAddonsOnly", "value": "true", "effect": "NO_SCHEDULE"}]
    templates = run.of_type("aws:ec2/launchTemplate:LaunchTemplate")
    assert len(templates) == 3
    for template in templates:
        ebs = template.inputs["blockDeviceMappings"][0]["ebs"]
        assert ebs["encrypted"] == "true" and ebs["volumeType"] == "gp3"
        assert template.inputs["metadataOptions"]["httpTokens"] == "required"


def test_gpu_pool_is_tainted_labelled_and_scales_from_config(run: StackRun) -> None:
    cfg = load_stack_file(run.stack)
    gpu = next(
        g for g in run.of_type("aws:eks/nodeGroup:NodeGroup") if g.inputs["nodeGroupName"] == "gpu"
    ).inputs
    assert gpu["amiType"] == "AL2023_x86_64_NVIDIA"
    accelerator = {"dev": "nvidia-t4", "staging": "nvidia-t4", "prod": "nvidia-a10g"}[run.stack]
    assert gpu["labels"] == {GPU_LABEL: "true", POOL_LABEL: "gpu", ACCELERATOR_LABEL: accelerator}
    assert gpu["taints"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}]
    expected_min = {"dev": 0, "staging": 1, "prod": 2}[run.stack]
    assert gpu["scalingConfig"]["minSize"] == expected_min == cfg.node_pool("gpu").min_size
    if run.stack == "dev":
        assert gpu["instanceTypes"] == ["g4dn.xlarge"] and gpu["scalingConfig"]["maxSize"] == 2
    if run.stack == "prod":
        # The capacity plan's GPU count for the prod scale (docs/capacity.md), from the stack config.
        assert gpu["instanceTypes"] == ["g5.xlarge", "g5.2xlarge"]
        assert gpu["scalingConfig"]["maxSize"] == cfg.node_pool("gpu").max_size >= 36
    # Scale from zero: the autoscaler learns labels, taints and GPUs from the ASG's tags.
    asg_tags = {
        t.inputs["tag"]["key"]: t.inputs["tag"]["value"]
        for t in run.of_type("aws:autoscaling/tag:Tag")
        if t.inputs["autoscalingGroupName"] == "eks-nodepools-gpu-asg"
    }
    assert asg_tags == {
        f"{AUTOSCALER_TEMPLATE}/label/{GPU_LABEL}": "true",
        f"{AUTOSCALER_TEMPLATE}/label/{POOL_LABEL}": "gpu",
        f"{AUTOSCALER_TEMPLATE}/label/{ACCELERATOR_LABEL}": accelerator,
        f"{AUTOSCALER_TEMPLATE}/taint/nvidia.com/gpu": "true:NoSchedule",
        f"{AUTOSCALER_TEMPLATE}/resources/nvidia.com/gpu": "1",
    }


def test_node_role_has_the_two_node_policies_and_not_the_cni_s(run: StackRun) -> None:
    node_role_policies = sorted(
        a.inputs["policyArn"]
        for a in run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.name.startswith("nodepools-node-")
    )
    assert node_role_policies == [
        "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
        "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    ]


def test_every_helm_release_is_the_catalogue_pin(run: StackRun) -> None:
    cfg = load_stack_file(run.stack)
    catalogue = load_catalogue()
    releases = {r.inputs["name"]: r.inputs for r in run.of_type("kubernetes:helm.sh/v3:Release")}
    assert set(releases) == set(cfg.data_stacks.releases)
    for name, inputs in releases.items():
        entry = catalogue.release(name)
        assert inputs["version"] == entry.version and VERSION.match(inputs["version"]), name
        assert "latest" not in inputs["version"] and not set(inputs["version"]) & set("^~*<>=x |")
        assert inputs["chart"] == entry.chart and inputs["repositoryOpts"]["repo"] == entry.repo
        assert inputs["namespace"] == entry.namespace
        if name in (
            "cluster-autoscaler",
            "redis",
            "aws-load-balancer-controller",
            "openbao",
            "kube-prometheus-stack",
            "cert-manager",
            "traefik",
        ):
            continue  # the files' values plus the program's: test_the_autoscaler_*, test_redis_*, test_nodes,
            # tests/pulumi/test_vault_unseal.py, tests/pulumi/test_alerting.py, test_public_endpoint.py
        assert inputs["values"] == entry.values(run.stack), name
    assert run.exports["releases"] == {n: catalogue.release(n).version for n in cfg.data_stacks.releases}


def test_the_autoscaler_gets_the_cluster_its_region_and_its_role_and_may_resize_only_its_groups(
    run: StackRun,
) -> None:
    cfg = load_stack_file(run.stack)
    (release,) = [
        r.inputs
        for r in run.of_type("kubernetes:helm.sh/v3:Release")
        if r.inputs["name"] == "cluster-autoscaler"
    ]
    values = release["values"]
    files = load_catalogue().release("cluster-autoscaler").values(run.stack)
    assert values["autoDiscovery"] == {"clusterName": cfg.cluster_name}
    assert values["awsRegion"] == cfg.region
    account = values["rbac"]["serviceAccount"]
    assert account["annotations"]["eks.amazonaws.com/role-arn"].endswith(":role/nodepools-autoscaler")
    assert account["name"] == files["rbac"]["serviceAccount"]["name"] == "cluster-autoscaler"
    # The image is the table's autoscaler release, of the cluster's minor; the files set none.
    assert values["image"]["tag"] == compatibility().chart("cluster-autoscaler").app_version
    assert values["image"]["tag"].startswith(f"v{cfg.kubernetes_version}.")
    assert "image" not in files
    (policy,) = [p for p in run.of_type("aws:iam/policy:Policy") if p.name == "nodepools-autoscaler"]
    statements = {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
    resize = statements["ResizeOwnGroups"]
    assert set(resize["Action"]) == {
        "autoscaling:SetDesiredCapacity",
        "autoscaling:TerminateInstanceInAutoScalingGroup",
    }
    assert resize["Condition"] == {
        "StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cfg.cluster_name}": "owned"}
    }
    assert all(a.split(":")[1].startswith(("Describe", "Get")) for a in statements["Discover"]["Action"])


# What holds data or keys: a `pulumi destroy` or a replacing diff must not take it outside dev.
STATEFUL_TYPES = frozenset(
    {
        "aws:kms/key:Key",
        "aws:cloudwatch/logGroup:LogGroup",
        "aws:eks/cluster:Cluster",
        # The PostgreSQL backups and OpenBao's snapshots (and their keys, above).
        "aws:s3/bucket:Bucket",
        "kubernetes:kafka.strimzi.io/v1beta2:Kafka",
        "kubernetes:kafka.strimzi.io/v1beta2:KafkaNodePool",
        # Generated secrets: the state holds the only copy of each password and key.
        "random:index/randomPassword:RandomPassword",
        "tls:index/privateKey:PrivateKey",
        "tls:index/selfSignedCert:SelfSignedCert",
        "kubernetes:core/v1:Secret",
    }
)
STATEFUL_RELEASES = frozenset({"redis", "minio", "openbao"})


def _stateful(resource: Resource) -> bool:
    if resource.type == "kubernetes:helm.sh/v3:Release":
        return resource.name in STATEFUL_RELEASES
    return resource.type in STATEFUL_TYPES


def test_stateful_things_are_protected_outside_dev_and_nothing_else_is(run: StackRun) -> None:
    """On the options the program passed, not on the config flag: a component that forgot to
    pass `protect` down fails here."""
    protect = load_stack_file(run.stack).protect_stateful_resources
    assert protect is (run.stack != "dev")
    stateful = [r for r in run.custom() if _stateful(r)]
    assert {r.type for r in stateful} >= STATEFUL_TYPES
    assert {r.name for r in stateful if r.type == "kubernetes:helm.sh/v3:Release"} == STATEFUL_RELEASES
    assert [r.name for r in stateful if r.options.protect != protect] == []
    assert [r.name for r in run.custom() if r.options.protect and not _stateful(r)] == []


def test_every_resource_sits_under_its_concern_s_component(run: StackRun) -> None:
    components = {r.name for r in run.resources if r.type.startswith("its:")}
    assert components >= {
        "network",
        "cluster",
        "nodepools",
        "addons",
        "data-stacks",
        "gitops-root",
        "vault-unseal",
        "alerting",
    }
    parents = {r.name: r.options.parent for r in run.resources}

    def component_of(name: str | None) -> str | None:
        # Up the parent chain (a role's policy attachments sit under the role): the first component.
        while name is not None and name not in components:
            name = parents.get(name)
        return name

    orphans = [r.name for r in run.custom() if component_of(r.options.parent) is None]
    assert orphans == []
    assert all(r.options.parent is None for r in run.resources if r.type.startswith("its:"))


def test_the_creation_order_is_declared_where_data_does_not_carry_it(run: StackRun) -> None:
    """Ordering that no input reference implies: node groups after the cluster's networking add-ons,
    Kafka after its operator, the GitOps root after every data stack release."""
    for group in run.of_type("aws:eks/nodeGroup:NodeGroup"):
        assert "cluster-vpc-cni" in group.options.depends_on, group.name
    for kind in ("Kafka", "KafkaNodePool"):
        kafka = run.one(f"kubernetes:kafka.strimzi.io/v1beta2:{kind}")
        assert "strimzi-kafka-operator" in kafka.options.depends_on
    root = run.one("kubernetes:argoproj.io/v1alpha1:Application")
    releases = {r.name for r in run.of_type("kubernetes:helm.sh/v3:Release")}
    assert releases - set(root.options.depends_on) == set()


def test_kafka_cluster_is_kraft_with_the_configured_replication(run: StackRun) -> None:
    cfg = load_stack_file(run.stack).data_stacks.kafka
    kafka = run.one("kubernetes:kafka.strimzi.io/v1beta2:Kafka").inputs
    pool = run.one("kubernetes:kafka.strimzi.io/v1beta2:KafkaNodePool").inputs
    assert kafka["metadata"] == {
        "name": "its-kafka",
        "namespace": "kafka",
        "labels": {"app.kubernetes.io/part-of": "its-camera-ai"},
    }
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == "its-kafka"
    assert sorted(pool["spec"]["roles"]) == ["broker", "controller"]
    assert pool["spec"]["replicas"] == cfg.replicas
    config = kafka["spec"]["kafka"]["config"]
    assert config["default.replication.factor"] == cfg.replication_factor
    assert config["min.insync.replicas"] == cfg.min_insync_replicas
    assert kafka["spec"]["entityOperator"] == {"topicOperator": {}, "userOperator": {}}
    # Every listener authenticates (SCRAM-SHA-512 over TLS) and only ACLs grant anything.
    listeners = kafka["spec"]["kafka"]["listeners"]
    clients = (chart_namespace("its-camera-ai"), load_catalogue().release("keda").namespace)
    assert listeners == [
        {
            "name": "tls",
            "port": 9093,
            "type": "internal",
            "tls": True,
            "authentication": {"type": "scram-sha-512"},
            # Only the app's namespace and KEDA's reach the listener (Strimzi's NetworkPolicy).
            "networkPolicyPeers": [
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}
                for namespace in clients
            ],
        }
    ]
    assert kafka["spec"]["kafka"]["authorization"] == {"type": "simple"}
    assert not any(key.startswith(("allow.everyone", "authorizer", "super.users")) for key in config)
    if run.stack in ("staging", "prod"):
        assert (
            pool["spec"]["replicas"],
            config["default.replication.factor"],
            config["min.insync.replicas"],
        ) == (3, 3, 2)


def test_taggable_aws_resources_carry_the_required_tags(run: StackRun) -> None:
    cfg = load_stack_file(run.stack)
    aws_resources = [r for r in run.custom() if r.type.startswith("aws:") and r.type not in NON_TAGGABLE]
    assert len(aws_resources) > 30
    for resource in aws_resources:
        tags = resource.inputs.get("tags", {})
        assert all(tags.get(t) for t in REQUIRED_TAGS), f"{resource.type} {resource.name}: {tags}"
        assert tags["environment"] == run.stack and tags["owner"] == cfg.tags["owner"]


def test_outputs(run: StackRun) -> None:
    exports = run.exports
    assert exports["vpcId"] == "network-vpc-id"
    assert len(exports["privateSubnetIds"]) == len(exports["publicSubnetIds"]) == 3
    assert exports["clusterName"] == f"its-camera-ai-{run.stack}"
    assert exports["clusterEndpoint"].startswith("https://")
    assert exports["oidcProviderArn"].startswith("arn:aws:iam::")
    assert run.secret_exports == ("kubeconfig",)
    kubeconfig = json.loads(exports["kubeconfig"])
    assert kubeconfig["users"][0]["user"]["exec"]["args"][:4] == [
        "eks",
        "get-token",
        "--cluster-name",
        exports["clusterName"],
    ]
    general = {"general-a": "general-a", "general-b": "general-b", "general-c": "general-c"}
    assert exports["nodePools"] == {"system": "system", "gpu": "gpu", **general}


@pytest.mark.parametrize("broken", BROKEN_CONFIGS, ids=lambda b: b.id)
def test_a_broken_config_fails_before_any_resource_with_file_and_key(broken: BrokenConfig) -> None:
    result = stack_run(broken.stack, broken.override)
    assert result.error is not None and "StackConfigError" in result.error
    for expected in broken.expected:
        assert expected in result.error, result.error
    assert result.resources == ()
