"""PostgreSQL base backups to MinIO and restores from them (`python -m infra.local backup`,
`python -m infra.local restore`).

A backup is `pg_basebackup` from the current primary (through HAProxy) with the WAL it needs
streamed alongside, so each backup restores on its own: `postgres/base/<stamp>/base.tar.gz` and
`pg_wal.tar.gz` in the backups bucket, written as the backup identity (its policy in
infrastructure/minio/policies). Taken hourly it keeps the RPO at one hour; in a cluster the
its-databases chart does the same with CloudNativePG's ScheduledBackup and continuous WAL archive.

A restore downloads the newest backup into a new data directory and starts a standalone
PostgreSQL on it: the path an operator takes when both members are lost.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg
from minio import Minio

from app.common.settings import Settings
from infra.facts.buckets import buckets
from infra.kernel.layout import HOST
from infra.kernel.programs import postgres_user
from infra.local.config import LocalPlatformConfig
from infra.local.secrets import PlatformSecrets

BUCKET = buckets().buckets.backups.name
PREFIX = "postgres/base/"
BACKUP_USER = buckets().users.backup


@dataclass(frozen=True)
class Backup:
    key: str  # postgres/base/<stamp>/
    started_at: str
    seconds: float
    bytes: int


@dataclass(frozen=True)
class Restored:
    data_dir: Path
    port: int
    backup: str
    seconds: float  # from the start of the download until the server answers queries

    def dsn(self, secrets: PlatformSecrets, dbname: str = "its") -> str:
        return f"postgresql://postgres:{secrets['postgres_superuser']}@{HOST}:{self.port}/{dbname}"


def _client(cfg: LocalPlatformConfig, secrets: PlatformSecrets) -> Minio:
    # The region is given, as the app does: the backup identity's policy grants object and list
    # access only, not the bucket-location lookup the client would otherwise make.
    return Minio(
        f"{HOST}:{cfg.ports.minio_api}",
        BACKUP_USER.name,
        secrets[BACKUP_USER.secret_name],
        secure=False,
        region=Settings.model_fields["minio_region"].default,
    )


def backup(cfg: LocalPlatformConfig, secrets: PlatformSecrets) -> Backup:
    started = time.monotonic()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    key = f"{PREFIX}{stamp}/"
    with tempfile.TemporaryDirectory(prefix="its-basebackup-") as tmp:
        subprocess.run(
            [
                str(cfg.tools.postgres_bin / "pg_basebackup"),
                f"--host={HOST}",
                f"--port={cfg.ports.haproxy_primary}",
                "--username=replicator",
                f"--pgdata={tmp}/out",
                "--format=tar",
                "--gzip",
                "--wal-method=stream",
                "--checkpoint=fast",
                f"--label=its-{stamp}",
                "--no-password",
            ],
            env={**os.environ, "PGPASSWORD": secrets["postgres_replication"]},
            check=True,
            capture_output=True,
            text=True,
        )
        client = _client(cfg, secrets)
        size = 0
        for part in sorted(Path(tmp, "out").iterdir()):
            size += part.stat().st_size
            client.fput_object(BUCKET, key + part.name, str(part))
        meta = {"started_at": stamp, "parts": sorted(p.name for p in Path(tmp, "out").iterdir())}
        manifest = Path(tmp, "manifest.json")
        manifest.write_text(json.dumps(meta))
        # The manifest goes last: a backup without one was interrupted and is never restored.
        client.fput_object(BUCKET, key + "manifest.json", str(manifest))
    return Backup(key, stamp, time.monotonic() - started, size)


def latest(cfg: LocalPlatformConfig, secrets: PlatformSecrets) -> str:
    client = _client(cfg, secrets)
    complete = [
        obj.object_name.removesuffix("manifest.json")
        for obj in client.list_objects(BUCKET, prefix=PREFIX, recursive=True)
        if obj.object_name and obj.object_name.endswith("/manifest.json")
    ]
    if not complete:
        raise RuntimeError(f"no complete backup under s3://{BUCKET}/{PREFIX}")
    return str(max(complete))


def restore(cfg: LocalPlatformConfig, secrets: PlatformSecrets, data_dir: Path, port: int) -> Restored:
    """The newest complete backup into data_dir (must not exist), served on port."""
    started = time.monotonic()
    key = latest(cfg, secrets)
    client = _client(cfg, secrets)
    data_dir.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="its-restore-") as tmp:
        for part in ("base.tar.gz", "pg_wal.tar.gz"):
            client.fget_object(BUCKET, key + part, f"{tmp}/{part}")
        with tarfile.open(f"{tmp}/base.tar.gz") as base:
            base.extractall(data_dir, filter="data")
        with tarfile.open(f"{tmp}/pg_wal.tar.gz") as wal:
            wal.extractall(data_dir / "pg_wal", filter="data")
    # Patroni's settings came along in the data directory; the restored server is alone, so
    # it must not wait for a synchronous standby or look for its old replication peers.
    for leftover in ("standby.signal", "recovery.signal", "postmaster.pid"):
        (data_dir / leftover).unlink(missing_ok=True)
    user = postgres_user()
    if user:
        shutil.chown(data_dir.parent, user)
        for path in [data_dir, *data_dir.rglob("*")]:
            shutil.chown(path, user, user)
    data_dir.chmod(0o700)
    log = data_dir.parent / "restore.log"
    subprocess.run(
        [
            str(cfg.tools.postgres_bin / "pg_ctl"),
            "start",
            "--wait",
            "--timeout=600",
            f"--pgdata={data_dir}",
            f"--log={log}",
            "-o",
            f"-c port={port} -c listen_addresses={HOST} -c unix_socket_directories={data_dir.parent} "
            f"-c hba_file={data_dir}/pg_hba.conf -c ident_file={data_dir}/pg_ident.conf "
            "-c synchronous_standby_names= -c archive_mode=off -c primary_conninfo= "
            "-c hot_standby=on -c cluster_name=its-restore",
        ],
        user=user,
        check=True,
        capture_output=True,
        text=True,
    )
    restored = Restored(data_dir, port, key, 0.0)
    with psycopg.connect(restored.dsn(secrets), connect_timeout=10) as conn:
        conn.execute("SELECT 1").fetchone()
    return Restored(data_dir, port, key, time.monotonic() - started)


def stop(cfg: LocalPlatformConfig, data_dir: Path) -> None:
    subprocess.run(
        [str(cfg.tools.postgres_bin / "pg_ctl"), "stop", "--mode=fast", f"--pgdata={data_dir}"],
        user=postgres_user(),
        check=False,
        capture_output=True,
    )


def describe(item: Backup | Restored) -> str:
    return json.dumps({k: str(v) for k, v in asdict(item).items()})
