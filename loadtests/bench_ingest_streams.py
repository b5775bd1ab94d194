"""Benchmark: the ingest's stream reader against FFmpeg's own decode of the same stream.

`python -m loadtests.bench_ingest_streams [--width W --height H --fps F --seconds S --sample-fps R]`
needs no platform: it starts the project's test camera server (GStreamer, infra/local/
camera_server.py) on a loopback port of its own, serving a clip made from the sample street
scenes at W x H and F frames/s, then in the same run, one after the other, for S seconds each:
1. the ingest's reader (app/ingest/reader.py: PyAV demux and decode on one decoder thread,
   sampling at R frames/s, JPEG encoding of each sample), its CPU seconds from this process;
2. the baseline: Debian's ffmpeg decoding the same stream (`-rtsp_transport tcp -threads 1 -i URL
   -f null -`), its CPU seconds from the child's rusage.
It prints decoded frames per CPU second for both, their ratio, and the cameras one core holds at
R frames/s sampled from such a stream (1 / the reader's CPU seconds per stream second). The
camera server's own encoding is a separate process and counted in neither.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import tempfile
import time
from pathlib import Path

from app.ingest import metrics
from app.ingest.reader import ReaderConfig, SampledFrame, StreamReader, StreamSource
from infra.kernel.ports import free_port
from infra.local.stacks.cameras import SAMPLES, SERVER, clip_frames

CAMERA = "bench-cam"
USER = "bench"


def process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def start_server(
    workdir: Path, size: tuple[int, int], fps: int, bitrate: int
) -> tuple[subprocess.Popen[bytes], str]:
    scene = sorted(SAMPLES.glob("street-*.jpg"))[0]
    clip_frames(scene, workdir / "frames" / CAMERA, size)
    password = workdir / "password"
    password.write_text("bench-password")
    port = free_port()
    server = subprocess.Popen(
        [
            "/usr/bin/python3",
            str(SERVER),
            "--port",
            str(port),
            "--frames",
            str(workdir / "frames"),
            "--fps",
            str(fps),
            "--bitrate",
            str(bitrate),
            "--user",
            USER,
            "--password-file",
            str(password),
            "--mount",
            CAMERA,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert server.stdout is not None
    line = server.stdout.readline().decode()
    if "camera server on" not in line:
        raise SystemExit(f"camera server did not start: {line}")
    return server, f"rtsp://127.0.0.1:{port}/{CAMERA}"


def run_reader(url: str, sample_fps: float, seconds: float) -> tuple[int, int, float]:
    """Frames decoded, frames sampled and CPU seconds of the ingest's reader over `seconds`."""
    sampled: list[SampledFrame] = []

    def deliver(frame: SampledFrame) -> bool:
        sampled.append(frame)
        return True

    config = ReaderConfig(
        read_timeout=5, reconnect_min=0.5, reconnect_max=5, jpeg_quality=85, decoder_threads=1
    )
    reader = StreamReader(
        StreamSource(CAMERA, url, "bench", sample_fps),
        config,
        lambda _path: (USER, "bench-password"),
        deliver,
    )
    decoded = metrics.FRAMES_READ.labels(CAMERA)
    reader.start()
    # Measure from the first decoded frame on, as the baseline's clock starts at its first frame too.
    deadline = time.monotonic() + 30
    while decoded._value.get() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    if decoded._value.get() == 0:
        reader.stop()
        raise SystemExit(f"the reader decoded no frame of {url} within 30 s: nothing to measure")
    frames0, samples0, cpu0 = decoded._value.get(), len(sampled), process_cpu()
    time.sleep(seconds)
    frames1, samples1, cpu1 = decoded._value.get(), len(sampled), process_cpu()
    reader.stop()
    reader.join(10)
    return int(frames1 - frames0), samples1 - samples0, cpu1 - cpu0


def run_ffmpeg(url: str, seconds: float) -> tuple[int, float]:
    """Frames ffmpeg decoded and its CPU seconds over `seconds` of stream (plus its connect)."""
    login = url.replace("rtsp://", f"rtsp://{USER}:bench-password@")
    before = children_cpu()
    result = subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-nostats",
            "-rtsp_transport",
            "tcp",
            "-threads",
            "1",
            "-i",
            login,
            "-t",
            str(seconds),
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    frames = [int(m) for m in re.findall(r"frame=\s*(\d+)", result.stderr)]
    if not frames:
        raise SystemExit(f"ffmpeg decoded nothing: {result.stderr[-500:]}")
    return frames[-1], children_cpu() - before


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--bitrate", type=int, default=2000, help="kbit/s of the camera's H.264")
    parser.add_argument("--sample-fps", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="its-bench-streams-") as work:
        server, url = start_server(Path(work), (args.width, args.height), args.fps, args.bitrate)
        try:
            frames, samples, cpu = run_reader(url, args.sample_fps, args.seconds)
            ff_frames, ff_cpu = run_ffmpeg(url, args.seconds)
        finally:
            server.terminate()
            server.wait(10)
    ours, theirs = frames / cpu, ff_frames / ff_cpu
    stream_cpu = cpu / args.seconds  # CPU seconds per second of one camera's stream
    print(
        f"stream: H.264 {args.width}x{args.height} at {args.fps} frames/s, {args.bitrate} kbit/s, "
        f"sampled at {args.sample_fps} frames/s, {args.seconds:.0f} s each; load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print(
        f"ingest reader: {frames} frames decoded, {samples} sampled and JPEG-encoded, {cpu:.2f} CPU s: "
        f"{ours:.1f} decoded frames/s per core"
    )
    print(
        f"ffmpeg -threads 1 (baseline): {ff_frames} frames decoded, {ff_cpu:.2f} CPU s: "
        f"{theirs:.1f} frames/s per core"
    )
    print(f"ratio ingest / ffmpeg: {ours / theirs:.2f}")
    print(
        f"cameras per core at {args.sample_fps} frame/s sampled from such a stream: {1 / stream_cpu:.1f} "
        f"({stream_cpu:.3f} CPU s per stream second)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
