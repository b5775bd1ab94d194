"""The test cameras: cameras that stream, as a traffic team's do. GStreamer's RTSP server
(infra/local/camera_server.py, run by Debian's python3 with python3-gi) serves one looping H.264
stream per simulated camera on loopback, made from the project's sample street scenes animated
(a slow pan and zoom, so every frame differs), and one stream whose bytes are corrupted. Every
mount asks for a login; the password is generated here and the vault stack writes it to the
Vault path the cameras reference (their stream_secret), so the ingest's path to a real camera's
credentials is the one it takes here. The app stack registers the cameras with their URLs."""

from __future__ import annotations

import socket
from pathlib import Path

from PIL import Image

from infra.kernel.health import Health
from infra.kernel.layout import HOST
from infra.kernel.programs import Program
from infra.local.stacks.base import Stack, endpoints

SERVER = Path(__file__).resolve().parent.parent / "camera_server.py"
SAMPLES = Path(__file__).resolve().parents[3] / "app" / "worker" / "samples"
# Cameras registered at `up`, each a mount of its own, and the corrupted mount (registered by the
# decode-error test, not at `up`: it would read degraded on every developer's platform).
STREAM_CAMERAS = ("local-stream-1", "local-stream-2")
GARBAGE_CAMERA = "local-stream-garbage"
STREAM_USER = "its-local-camera"
STREAM_SECRET = "its/streams/local-cameras"  # noqa: S105 - a Vault path, not a password
STREAM_PASSWORD_SECRET = "camera_rtsp_password"  # noqa: S105 - the generated secret's name
# The clip: CLIP_FRAMES frames at CLIP_FPS, looped; the ingest samples it at its own rate.
CLIP_FPS = 5
CLIP_FRAMES = 40
CLIP_SIDE = 320  # the sample scenes' size (the model was trained on 320 px images)


def stream_url(port: int, camera: str) -> str:
    """The URL a test camera is registered with: no credentials (they are in Vault)."""
    return f"rtsp://{HOST}:{port}/{camera}"


def clip_frames(scene: Path, target: Path, size: tuple[int, int] = (CLIP_SIDE, CLIP_SIDE)) -> None:
    """A looping pan and zoom over one scene: out to the right and back, so the loop is seamless."""
    if (target / ".complete").exists():
        return
    target.mkdir(parents=True, exist_ok=True)
    width, height = size
    with Image.open(scene) as opened:
        image = opened.convert("RGB").resize((width * 5 // 4, height * 5 // 4))
    travel_x, travel_y = image.width - width, image.height - height
    half = CLIP_FRAMES // 2
    for index in range(CLIP_FRAMES):
        step = index if index < half else CLIP_FRAMES - index
        x, y = travel_x * step // half, travel_y * step // (2 * half)
        image.crop((x, y, x + width, y + height)).save(target / f"frame-{index:05d}.jpg", quality=90)
    (target / ".complete").touch()


class Cameras(Stack):
    name = "cameras"
    start_timeout = 30
    generated_secrets = (STREAM_PASSWORD_SECRET,)

    @property
    def frames_dir(self) -> Path:
        return self.cfg.path("cameras", "frames")

    @property
    def password_file(self) -> Path:
        return self.cfg.path("secrets", "camera-rtsp.password")

    def stream_url(self, camera: str) -> str:
        return stream_url(self.ports.camera_rtsp, camera)

    def render(self) -> None:
        scenes = sorted(SAMPLES.glob("street-*.jpg"))
        for index, camera in enumerate((*STREAM_CAMERAS, GARBAGE_CAMERA)):
            clip_frames(scenes[index % len(scenes)], self.frames_dir / camera)
        self.password_file.parent.mkdir(parents=True, exist_ok=True)
        self.password_file.write_text(str(self.secrets[STREAM_PASSWORD_SECRET]))
        self.password_file.chmod(0o600)

    def programs(self) -> list[Program]:
        command = [
            "/usr/bin/python3",
            str(SERVER),
            "--port",
            str(self.ports.camera_rtsp),
            "--frames",
            str(self.frames_dir),
            "--fps",
            str(CLIP_FPS),
            "--user",
            STREAM_USER,
            "--password-file",
            str(self.password_file),
            "--garbage",
            GARBAGE_CAMERA,
        ]
        for camera in STREAM_CAMERAS:
            command += ["--mount", camera]
        return [Program("camera-server", self.name, command, environment={"PYTHONUNBUFFERED": "1"})]

    def health(self) -> Health:
        """The server answers RTSP OPTIONS (it needs no login)."""
        port = self.ports.camera_rtsp
        try:
            with socket.create_connection((HOST, port), timeout=2) as conn:
                conn.sendall(f"OPTIONS rtsp://{HOST}:{port}/ RTSP/1.0\r\nCSeq: 1\r\n\r\n".encode())
                answer = conn.recv(200).decode(errors="replace").splitlines()[0]
        except (OSError, IndexError) as error:
            return Health(False, {"rtsp": type(error).__name__}, endpoints(port))
        mounts = [self.stream_url(camera) for camera in (*STREAM_CAMERAS, GARBAGE_CAMERA)]
        return Health(answer.startswith("RTSP/1.0 200"), {"rtsp": answer, "mounts": mounts}, endpoints(port))
