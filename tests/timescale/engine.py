"""A TimescaleDB engine for tests: PGlite (PostgreSQL 17 in WASM) with the TimescaleDB
extension, served on a loopback port by tools/timescale/server.mjs under Node.

What this engine is not: it is one backend shared by every connection and serves one
connection at a time (others queue; the server resets the session between clients, as a new
backend would start clean). COPY aborts it, so loads go through `insert_detections`
(INSERT ... SELECT FROM unnest, at most 1,000 rows a statement). Connect with `connect()`:
no statement cache, and a bounded close.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import asyncpg

from infra.facts.paths import REPO_ROOT

ENGINE_DIR = REPO_ROOT / "tools" / "timescale"
SERVER = ENGINE_DIR / "server.mjs"
READY = re.compile(r"^timescale-engine ready host=(\S+) port=(\d+) postgres=(\S+) timescaledb=(\S+)$")
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
BATCH_ROWS = 1_000

Detection = tuple[object, ...]


class EngineError(RuntimeError):
    """The engine did not start or stop as expected."""


@dataclass
class TimescaleEngine:
    """A running engine with its own data directory, removed when it stops."""

    host: str = ""
    port: int = 0
    postgres_version: str = ""
    timescaledb_version: str = ""
    data_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="its-timescale-")))
    _process: subprocess.Popen[str] | None = None
    _stderr: list[str] = field(default_factory=list)

    @property
    def dsn(self) -> str:
        # PGlite has one database whatever the name; TLS is not spoken on this socket.
        return f"postgresql://postgres@{self.host}:{self.port}/postgres?sslmode=disable"

    def start(self, *, create_extension: bool = False) -> TimescaleEngine:
        if not (ENGINE_DIR / "node_modules").exists():
            raise EngineError("tools/timescale/node_modules is missing: run `tools/install.sh timescale`")
        node = shutil.which("node")
        if node is None:
            raise EngineError("node is not on PATH")
        command = [node, str(SERVER), "--port", "0", "--data-dir", str(self.data_dir / "pgdata")]
        if not create_extension:
            command.append("--no-extension")  # the migrations create it, as on a real server
        self._process = subprocess.Popen(
            command, cwd=ENGINE_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert self._process.stdout is not None and self._process.stderr is not None
        threading.Thread(target=self._drain, args=(self._process.stderr,), daemon=True).start()
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(self._readline()), daemon=True)
        reader.start()
        reader.join(START_TIMEOUT_S)
        match = READY.match(lines[0].strip()) if lines else None
        if match is None:
            self.stop()
            raise EngineError(f"no ready line within {START_TIMEOUT_S:.0f}s: {lines} {self._stderr[-20:]}")
        self.host, self.port = match.group(1), int(match.group(2))
        self.postgres_version, self.timescaledb_version = match.group(3), match.group(4)
        return self

    def _readline(self) -> str:
        assert self._process is not None and self._process.stdout is not None
        return self._process.stdout.readline()

    def _drain(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self._stderr.append(str(line).rstrip())

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> int | None:
        """SIGTERM, then wait for a clean exit; returns the exit code (None if never started)."""
        process, self._process = self._process, None
        code: int | None = None
        if process is not None:
            process.terminate()
            try:
                code = process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise EngineError(f"engine ignored SIGTERM for {STOP_TIMEOUT_S:.0f}s") from None
        shutil.rmtree(self.data_dir, ignore_errors=True)
        return code

    @property
    def log(self) -> list[str]:
        return list(self._stderr)

    def __enter__(self) -> TimescaleEngine:
        return self.start()

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()


async def connect(dsn: str) -> asyncpg.Connection:
    """One connection; the statement cache is off so nothing depends on server-side names."""
    return await asyncpg.connect(dsn, statement_cache_size=0, timeout=30)


async def close(connection: asyncpg.Connection) -> None:
    try:
        await connection.close(timeout=5)
    except TimeoutError:
        connection.terminate()


INSERT_DETECTIONS = """
INSERT INTO detections (ts, camera_id, frame_id, class, confidence, x1, y1, x2, y2)
SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::uuid[], $4::text[], $5::real[],
                     $6::real[], $7::real[], $8::real[], $9::real[])
"""


async def insert_detections(connection: asyncpg.Connection, rows: Sequence[Detection]) -> float:
    """Insert rows in statements of at most BATCH_ROWS; returns the seconds it took.

    The same statement for both paths: on the plain path its statement trigger keeps
    vehicle_counts_1m, on Timescale the continuous aggregate is refreshed afterwards.
    """
    started = time.perf_counter()
    for offset in range(0, len(rows), BATCH_ROWS):
        batch = rows[offset : offset + BATCH_ROWS]
        columns = [list(column) for column in zip(*batch, strict=True)]
        await connection.execute(INSERT_DETECTIONS, *columns)
    return time.perf_counter() - started
