"""The local platform's Alertmanager webhook receiver: every notification Alertmanager posts is
appended, with the receiver's name and the time it arrived, as one JSON line to a file under
the state directory; a GET answers with those lines as one JSON array (`?since=<epoch seconds>`
keeps the ones received since then).

Locally nothing outside the machine is reachable, so this is where `pages` and `tickets` go:
tests and failover drills read it (infra/local/alerts.py) to prove an alert was delivered.
Standard library only: it runs beside the servers, supervised like them, on loopback.

    python -m infra.local.alert_receiver --port P --log FILE
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from infra.kernel.layout import HOST

# Alertmanager's notifications are a few kB; anything far larger is not one of them.
MAX_BODY_BYTES = 1024 * 1024


class Journal:
    """The JSON-lines file: appended under a lock (requests are served on threads), read whole
    on a GET so what was recorded survives a restart of the receiver."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)

    def append(self, receiver: str, notification: Any) -> None:
        record = {"received_at": time.time(), "receiver": receiver, "notification": notification}
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with self.lock, self.path.open("a") as out:
            out.write(line)

    def since(self, since: float) -> list[Any]:
        with self.lock:
            lines = self.path.read_text().splitlines()
        records = [json.loads(line) for line in lines if line]
        return [record for record in records if record["received_at"] >= since]


def handler_for(journal: Journal) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            # The path names the receiver: Alertmanager's `pages` posts to /pages, and so on.
            receiver = urlsplit(self.path).path.strip("/")
            length = int(self.headers.get("Content-Length") or 0)
            if not receiver or not 0 < length <= MAX_BODY_BYTES:
                self._answer(400, {"error": "POST /<receiver> with a JSON body up to 1 MiB"})
                return
            try:
                notification = json.loads(self.rfile.read(length))
            except ValueError:
                self._answer(400, {"error": "body is not JSON"})
                return
            journal.append(receiver, notification)
            self._answer(200, {"recorded": receiver})

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/-/ready":
                self._answer(200, {"ready": True})
                return
            try:
                since = float(parse_qs(url.query).get("since", ["0"])[0])
            except ValueError:
                self._answer(400, {"error": "since must be seconds since the epoch"})
                return
            self._answer(200, journal.since(since))

        def _answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return None  # the journal is the record; supervisord's log stays for errors

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", type=Path, required=True, help="the JSON-lines file")
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer((HOST, args.port), handler_for(Journal(args.log)))
    server.serve_forever()


if __name__ == "__main__":
    main()
