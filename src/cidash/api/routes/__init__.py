"""The ``/api/v1`` routes, one module per resource; :func:`api_router` assembles them."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from cidash.api.auth import require_badge, require_read
from cidash.api.deps import API_PREFIX, ERRORS
from cidash.api.routes import collection, explain, misc, rechecks, report, runs, systems


def api_router() -> APIRouter:
    """Every ``/api/v1`` route of this package (the live feed and the alerts come as extra
    routers that carry the ``/api/v1`` prefix themselves)."""
    router = APIRouter(prefix=API_PREFIX)
    reads = APIRouter(dependencies=[Depends(require_read)], responses=ERRORS)
    reads.include_router(systems.router)
    reads.include_router(rechecks.router)
    reads.include_router(runs.router)
    reads.include_router(misc.router)
    reads.include_router(explain.router)
    reads.include_router(report.router)
    reads.include_router(collection.router)
    router.include_router(reads)
    router.include_router(misc.badges, dependencies=[Depends(require_badge)], responses=ERRORS)
    router.include_router(misc.probes)
    return router
