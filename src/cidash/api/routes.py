"""The ``/api/v1`` router: shared dependencies and documented error responses, and
:func:`api_router`, which assembles the route modules (``routes_systems``, ``routes_runs``,
``routes_misc``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from sqlalchemy.ext.asyncio import AsyncConnection

from cidash.api.auth import require_badge, require_read
from cidash.config import Settings
from cidash.domain.health import HealthCache
from cidash.domain.views import ErrorOut
from cidash.store import queries
from cidash.store.facade import Store

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
    settings: Settings = request.app.state.settings
    return settings


def store_of(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def cache_of(request: Request) -> HealthCache:
    cache: HealthCache = request.app.state.health_cache
    return cache


async def connection(request: Request) -> AsyncIterator[AsyncConnection]:
    """One read connection per request (one snapshot on MySQL/MariaDB)."""
    async with store_of(request).engine.connect() as conn:
        yield conn


def not_found(what: str) -> HTTPException:
    return HTTPException(404, what)


def query_error(exc: queries.QueryError) -> HTTPException:
    return HTTPException(422, str(exc))


async def system_or_404(conn: AsyncConnection, name: str, server: str | None) -> queries.SystemRow:
    system = await queries.find_system(conn, name, server)
    if system is None:
        where = f" on server {server!r}" if server else ""
        raise not_found(f"no CI system named {name!r}{where}")
    return system


def api_router() -> APIRouter:
    """Every ``/api/v1`` route of this package (the live feed and the alerts come as extra
    routers that carry the ``/api/v1`` prefix themselves)."""
    from cidash.api import (
        routes_collection,
        routes_explain,
        routes_misc,
        routes_rechecks,
        routes_report,
        routes_runs,
        routes_systems,
    )

    router = APIRouter(prefix=API_PREFIX)
    reads = APIRouter(dependencies=[Depends(require_read)], responses=ERRORS)
    reads.include_router(routes_systems.router)
    reads.include_router(routes_rechecks.router)
    reads.include_router(routes_runs.router)
    reads.include_router(routes_misc.router)
    reads.include_router(routes_explain.router)
    reads.include_router(routes_report.router)
    reads.include_router(routes_collection.router)
    router.include_router(reads)
    router.include_router(routes_misc.badges, dependencies=[Depends(require_badge)], responses=ERRORS)
    router.include_router(routes_misc.probes)
    return router
