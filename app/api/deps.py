"""Shared dependencies: the app state, the caller (verified by the guard) and what it may do."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader

from app.api.state import AppState
from app.common.apikeys import ApiKeyRecord, Role

# Documents the header in the OpenAPI schema (and the docs' Authorize button); the check itself
# is the guard's, before any body is read (app/api/guard.py).
API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, description="its_<key id>_<secret>")
READERS: tuple[Role, ...] = ("viewer", "operator")


async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.its
    return state


State = Annotated[AppState, Depends(get_state)]


async def authenticated(request: Request, _: Annotated[str | None, Security(API_KEY_HEADER)]) -> ApiKeyRecord:
    """The key the guard verified. Without the guard in front nothing is authenticated, so the
    route refuses rather than serve anonymously."""
    key = request.scope.get("auth")
    if not isinstance(key, ApiKeyRecord):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing X-API-Key header")
    return key


Caller = Annotated[ApiKeyRecord, Depends(authenticated)]


def caller(*roles: Role) -> Callable[..., Coroutine[Any, Any, ApiKeyRecord]]:
    """A dependency that admits a verified key of one of `roles`."""

    async def dependency(key: Caller) -> ApiKeyRecord:
        if key.role not in roles:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"role {key.role!r} may not do this (needs {' or '.join(roles)})"
            )
        return key

    return dependency


# Declare the caller before `state`: dependencies are solved in order, so an unauthorised call
# is refused before anything touches a backend.
Reader = Annotated[ApiKeyRecord, Depends(caller(*READERS))]
Operator = Annotated[ApiKeyRecord, Depends(caller("operator"))]


async def frame_poster(camera_id: str, key: Caller) -> ApiKeyRecord:
    """Frames come from an operator, or from a camera key bound to this camera id."""
    if key.role == "operator":
        return key
    if key.role == "camera":
        if camera_id in key.cameras:
            return key
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"this camera key may not post frames for camera {camera_id!r} "
            f"(it is bound to {', '.join(key.cameras)})",
        )
    raise HTTPException(
        status.HTTP_403_FORBIDDEN,
        f"role {key.role!r} may not post frames (needs operator, or a camera key bound to {camera_id!r})",
    )


async def require_camera(state: AppState, camera_id: str) -> None:
    """404 unless the camera is registered (known_cameras.py: no database read once seen)."""

    async def registered(camera: str) -> bool:
        return bool(await state.db.fetchval("SELECT EXISTS (SELECT 1 FROM cameras WHERE id = $1)", camera))

    if not await state.cameras.exists(camera_id, registered):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown camera {camera_id!r}")
