"""PostgreSQL: two members under Patroni (etcd as its DCS), HAProxy to the primary, PgBouncer in
front; then the app's role and database and the schema through the one migration entry point."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql

from app.common import migrate
from infra.facts.database import database_roles
from infra.kernel.health import Health, wait_until
from infra.kernel.layout import HOST
from infra.kernel.programs import Program, postgres_user
from infra.local.stacks.base import Stack, chown_postgres, endpoints, http_ok, url

MEMBERS = 2
DATABASE = "its"


def password_secret(role: str) -> str:
    """The key of a database role's generated password in the platform's secrets."""
    return f"postgres_role:{role}"


class Postgres(Stack):
    name = "postgres"
    start_timeout = 120
    # The superuser and Patroni's own roles, then the schema owner and each app identity
    # (infrastructure/database/roles.yaml).
    generated_secrets = (
        "postgres_superuser",
        "postgres_replication",
        "postgres_rewind",
        *(password_secret(role) for role in (database_roles().owner, *database_roles().roles)),
    )

    def superuser_dsn(self, dbname: str = "postgres") -> str:
        # Through HAProxy: always the current primary, whichever member that is.
        password = self.secrets["postgres_superuser"]
        return f"postgresql://postgres:{password}@{HOST}:{self.ports.haproxy_primary}/{dbname}"

    def role_dsn(self, role: str, through_bouncer: bool = True) -> str:
        """A role's DSN: through PgBouncer as the app connects, or straight to the primary."""
        password = self.secrets[password_secret(role)]
        port = self.ports.pgbouncer if through_bouncer else self.ports.haproxy_primary
        return f"postgresql://{role}:{password}@{HOST}:{port}/{DATABASE}"

    def _render_for_postgres(self, template: str, target: Path, **context: Any) -> None:
        """A config the postgres user's processes (Patroni, PgBouncer) read: theirs, mode 0600."""
        self.ctx.render(template, target, **context)
        chown_postgres(target)

    def render(self) -> None:
        cfg, p = self.cfg, self.ports
        pg_ports = self.require_ports("postgres", MEMBERS, "one per Patroni member")
        rest_ports = self.require_ports("patroni_rest", MEMBERS, "one per Patroni member")
        members = []
        for index, (pg_port, rest_port) in enumerate(zip(pg_ports, rest_ports, strict=True)):
            member_dir = cfg.path("postgres", f"pg{index}")
            member_dir.mkdir(parents=True, exist_ok=True)
            member_dir.chmod(0o700)
            chown_postgres(member_dir)
            members.append({"name": f"pg{index}", "pg_port": pg_port, "rest_port": rest_port})
            self._render_for_postgres(
                "postgres/patroni.yml.j2",
                cfg.conf_dir / f"patroni{index}.yml",
                name=f"pg{index}",
                port_base=cfg.port_base,
                rest_port=rest_port,
                etcd_port=p.etcd_client,
                pg_port=pg_port,
                data_dir=member_dir / "data",
                member_dir=member_dir,
                bin_dir=cfg.tools.postgres_bin,
                secrets=self.secrets.values,
            )
        self.ctx.render(
            "postgres/haproxy.cfg.j2",
            cfg.conf_dir / "haproxy.cfg",
            haproxy_primary=p.haproxy_primary,
            haproxy_stats=p.haproxy_stats,
            members=members,
        )
        bouncer_dir = cfg.path("pgbouncer")
        bouncer_dir.mkdir(parents=True, exist_ok=True)
        chown_postgres(bouncer_dir)
        self._render_for_postgres(
            "postgres/pgbouncer.ini.j2",
            cfg.conf_dir / "pgbouncer.ini",
            pgbouncer_port=p.pgbouncer,
            haproxy_primary=p.haproxy_primary,
            dir=bouncer_dir,
        )
        userlist = bouncer_dir / "userlist.txt"
        # PgBouncer serves the app identities (and the superuser, for its admin console).
        users = {role: self.secrets[password_secret(role)] for role in database_roles().roles}
        users["postgres"] = self.secrets["postgres_superuser"]
        userlist.write_text("".join(f'"{role}" "{password}"\n' for role, password in users.items()))
        userlist.chmod(0o600)
        chown_postgres(userlist)
        if postgres_user():
            # PgBouncer and Patroni run as postgres and read their files from conf/.
            chown_postgres(cfg.conf_dir)

    def programs(self) -> list[Program]:
        cfg, p, s = self.cfg, self.ports, self.cfg.state_dir
        programs = [
            Program(
                "etcd",
                self.name,
                [
                    "etcd",
                    "--name=its-etcd",
                    f"--data-dir={s / 'etcd'}",
                    f"--listen-client-urls=http://{HOST}:{p.etcd_client}",
                    f"--advertise-client-urls=http://{HOST}:{p.etcd_client}",
                    f"--listen-peer-urls=http://{HOST}:{p.etcd_peer}",
                    f"--initial-advertise-peer-urls=http://{HOST}:{p.etcd_peer}",
                    f"--initial-cluster=its-etcd=http://{HOST}:{p.etcd_peer}",
                    "--enable-v2=false",
                ],
            )
        ]
        programs += [
            Program(
                f"patroni{index}",
                self.name,
                [str(cfg.tools.patroni), str(cfg.conf_dir / f"patroni{index}.yml")],
                user=postgres_user(),
                directory=str(s),  # the checkout may not be readable by the postgres user
                stopsignal="INT",
                stopwaitsecs=40,
                environment={"PATH": f"{cfg.tools.postgres_bin}:/usr/bin:/bin"},
            )
            for index in range(MEMBERS)
        ]
        programs += [
            Program("haproxy", self.name, ["haproxy", "-db", "-f", str(cfg.conf_dir / "haproxy.cfg")]),
            Program(
                "pgbouncer",
                self.name,
                ["pgbouncer", str(cfg.conf_dir / "pgbouncer.ini")],
                user=postgres_user(),
                directory=str(s),
            ),
        ]
        return programs

    def start(self) -> None:
        # Patroni needs its DCS answering before it can elect a leader.
        self.ctx.supervisor.start("etcd")
        wait_until("etcd", self.etcd, 30, log=self.ctx.log)
        self.ctx.supervisor.start_group(self.name)

    def etcd(self) -> Health:
        ok, detail = http_ok(url(self.ports.etcd_client, "/health"))
        return Health(ok, {"health": detail}, endpoints(self.ports.etcd_client))

    def members(self) -> dict[str, dict[str, Any]]:
        """Patroni's view of the cluster: each member's role, state and lag."""
        for rest in self.ports.many("patroni_rest"):
            try:
                cluster = httpx.get(url(rest, "/cluster"), timeout=2).json()
            except (httpx.HTTPError, ValueError):
                continue
            return {
                m["name"]: {"role": m["role"], "state": m["state"], "lag": m.get("lag")}
                for m in cluster.get("members", [])
            }
        return {}

    def _replicated(self, through_bouncer: bool) -> Health:
        """One leader, one streaming standby and, once the app role exists, a query through
        PgBouncer."""
        members = self.members()
        leaders = [n for n, m in members.items() if m["role"] == "leader" and m["state"] == "running"]
        streaming = [n for n, m in members.items() if m["role"] != "leader" and m["state"] == "streaming"]
        bouncer = self._query_bouncer() if through_bouncer else None
        healthy = len(leaders) == 1 and len(streaming) == MEMBERS - 1 and bouncer is not False
        p = self.ports
        return Health(
            healthy,
            {"members": members, "primary": leaders[0] if leaders else None, "pgbouncer": bouncer},
            endpoints(p.pgbouncer, p.haproxy_primary, *p.many("postgres")),
        )

    def health(self) -> Health:
        return self._replicated(through_bouncer=True)

    def ready(self) -> Health:
        # The app role behind PgBouncer is created by provisioning, after this wait.
        return self._replicated(through_bouncer=False)

    def status_names(self) -> tuple[str, ...]:
        return ("etcd", "postgres")

    def status(self) -> dict[str, Health]:
        return {"etcd": self.etcd(), "postgres": self.health()}

    def _query_bouncer(self) -> bool:
        try:
            with psycopg.connect(self.role_dsn(database_roles().api), connect_timeout=2) as conn:
                return conn.execute("SELECT 1").fetchone() == (1,)
        except psycopg.Error:
            return False

    def provision(self) -> str:
        """The schema owner and the app identities as login roles, the database owned by the
        owner, then the schema through the one migration entry point, run as the owner."""
        roles = database_roles()
        with psycopg.connect(self.superuser_dsn(), autocommit=True) as conn:
            for role in (roles.owner, *roles.roles):
                exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
                statement = (
                    "ALTER ROLE {} WITH LOGIN PASSWORD {}" if exists else "CREATE ROLE {} LOGIN PASSWORD {}"
                )
                password = sql.Literal(self.secrets[password_secret(role)])
                conn.execute(sql.SQL(statement).format(sql.Identifier(role), password))
            owner, database = sql.Identifier(roles.owner), sql.Identifier(DATABASE)
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone():
                conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(database, owner))
            else:
                conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(database, owner))
        with psycopg.connect(self.superuser_dsn(DATABASE), autocommit=True) as conn:
            # PostgreSQL 15 already keeps CREATE on public from PUBLIC; the owner needs it.
            conn.execute(sql.SQL("GRANT CREATE, USAGE ON SCHEMA public TO {}").format(owner))
        migrate.upgrade(self.role_dsn(roles.owner, through_bouncer=False), "auto")
        with psycopg.connect(self.superuser_dsn(DATABASE)) as conn:
            version = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return f"schema at revision {version[0] if version else '?'}, owned by {roles.owner}"
