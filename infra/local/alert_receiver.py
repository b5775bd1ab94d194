"""The local platform's Alertmanager webhook receiver: every notification Alertmanager posts is
appended, with the receiver's name and the time it arrived, as one JSON line to a file under
the state directory; a GET answers with those lines as one JSON array (`?since=<epoch seconds>`
keeps the ones received since then).

Every request but the readiness probe carries `Authorization: Bearer <token>`, the token the
platform generated (its file is given with --token-file, never on the command line): Alertmanager
sends it from the same file (`http_config.authorization.credentials_file`), the typed reader
(infra/local/alerts.py) reads it there. A request without it is refused with 401 before its
body is read, so no client that cannot read the state directory can post a page or read one.

Locally nothing outside the machine is reachable, so this is where `pages` and `tickets` go:
tests and failover drills read it (infra/local/alerts.py) to prove an alert was delivered.
Standard library only: it runs beside the servers, supervised like them, on loopback.

    python -m infra.local.alert_receiver --port P --log FILE --token-file FILE
"""

from __future__ import annotations

import argparse
import hmac
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


def read_token(path: Path) -> str:
    token = path.read_text().strip()
    if not token:
        raise SystemExit(f"{path}: the alert receiver's token file is empty")
    return token


def handler_for(journal: Journal, token: str) -> type[BaseHTTPRequestHandler]:
    expected = f"Bearer {token}".encode()

    class Handler(BaseHTTPRequestHandler):
        def _authenticated(self) -> bool:
            presented = (self.headers.get("Authorization") or "").encode()
            if hmac.compare_digest(presented, expected):
                return True
            # Refused before the body is read; the connection closes so an unread body cannot
            # be taken for the next request.
            self.close_connection = True
            self._answer(401, {"error": "Authorization: Bearer <the platform's token> required"})
            return False

        def do_POST(self) -> None:
            if not self._authenticated():
                return
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
            if not self._authenticated():
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
            if status == 401:
                self.send_header("WWW-Authenticate", "Bearer")
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
    parser.add_argument("--token-file", type=Path, required=True, help="the bearer token clients send")
    args = parser.parse_args(argv)
    handler = handler_for(Journal(args.log), read_token(args.token_file))
    server = ThreadingHTTPServer((HOST, args.port), handler)
    server.serve_forever()


if __name__ == "__main__":
    main()
