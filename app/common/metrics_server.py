"""The small HTTP server a service without a web framework (the worker, the ingest) serves its
Prometheus metrics and /healthz from."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import make_wsgi_app


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


def serve(
    host: str,
    port: int,
    heartbeat: Callable[[], float],
    max_silence: float = 120,
    stalled: bytes = b"main loop stalled\n",
) -> None:
    """Serve /metrics and /healthz (healthy while the service's main loop ticked recently)."""
    metrics_app = make_wsgi_app()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz":
            alive = time.monotonic() - heartbeat() < max_silence
            start_response("200 OK" if alive else "503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"ok\n" if alive else stalled]
        result: Iterable[bytes] = metrics_app(environ, start_response)
        return result

    server = make_server(host, port, app, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, daemon=True, name="metrics").start()
