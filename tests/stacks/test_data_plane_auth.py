"""The data plane's authentication as the local platform renders it, without starting anything:
every Redis server and Sentinel carries every user of redis.yaml and no open default user,
every Kafka listener authenticates, the ACLs come from users.yaml, and no password sits in a
file that is not the platform's own (mode 0600)."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka.admin import AclPermissionType, ResourceType

from infra.facts.kafka_users import CLUSTER_RESOURCE, Acl, KafkaUsersFile, kafka_users
from infra.facts.redis import Where, password_hash, redis_settings
from infra.facts.topics import TopicsFile, topics
from infra.facts.vault import vault_layout
from infra.facts.vault_policies import vault_policies
from infra.local.config import LocalPlatformConfig
from infra.local.platform import Platform
from infra.local.stacks import App, Kafka, Redis, Vault
from infra.local.stacks.kafka import SUPER_USERS, acl_binding, format_command


@pytest.fixture
def platform(tmp_path: Path) -> Platform:
    return Platform(LocalPlatformConfig.load(state_dir=tmp_path, port_base=20000), log=lambda _: None)


def _acl_lines(path: Path) -> dict[str, str]:
    lines = [line.split(" ", 2) for line in path.read_text().splitlines()]
    return {name: rest for _, name, rest in lines}


def test_every_redis_server_and_sentinel_has_every_user_and_no_default(platform: Platform) -> None:
    stack = platform.stack(Redis)
    stack.render()
    settings = redis_settings()
    passwords = stack.passwords()
    root = platform.cfg.path("redis")
    servers = [root / f"redis{i}" for i in range(1 + settings.replicas)]
    sentinels = [root / f"sentinel{i}" for i in range(settings.sentinel.count)]
    places: list[tuple[Path, Where]] = [(d, "redis") for d in servers] + [(d, "sentinel") for d in sentinels]
    for directory, where in places:
        acl = directory / "users.acl"
        users = _acl_lines(acl)
        # Off everywhere: no connection can be the default user. On the servers it keeps the
        # rights Redis 7.0 checks when it replays a transaction from the append-only file.
        default = users.pop("default").split()
        assert "off" in default and "on" not in default and not any(w[0] in "#>" for w in default)
        assert default == (["off"] if where == "sentinel" else ["reset", "off", "~*", "&*", "+@all"])
        assert set(users) == set(settings.users_on(where))
        for name, rest in users.items():
            words = rest.split()
            assert words[:3] == ["reset", "on", f"#{password_hash(passwords[name])}"], name
            assert words[3:] == settings.users[name].rules(where)
        text = acl.read_text()
        assert not any(password in text for password in passwords.values()), "a password in clear"
        assert acl.stat().st_mode & 0o777 == 0o600
    # Every Redis identity is on the servers; the app's, the Sentinels' own, the exporter's and
    # the admin's on the Sentinels too; replication is the servers' business only.
    assert set(settings.users_on("redis")) == set(settings.users)
    assert set(settings.users_on("sentinel")) == set(settings.users) - {"replica"}


def test_redis_configs_log_in_to_masters_and_load_the_acl_file(platform: Platform) -> None:
    stack = platform.stack(Redis)
    stack.render()
    root = platform.cfg.path("redis")
    master = redis_settings().master_name
    for index in range(1 + redis_settings().replicas):
        conf = root / f"redis{index}" / "redis.conf"
        lines = conf.read_text().splitlines()
        assert f"aclfile {root / f'redis{index}' / 'users.acl'}" in lines
        # Every server, the master too: after a failover it is a replica.
        assert "masteruser replica" in lines and f"masterauth {stack.password('replica')}" in lines
        assert conf.stat().st_mode & 0o777 == 0o600
        assert not any(line.startswith(("requirepass", "user ")) for line in lines)
    for index in range(redis_settings().sentinel.count):
        conf = root / f"sentinel{index}" / "sentinel.conf"
        lines = conf.read_text().splitlines()
        assert f"aclfile {root / f'sentinel{index}' / 'users.acl'}" in lines
        assert f"sentinel auth-user {master} sentinel" in lines
        assert f"sentinel auth-pass {master} {stack.password('sentinel')}" in lines
        assert "sentinel sentinel-user sentinel" in lines
        assert f"sentinel sentinel-pass {stack.password('sentinel')}" in lines
        assert conf.stat().st_mode & 0o777 == 0o600


def test_a_state_directory_from_before_authentication_is_refused(platform: Platform) -> None:
    old = platform.cfg.path("redis", "redis0", "redis.conf")
    old.parent.mkdir(parents=True)
    old.write_text("port 20020\n")
    with pytest.raises(ValueError, match="predates the data plane's authentication"):
        platform.stack(Redis).render()


def _properties(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return {key: value for key, _, value in (line.partition("=") for line in lines)}


def test_every_kafka_listener_authenticates_and_no_acl_means_no(platform: Platform) -> None:
    stack = platform.stack(Kafka)
    stack.render()
    for index in range(3):
        path = platform.cfg.conf_dir / f"kafka{index}.properties"
        props = _properties(path)
        listeners = {item.split("://")[0] for item in props["listeners"].split(",")}
        protocols = dict(item.split(":") for item in props["listener.security.protocol.map"].split(","))
        assert set(protocols) == listeners == {"BROKER", "CONTROLLER"}
        assert set(protocols.values()) == {"SASL_PLAINTEXT"}, "a listener without authentication"
        assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
        assert props["sasl.mechanism.inter.broker.protocol"] == "SCRAM-SHA-512"
        assert props["listener.name.controller.sasl.enabled.mechanisms"] == "PLAIN"
        assert props["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
        assert props["allow.everyone.if.no.acl.found"] == "false"
        assert props["super.users"] == ";".join(f"User:{user}" for user in SUPER_USERS)
        # The app's users are never super users.
        assert not set(kafka_users().names()) & set(SUPER_USERS)
        assert path.stat().st_mode & 0o777 == 0o600


def test_storage_is_formatted_with_the_admin_and_broker_credentials() -> None:
    command = format_command(Path("/k"), Path("/l"), "id", Path("/p"), {"admin": "a1", "broker": "b1"})
    assert "--add-scram=SCRAM-SHA-512=[name=admin,password=a1]" in command
    assert "--add-scram=SCRAM-SHA-512=[name=broker,password=b1]" in command


def test_the_acls_are_users_yaml_and_nothing_more() -> None:
    shared = topics()
    camera, detections, alerts = (
        shared.topics.camera_events.name,
        shared.topics.vehicle_detections.name,
        shared.topics.alerts.name,
    )
    api, worker, ingest = "User:its-api", "User:its-worker", "User:its-ingest"
    expected = {
        Acl(api, "topic", camera, "Write"),
        Acl(api, "topic", camera, "Describe"),
        Acl(api, "cluster", CLUSTER_RESOURCE, "IdempotentWrite"),
        # The ingest writes camera events as the API does, and nothing else.
        Acl(ingest, "topic", camera, "Write"),
        Acl(ingest, "topic", camera, "Describe"),
        Acl(ingest, "cluster", CLUSTER_RESOURCE, "IdempotentWrite"),
        Acl(worker, "topic", camera, "Read"),
        Acl(worker, "topic", camera, "Describe"),
        Acl(worker, "group", "its-worker", "Read"),
        Acl(worker, "topic", detections, "Write"),
        Acl(worker, "topic", detections, "Describe"),
        Acl(worker, "topic", alerts, "Write"),
        Acl(worker, "topic", alerts, "Describe"),
        Acl(worker, "cluster", CLUSTER_RESOURCE, "IdempotentWrite"),
        # KEDA reads the worker group's lag: offsets, no messages.
        Acl("User:its-keda", "topic", camera, "Describe"),
        Acl("User:its-keda", "group", "its-worker", "Describe"),
    }
    dead_letters = getattr(shared.topics, "dead_letters", None)
    if dead_letters is not None:  # the role topics.yaml is gaining
        expected |= {Acl(worker, "topic", dead_letters.name, op) for op in ("Write", "Describe")}
    assert set(kafka_users().all_acls(shared)) == expected
    # As the brokers get them: literal, any host, ALLOW.
    binding = acl_binding(Acl(api, "cluster", CLUSTER_RESOURCE, "IdempotentWrite"))
    assert (binding.name, binding.host) == ("kafka-cluster", "*")
    assert binding.permission_type == AclPermissionType.ALLOW
    assert binding.restype == ResourceType.BROKER  # librdkafka's name of Kafka's CLUSTER resource


def test_a_role_topics_yaml_does_not_define_yet_is_skipped() -> None:
    shared = TopicsFile.model_validate(
        {
            "defaults": {"replication_factor": 3, "config": {}},
            "topics": {
                role: {"name": role.replace("_", "-"), "description": "d", "partitions": 1}
                for role in ("camera_events", "vehicle_detections", "alerts", "dead_letters")
            },
        }
    )
    users = KafkaUsersFile.model_validate(
        {
            "users": {
                "its-worker": {
                    "description": "d",
                    "topics": [
                        {"role": "alerts", "operations": ["Write"]},
                        {"role": "not_yet_there", "operations": ["Write"]},
                    ],
                }
            }
        }
    )
    assert users.acls("its-worker", shared) == [Acl("User:its-worker", "topic", "alerts", "Write")]
    assert users.skipped_roles(shared) == ["not_yet_there"]


def test_every_app_identity_gets_its_credentials_from_its_own_vault_path(platform: Platform) -> None:
    written = platform.stack(Vault).app_secrets()
    declared = vault_layout().secrets
    assert set(written) == set(declared)
    for identity, prefix in (
        ("its-api", "its/api"),
        ("its-worker", "its/worker"),
        ("its-ingest", "its/ingest"),
    ):
        assert written[f"{prefix}/kafka"]["username"] == identity
        assert written[f"{prefix}/redis"]["username"] == identity
        assert written[f"{prefix}/redis"]["sentinel_username"] == identity
        env = platform.stack(App).environment(identity)
        assert env["ITS_KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
        assert env["ITS_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    passwords = {written[f"its/{name}/kafka"]["password"] for name in ("api", "worker", "ingest")}
    assert len(passwords) == 3


def _readable(policy: str, path: str) -> bool:
    """Whether a Vault policy grants read on a KV v2 path, by Vault's own rule matching."""
    return vault_policies()[policy].allows(f"{vault_layout().kv_mount}/data/{path}", "read")


def test_each_identity_s_policy_reads_its_own_data_plane_credentials_only() -> None:
    """Checked here on the policy files: the local Vault-API server enforces no policy."""
    identities = {"its-api": "its/api", "its-worker": "its/worker", "its-ingest": "its/ingest"}
    for policy, own in identities.items():
        for store in ("kafka", "redis"):
            assert _readable(policy, f"{own}/{store}"), (policy, store)
            for other in set(identities.values()) - {own}:
                assert not _readable(policy, f"{other}/{store}"), (policy, store)
