"""The API's Prometheus metrics (the alert rules in infrastructure/prometheus use these names)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import Request, Response
from prometheus_client import Counter, Histogram
from starlette.routing import Match

REQUESTS = Counter("its_api_requests_total", "API requests", ["method", "route", "status"])
LATENCY = Histogram(
    "its_api_request_duration_seconds",
    "API request latency",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5),
)
FRAMES_ACCEPTED = Counter("its_api_frames_accepted_total", "Frames accepted (202)")


def _route_template(request: Request) -> str:
    # The template, not the path, keeps the label set small.
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match == Match.FULL:
            return str(getattr(route, "path", request.url.path))
    return "unmatched"


async def record(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    started = time.perf_counter()
    route = _route_template(request)
    status = "500"
    try:
        response = await call_next(request)
        status = str(response.status_code)
        return response
    finally:
        REQUESTS.labels(request.method, route, status).inc()
        LATENCY.labels(request.method, route).observe(time.perf_counter() - started)
