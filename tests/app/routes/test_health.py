"""/healthz needs no key and no backend; a fault anywhere says "internal error" and no more."""

from __future__ import annotations

from fastapi import FastAPI

from tests.app.asgi import call


def test_healthz_answers_without_a_key(api: FastAPI) -> None:
    answer = call(api, "GET", "/healthz")
    assert (answer.status, answer.json()) == (200, {"status": "ok"})


def test_a_server_fault_names_nothing_of_its_cause(api: FastAPI) -> None:
    # No lifespan ran, so /readyz finds no state: an unhandled AttributeError inside the app.
    answer = call(api, "GET", "/readyz", raise_app_exceptions=False)
    assert answer.status == 500
    assert answer.json() == {"detail": "internal error"}
