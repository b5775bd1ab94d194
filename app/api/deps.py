"""Shared dependencies: the app state, the caller (from X-API-Key), per-key rate limiting."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException, Request, status
from redis.exceptions import RedisError

from app.api.state import AppState
from app.common.contracts import rate_limit_key
from app.common.secrets import ApiKey


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.its
    return state


State = Annotated[AppState, Depends(get_state)]


async def _rate_limit(state: AppState, key: str) -> None:
    """Fixed one-minute window per key in Redis (keys carry a TTL, so eviction is safe)."""
    window = int(time.time() // 60)
    bucket = rate_limit_key(hashlib.sha256(key.encode()).hexdigest()[:16], window)
    try:
        master = state.sentinel.master_for(state.settings.redis_master_name)
        count = await master.incr(bucket)
        if count == 1:
            await master.expire(bucket, 120)
    except RedisError:
        return  # the limiter fails open: Redis trouble must not take the API down
    if count > state.settings.rate_limit_per_minute:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"rate limit of {state.settings.rate_limit_per_minute} requests per minute exceeded for this key",
            headers={"Retry-After": str(60 - int(time.time()) % 60)},
        )


def caller(*roles: str) -> Callable[..., Coroutine[Any, Any, ApiKey]]:
    """A dependency that admits a valid API key of one of `roles` (any role when empty)."""

    async def dependency(state: State, x_api_key: Annotated[str | None, Header()] = None) -> ApiKey:
        if not x_api_key:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing X-API-Key header")
        key = state.secrets.api_keys().get(x_api_key)
        if key is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown API key")
        if roles and key.role not in roles:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"role {key.role!r} may not do this (needs {' or '.join(roles)})"
            )
        await _rate_limit(state, x_api_key)
        return key

    return dependency


async def require_camera(state: AppState, camera_id: str) -> dict[str, Any]:
    row = await state.db.fetchrow("SELECT * FROM cameras WHERE id = $1", camera_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown camera {camera_id!r}")
    return dict(row)
