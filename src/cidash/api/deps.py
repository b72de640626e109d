"""What every ``/api/v1`` route shares: the request's settings, store, health cache and read
connection, the documented error responses, and the 404/422 helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import HTTPException, Request
from sqlalchemy.ext.asyncio import AsyncConnection

from cidash.api.state import request_state
from cidash.config import Settings
from cidash.domain.views import ErrorOut
from cidash.health import HealthCache
from cidash.store import Store, reads

API_PREFIX = "/api/v1"

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "The request body could not be parsed"},
    401: {"model": ErrorOut, "description": "A token is required"},
    403: {"model": ErrorOut, "description": "Wrong token, or writes disabled"},
    422: {"model": ErrorOut, "description": "A parameter is invalid"},
    503: {"model": ErrorOut, "description": "The database is unavailable"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut, "description": "Not found"}}


def settings_of(request: Request) -> Settings:
    return request_state(request).settings


def store_of(request: Request) -> Store:
    return request_state(request).store


def cache_of(request: Request) -> HealthCache:
    return request_state(request).health_cache


async def connection(request: Request) -> AsyncIterator[AsyncConnection]:
    """One read connection per request (one snapshot on MySQL/MariaDB)."""
    async with store_of(request).engine.connect() as conn:
        yield conn


def not_found(what: str) -> HTTPException:
    return HTTPException(404, what)


def query_error(exc: reads.params.QueryError) -> HTTPException:
    return HTTPException(422, str(exc))


async def system_or_404(conn: AsyncConnection, name: str, server: str | None) -> reads.systems.SystemRow:
    system = await reads.systems.find_system(conn, name, server)
    if system is None:
        where = f" on server {server!r}" if server else ""
        raise not_found(f"no CI system named {name!r}{where}")
    return system
