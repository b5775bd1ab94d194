"""The app: the API (uvicorn), the YOLO worker and the stream ingest, with the same ITS_*
settings the Helm chart sets, their Vault AppRole identities provisioned by the vault stack.
ITS_APP_RUNTIME=containers (`make up APP=containers`) runs them from the built images as the chart
runs them (infra/local/app_containers.py); the default runs them as host processes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx

from app.common.settings import Settings
from infra.facts.database import database_roles, role_for
from infra.facts.images import images_file
from infra.facts.redis import redis_settings
from infra.images import build, podman
from infra.kernel.health import Health
from infra.kernel.layout import HOST
from infra.kernel.programs import Program
from infra.local import app_containers
from infra.local.secrets import LOCAL_CAMERAS
from infra.local.stacks.base import Stack, endpoints, http_ok, url
from infra.local.stacks.cameras import STREAM_CAMERAS, STREAM_SECRET, stream_url
from infra.local.stacks.postgres import DATABASE

API_IDENTITY = "its-api"
WORKER_IDENTITY = "its-worker"
INGEST_IDENTITY = "its-ingest"
# The rate the local stream cameras are sampled at (frames per second).
STREAM_SAMPLE_FPS = 1.0
MIGRATE_IDENTITY = "its-migrate"


class App(Stack):
    name = "app"
    start_timeout = 180

    @property
    def api_url(self) -> str:
        return url(self.ports.api)

    def environment(self, identity: str) -> dict[str, str]:
        """The ITS_* settings an app identity runs with: the names the Helm chart sets."""
        p = self.ports
        return {
            "ITS_ENVIRONMENT": "local",
            "ITS_DATABASE_URL": f"postgresql://{role_for(identity)}@{HOST}:{p.pgbouncer}/{DATABASE}",
            "ITS_TIMESCALE": "auto",
            "ITS_KAFKA_BOOTSTRAP_SERVERS": ",".join(endpoints(*p.many("kafka_broker"))),
            # The local brokers' listener: SCRAM over plain loopback (the chart sets SASL_SSL).
            # The user name and password come from Vault (its/<identity>/kafka).
            "ITS_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "ITS_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "ITS_REDIS_SENTINELS": ",".join(endpoints(*p.many("sentinel"))),
            "ITS_REDIS_MASTER_NAME": redis_settings().master_name,
            "ITS_MINIO_ENDPOINT": f"{HOST}:{p.minio_api}",
            "ITS_MINIO_SECURE": "false",
            "ITS_VAULT_ADDR": url(p.vault),
            "ITS_VAULT_AUTH_METHOD": "approle",
            "ITS_VAULT_ROLE": identity,
            "ITS_VAULT_ROLE_ID": str(self.secrets.get(f"vault_role_id:{identity}") or ""),
            "ITS_VAULT_SECRET_ID_FILE": str(self.cfg.path("secrets", f"{identity}.secret-id")),
            "ITS_WORKER_METRICS_HOST": HOST,
            "ITS_WORKER_METRICS_PORT": str(p.worker_metrics),
            # The weights the repository (and the worker image) ships: the local object store
            # holds no model.
            "ITS_MODEL_URI": str(Settings.model_fields["model_uri"].default),
            "PYTHONUNBUFFERED": "1",
            "YOLO_OFFLINE": "1",
            "YOLO_CONFIG_DIR": str(self.cfg.path("ultralytics")),
        }

    def ingest_environment(self, replica: int) -> dict[str, str]:
        """Ingest replica `replica` (0: the platform's; 1: the one the handover test starts)."""
        return {
            **self.environment(INGEST_IDENTITY),
            "ITS_INGEST_METRICS_HOST": HOST,
            "ITS_INGEST_METRICS_PORT": str(self.ingest_port(replica)),
            "ITS_INGEST_REPLICA_ID": f"local-ingest-{replica}",
        }

    def ingest_port(self, replica: int) -> int:
        return self.ports.ingest_handover_metrics if replica else self.ports.ingest_metrics

    def ingest_program(self, python: str) -> Program:
        return Program(
            "ingest",
            self.name,
            [python, "-m", "app.ingest"],
            environment=self.ingest_environment(0),
            stopwaitsecs=30,
            startsecs=5,
        )

    def api_command(self, python: str) -> list[str]:
        port = str(self.ports.api)
        return [
            python,
            "-m",
            "uvicorn",
            "app.api.main:app",
            "--host",
            HOST,
            "--port",
            port,
            "--no-access-log",
        ]

    def programs(self) -> list[Program]:
        if app_containers.runtime() == "containers":
            return self.container_programs()
        py = str(self.cfg.tools.python)
        return [
            Program(
                "api",
                self.name,
                self.api_command(py),
                environment=self.environment(API_IDENTITY),
            ),
            Program(
                "worker",
                self.name,
                # In a cluster the worker has GPU nodes of its own; here it shares two cores with
                # the API and the stores, so it runs only on CPU time nobody else wants
                # (SCHED_IDLE: a waking request preempts it at once; under nice 10 every hop of
                # a request still waited behind inference).
                ["chrt", "--idle", "0", py, "-m", "app.worker"],
                environment=self.environment(WORKER_IDENTITY),
                stopwaitsecs=60,
                startsecs=5,
            ),
            self.ingest_program(py),
        ]

    def container_programs(self) -> list[Program]:
        """The API, the worker and the ingest as podman containers of their built images, with
        the dev render's securityContext, env, mounts and limits (infra/local/app_containers.py)."""
        env = {"CONTAINERS_CONF": str(podman.CONTAINERS_CONF), "PATH": os.environ.get("PATH", "")}
        programs = []
        for name, local in (
            ("api", self.environment(API_IDENTITY)),
            ("worker", self.environment(WORKER_IDENTITY)),
            ("ingest", self.ingest_environment(0)),
        ):
            secret_id = self.container_secret_id(local["ITS_VAULT_ROLE"])
            local["ITS_VAULT_SECRET_ID_FILE"] = str(secret_id)
            spec = app_containers.chart_container("Deployment", f"its-camera-ai-{name}")
            # The API on the local port; the others as the chart runs them (the Deployment's
            # command, else the image's).
            command = self.api_command("python") if name == "api" else spec.container.get("command")
            command = app_containers.podman_command(
                f"its-{self.ports.api}-{name}",
                spec,
                build.reference(name),
                local,
                {str(secret_id): str(secret_id)},
                command,
            )
            if name == "worker":  # the same CPU share as the host worker (see programs())
                command = ["chrt", "--idle", "0", *command]
            programs.append(Program(name, self.name, command, environment=env, stopwaitsecs=60, startsecs=5))
        return programs

    def run_migration_job(self) -> str:
        """The migration Job's own command, in the API image, as the dev render runs it (its
        identity logs in to Vault and applies the migrations; here the schema is already at
        head, so it proves the Job's path, not a first migration)."""
        job = app_containers.chart_container("Job", "its-camera-ai-migrate")
        local = self.environment(MIGRATE_IDENTITY)
        # The schema owner goes straight to the primary, as the local migration does: the local
        # PgBouncer admits the app roles only.
        owner = database_roles().owner
        local["ITS_DATABASE_URL"] = f"postgresql://{owner}@{HOST}:{self.ports.haproxy_primary}/{DATABASE}"
        secret_id = self.container_secret_id(MIGRATE_IDENTITY)
        local["ITS_VAULT_SECRET_ID_FILE"] = str(secret_id)
        name = f"its-{self.ports.api}-migrate"
        command = app_containers.podman_command(
            name,
            job,
            build.reference("api"),
            local,
            {str(secret_id): str(secret_id)},
            job.container["command"],
        )
        return podman.run(command).strip().splitlines()[-1]

    def container_secret_id(self, identity: str) -> Path:
        """The identity's AppRole secret-id, readable by the image's user (uid 10001) only."""
        source = self.cfg.path("secrets", f"{identity}.secret-id")
        target = self.cfg.path("secrets", "containers", f"{identity}.secret-id")
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            spec = app_containers.chart_container("Deployment", "its-camera-ai-api").pod["securityContext"]
            os.chown(target, int(spec["runAsUser"]), int(spec["runAsGroup"]))
            target.chmod(0o400)
        return target

    def start(self) -> None:
        if app_containers.runtime() == "containers":
            for image in images_file().images:  # cached by the hash of their inputs
                print(f"    {build.build(image).line()}", flush=True)
            print(f"    migration Job (container): {self.run_migration_job()}", flush=True)
        # The app's Vault identities exist only now: re-render and reload its programs first.
        self.ctx.reload_programs()
        super().start()

    def provision(self) -> str:
        """The cameras the local camera keys are bound to, and the test cameras that stream,
        registered through the API."""
        for camera in LOCAL_CAMERAS:
            self.register({"id": camera, "name": f"Local camera {camera}"})
        for camera in STREAM_CAMERAS:
            self.register(
                {
                    "id": camera,
                    "name": f"Local streaming camera {camera}",
                    "stream_url": stream_url(self.ports.camera_rtsp, camera),
                    "stream_secret": STREAM_SECRET,
                    "sample_fps": STREAM_SAMPLE_FPS,
                }
            )
        return (
            f"cameras {', '.join(LOCAL_CAMERAS)} and streaming {', '.join(STREAM_CAMERAS)} registered; "
            f"API keys in {self.secrets.credentials_file}"
        )

    def register(self, camera: dict[str, object]) -> None:
        """Register a camera with the operator key (already registered: left as it is)."""
        response = httpx.post(
            f"{self.api_url}/v1/cameras",
            json=camera,
            headers={"X-API-Key": self.secrets.api_credentials().operator},
            timeout=10,
        )
        if response.status_code not in (201, 409):
            raise RuntimeError(f"registering {camera['id']}: {response.status_code} {response.text}")

    def api(self) -> Health:
        ok, detail = http_ok(f"{self.api_url}/readyz", timeout=5)
        # Where the clients (smoke check, tests, load tests, a person with curl) find their keys.
        credentials = str(self.secrets.credentials_file)
        return Health(ok, {"readyz": detail, "credentials_file": credentials}, endpoints(self.ports.api))

    def worker(self) -> Health:
        ok, detail = http_ok(url(self.ports.worker_metrics, "/healthz"))
        return Health(ok, {"healthz": detail}, endpoints(self.ports.worker_metrics))

    def ingest(self) -> Health:
        port = self.ingest_port(0)
        ok, detail = http_ok(url(port, "/healthz"))
        return Health(ok, {"healthz": detail}, endpoints(port))

    def health(self) -> Health:
        api, worker, ingest = self.api(), self.worker(), self.ingest()
        return Health(
            api.healthy and worker.healthy and ingest.healthy,
            {"api": api.detail, "worker": worker.detail, "ingest": ingest.detail},
            api.endpoints + worker.endpoints + ingest.endpoints,
        )

    def status_names(self) -> tuple[str, ...]:
        return ("api", "worker", "ingest")

    def status(self) -> dict[str, Health]:
        return {"api": self.api(), "worker": self.worker(), "ingest": self.ingest()}
