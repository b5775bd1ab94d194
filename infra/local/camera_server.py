"""The local test cameras: GStreamer's RTSP server on loopback, one mount per simulated camera,
each a looping H.264 stream encoded live from a directory of JPEG frames, plus a mount whose
H.264 bytes are randomly corrupted (for the decode-error test). Every mount asks for the
cameras' login (RTSP basic authentication), which the ingest reads from Vault. The frames are the project's
own (infra/local/stacks/cameras.py makes them from the sample street scenes).

Run by Debian's /usr/bin/python3 (python3-gi loads only there), so it imports nothing of the
project: `python3 camera_server.py --port P --frames DIR --mount NAME ... --garbage NAME
--user U --password-file F`. Stopped by SIGTERM (supervisord).
"""

from __future__ import annotations

import argparse
import signal
from pathlib import Path

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402 - after require_version

ROLE = "camera-client"


def launch_line(frames: Path, fps: int, corrupt: float, bitrate: int) -> str:
    """A looping clip, encoded as a camera does (H.264, a key frame every second); `corrupt` is
    breakmydata's probability of changing each byte of the encoded stream (0: a clean stream)."""
    source = (
        f"multifilesrc location={frames}/frame-%05d.jpg loop=true caps=image/jpeg,framerate={fps}/1 "
        "! jpegdec ! videoconvert "
        f"! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={fps} bitrate={bitrate} ! h264parse"
    )
    damage = f" ! breakmydata probability={corrupt} seed=7" if corrupt > 0 else ""
    return f"( {source}{damage} ! rtph264pay name=pay0 pt=96 config-interval=1 )"


def factory(launch: str) -> GstRtspServer.RTSPMediaFactory:
    made = GstRtspServer.RTSPMediaFactory()
    made.set_launch(launch)
    made.set_shared(True)  # one encoder per mount, however many readers (two ingest replicas)
    made.add_role_from_structure(
        Gst.Structure.new_from_string(
            f"{ROLE}, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
        )
    )
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--frames", type=Path, required=True, help="one directory of frames per mount")
    parser.add_argument("--fps", type=int, default=5)
    parser.add_argument("--mount", action="append", default=[], help="a clean camera mount")
    parser.add_argument("--garbage", action="append", default=[], help="a corrupted camera mount")
    parser.add_argument("--corrupt", type=float, default=0.00002)
    parser.add_argument("--bitrate", type=int, default=400, help="kbit/s of the H.264 encoder")
    parser.add_argument("--user", required=True)
    parser.add_argument("--password-file", type=Path, required=True)
    args = parser.parse_args()
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string("media.factory.role", ROLE)
    basic = GstRtspServer.RTSPAuth.make_basic(args.user, args.password_file.read_text().strip())
    auth.add_basic(basic, token)
    server.set_auth(auth)
    mounts = server.get_mount_points()
    for name in args.mount:
        mounts.add_factory(f"/{name}", factory(launch_line(args.frames / name, args.fps, 0, args.bitrate)))
    for name in args.garbage:
        mounts.add_factory(
            f"/{name}", factory(launch_line(args.frames / name, args.fps, args.corrupt, args.bitrate))
        )
    if server.attach(None) == 0:
        raise SystemExit(f"camera server: cannot listen on 127.0.0.1:{args.port}")
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, lambda: loop.quit() or False)
    print(
        f"camera server on rtsp://127.0.0.1:{args.port}: {', '.join(args.mount + args.garbage)}", flush=True
    )
    loop.run()


if __name__ == "__main__":
    main()
