"""Kafka: three KRaft nodes (broker and controller each) from the Apache jars; storage formatted
once per node; topics from infrastructure/kafka/topics.yaml; the app's users and their ACLs from
infrastructure/kafka/users.yaml.

Every listener authenticates (templates/kafka/kafka.properties.j2 says how and why) and the
StandardAuthorizer refuses whatever users.yaml does not grant. The platform's own identities:
`admin` (provisioning, health checks, drills, runbooks; a super user), `broker` (inter-broker)
and `controller` (the controller listener). The SCRAM credentials of admin and broker are
written into the cluster metadata when the storage is formatted (the brokers need them before
anyone could create them); the app's users are created through the Admin API by `provision`.
"""

from __future__ import annotations

import base64
import subprocess
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialAlteration,
    UserScramCredentialUpsertion,
)

from infra.facts.kafka_users import Acl, kafka_users, secret_name
from infra.facts.paths import INFRASTRUCTURE
from infra.facts.topics import topics
from infra.kernel.health import Health
from infra.kernel.layout import HOST
from infra.kernel.programs import Program
from infra.local.config import PlatformConfigError
from infra.local.stacks.base import TEMPLATES, Stack, endpoints

NODES = 3
JMX_EXPORTER_CONFIG = INFRASTRUCTURE / "kafka" / "jmx-exporter.yaml"
ADMIN, BROKER, CONTROLLER = "admin", "broker", "controller"
SUPER_USERS = (ADMIN, BROKER, CONTROLLER)
MECHANISM = "SCRAM-SHA-512"
SCRAM_ITERATIONS = 8192
# Written beside a node's data dir once it was formatted with the SCRAM bootstrap credentials.
AUTH_MARKER = "scram-bootstrapped"

RESOURCE_TYPES = {"topic": ResourceType.TOPIC, "group": ResourceType.GROUP, "cluster": ResourceType.BROKER}
OPERATIONS = {
    "Read": AclOperation.READ,
    "Write": AclOperation.WRITE,
    "Describe": AclOperation.DESCRIBE,
    "DescribeConfigs": AclOperation.DESCRIBE_CONFIGS,
    "IdempotentWrite": AclOperation.IDEMPOTENT_WRITE,
}


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (Kafka's own form)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def format_command(
    kafka_home: Path,
    log4j: Path,
    cluster_id: str,
    properties: Path,
    scram_users: dict[str, str] | None = None,
) -> list[str]:
    # `--cluster-id=ID` in one word: an id may start with "-" (one in 64 does), and as a word of
    # its own the storage tool would read it as an option.
    command = [
        "java",
        "-cp",
        f"{kafka_home / 'libs'}/*",
        f"-Dlog4j2.configurationFile={log4j}",
        "kafka.tools.StorageTool",
        "format",
        f"--cluster-id={cluster_id}",
        f"--config={properties}",
    ]
    # The storage tool takes bootstrap SCRAM credentials only on its command line (visible to
    # this machine's `ps` for the seconds the format takes; loopback-only, single-user state).
    for user, password in (scram_users or {}).items():
        command.append(f"--add-scram={MECHANISM}=[name={user},password={password}]")
    return command


def acl_binding(acl: Acl) -> AclBinding:
    return AclBinding(
        RESOURCE_TYPES[acl.resource_type],
        acl.resource_name,
        ResourcePatternType.LITERAL,
        acl.principal,
        "*",
        OPERATIONS[acl.operation],
        AclPermissionType.ALLOW,
    )


def _binding_key(binding: AclBinding) -> tuple[str, ...]:
    """A binding as comparable text (the client's enums, however the stubs type them)."""
    return tuple(
        getattr(part, "name", str(part))
        for part in (
            binding.restype,
            binding.name,
            binding.resource_pattern_type,
            binding.principal,
            binding.operation,
            binding.permission_type,
        )
    )


def _any_acl() -> AclBindingFilter:
    # None matches any name, principal and host (the client's stubs type them as str).
    return AclBindingFilter(
        ResourceType.ANY,
        None,  # type: ignore[arg-type]
        ResourcePatternType.ANY,
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        AclOperation.ANY,
        AclPermissionType.ANY,
    )


class Kafka(Stack):
    name = "kafka"
    start_timeout = 120
    generated_secrets = tuple(
        [secret_name(user) for user in SUPER_USERS] + [secret_name(user) for user in kafka_users().names()]
    )

    def _nodes(self) -> list[tuple[int, int, int]]:
        brokers = self.require_ports("kafka_broker", NODES, "one per KRaft node")
        controllers = self.require_ports("kafka_controller", NODES, "one per KRaft node")
        jmx = self.require_ports("kafka_jmx", NODES, "one per KRaft node")
        return list(zip(brokers, controllers, jmx, strict=True))

    def bootstrap(self) -> str:
        return ",".join(endpoints(*self.ports.many("kafka_broker")))

    def password(self, user: str) -> str:
        return str(self.secrets[secret_name(user)])

    def client_config(self, user: str = ADMIN) -> dict[str, Any]:
        """librdkafka settings of a client logged in as `user` (the platform's admin by default)."""
        return {
            "bootstrap.servers": self.bootstrap(),
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": MECHANISM,
            "sasl.username": user,
            "sasl.password": self.password(user),
        }

    def render(self) -> None:
        nodes = self._nodes()
        voters = ",".join(f"{index + 1}@{HOST}:{c}" for index, (_, c, _) in enumerate(nodes))
        for index, (broker, controller, _) in enumerate(nodes):
            self.ctx.render(
                "kafka/kafka.properties.j2",
                self.cfg.conf_dir / f"kafka{index}.properties",
                mode=0o600,
                node_id=index + 1,
                voters=voters,
                broker_port=broker,
                controller_port=controller,
                data_dir=self.cfg.path("kafka", f"node{index + 1}"),
                defaults=topics().defaults,
                broker_user=BROKER,
                broker_password=self.password(BROKER),
                controller_user=CONTROLLER,
                controller_password=self.password(CONTROLLER),
                super_users=";".join(f"User:{user}" for user in SUPER_USERS),
            )
        log4j = self.cfg.conf_dir / "log4j2.properties"
        log4j.write_text((TEMPLATES / "kafka" / "log4j2.properties").read_text())
        # For the Java tools of the runbooks (--command-config): the admin's client settings.
        admin = self.cfg.conf_dir / "kafka-admin.properties"
        admin.write_text(
            "# The platform admin for the Java tools (--command-config): infra/local/stacks/kafka.py\n"
            "security.protocol=SASL_PLAINTEXT\n"
            f"sasl.mechanism={MECHANISM}\n"
            "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{ADMIN}" password="{self.password(ADMIN)}";\n'
        )
        admin.chmod(0o600)

    def programs(self) -> list[Program]:
        cfg = self.cfg
        home = cfg.tools.kafka_home
        jmx_agent = home / "agents" / "jmx_prometheus_javaagent.jar"
        heap = cfg.file.kafka.heap
        return [
            Program(
                f"kafka{index}",
                self.name,
                [
                    "java",
                    f"-Xms{heap}",
                    f"-Xmx{heap}",
                    "-XX:+UseG1GC",
                    "-XX:MaxGCPauseMillis=20",
                    "-Djava.awt.headless=true",
                    "-Djava.net.preferIPv4Stack=true",  # plain IPv4 loopback sockets
                    f"-Dlog4j2.configurationFile={cfg.conf_dir / 'log4j2.properties'}",
                    f"-javaagent:{jmx_agent}={HOST}:{jmx}:{JMX_EXPORTER_CONFIG}",
                    "-cp",
                    f"{home / 'libs'}/*",
                    "kafka.Kafka",
                    str(cfg.conf_dir / f"kafka{index}.properties"),
                ],
                stopwaitsecs=40,
                startsecs=5,
            )
            for index, (_, _, jmx) in enumerate(self._nodes())
        ]

    def start(self) -> None:
        self.format_storage()
        super().start()

    def format_storage(self) -> None:
        """KRaft needs each log dir formatted with the cluster id before the first start; the
        admin's and the brokers' SCRAM credentials go into the metadata at the same time."""
        if not self.secrets.get("kafka_cluster_id"):
            self.secrets["kafka_cluster_id"] = new_cluster_id()
        scram = {user: self.password(user) for user in (ADMIN, BROKER)}
        for node in range(1, NODES + 1):
            marker = self.cfg.path("kafka", f"node{node}.{AUTH_MARKER}")
            if self.cfg.path("kafka", f"node{node}", "meta.properties").exists():
                if not marker.exists():
                    raise PlatformConfigError(
                        f"{self.cfg.path('kafka', f'node{node}')} was formatted before Kafka required "
                        "authentication (no SCRAM credentials in its metadata): `make down`, remove the "
                        "state directory's kafka/ and redis/ and `make up` again"
                    )
                continue
            command = format_command(
                self.cfg.tools.kafka_home,
                self.cfg.conf_dir / "log4j2.properties",
                self.secrets["kafka_cluster_id"],
                self.cfg.conf_dir / f"kafka{node - 1}.properties",
                scram,
            )
            subprocess.run(command, check=True, capture_output=True)
            marker.write_text(f"{MECHANISM} users {', '.join(scram)} in the bootstrap metadata\n")

    def admin(self) -> AdminClient:
        return AdminClient({**self.client_config(ADMIN), "socket.timeout.ms": 3000})

    def health(self) -> Health:
        bootstrap = self.bootstrap()
        try:
            metadata = self.admin().list_topics(timeout=3)
        except Exception:
            return Health(False, {"brokers": 0}, bootstrap.split(","))
        names = sorted(t for t in metadata.topics if not t.startswith("__"))
        detail = {"brokers": len(metadata.brokers), "topics": names}
        return Health(len(metadata.brokers) == NODES, detail, bootstrap.split(","))

    def provision(self) -> str:
        admin = self.admin()
        created = self._topics(admin)
        acls = self._users(admin)
        facts = topics()
        skipped = kafka_users().skipped_roles(facts)
        return (
            f"topics {', '.join(t.name for t in facts.all())} ({created} created); "
            f"users {', '.join(kafka_users().names())} with {acls} ACLs"
            + (f" (roles not in topics.yaml yet, skipped: {', '.join(skipped)})" if skipped else "")
        )

    def _topics(self, admin: AdminClient) -> int:
        existing = admin.list_topics(timeout=10).topics
        facts = topics()
        new = [
            NewTopic(
                t.name,
                num_partitions=t.partitions,
                replication_factor=facts.replication_factor(t),
                config=facts.config(t),
            )
            for t in facts.all()
            if t.name not in existing
        ]
        if new:
            for future in admin.create_topics(new, operation_timeout=30).values():
                future.result()
        # A topic declared with more partitions than it has grows to them (Kafka never shrinks
        # one); keys map to new partitions from then on, so a camera's order restarts once.
        grow = [
            NewPartitions(t.name, t.partitions)
            for t in facts.all()
            if t.name in existing and len(existing[t.name].partitions) < t.partitions
        ]
        if grow:
            for future in admin.create_partitions(grow, operation_timeout=30).values():
                future.result()
        # Topics that already exist get their declared config re-applied (idempotent).
        resources = [
            ConfigResource(
                ConfigResource.Type.TOPIC,
                t.name,
                incremental_configs=[
                    ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
                    for key, value in facts.config(t).items()
                ],
            )
            for t in facts.all()
        ]
        for future in admin.incremental_alter_configs(resources).values():
            future.result()
        return len(new)

    def _users(self, admin: AdminClient) -> int:
        """Each users.yaml identity's SCRAM credential (upserted: a changed password holds) and
        exactly its ACLs: grants users.yaml no longer makes are deleted."""
        spec = kafka_users()
        upserts: list[UserScramCredentialAlteration] = [
            UserScramCredentialUpsertion(
                user,
                ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS),
                self.password(user).encode(),
            )
            for user in spec.names()
        ]
        for future in admin.alter_user_scram_credentials(upserts).values():
            future.result()
        wanted = {_binding_key(b): b for b in map(acl_binding, spec.all_acls())}
        principals = {f"User:{user}" for user in spec.names()}
        existing = admin.describe_acls(_any_acl()).result()
        have = {_binding_key(b): b for b in existing if b.principal in principals}
        missing = [binding for key, binding in wanted.items() if key not in have]
        extra = [binding for key, binding in have.items() if key not in wanted]
        if missing:
            for future in admin.create_acls(missing).values():
                future.result()
        if extra:
            filters = [
                AclBindingFilter(
                    b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation,
                    b.permission_type,
                )
                for b in extra
            ]  # fmt: skip
            for future in admin.delete_acls(filters).values():
                future.result()
        return len(wanted)
