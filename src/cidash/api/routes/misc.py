"""Grid, change view, projects, badges, metrics and the liveness / readiness probes."""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from cidash import metrics
from cidash.api.auth import badges_public, reads_open_to
from cidash.api.deps import NOT_FOUND, cache_of, connection, not_found, settings_of, store_of, system_or_404
from cidash.api.state import request_state
from cidash.domain.views import ChangeView, ErrorOut, Grid, Readiness, ReadinessWords, ServerStatus, State
from cidash.health.systems import systems_summary_one
from cidash.store import reads

log = logging.getLogger(__name__)

router = APIRouter()
badges = APIRouter(tags=["systems"])  # open with api.public_badges: see auth.require_badge
probes = APIRouter(tags=["probes"])

READY_DB_TIMEOUT_S = 3.0
PROJECTS_TTL_KEY = "projects"
BADGE_CACHE_PUBLIC = "public, max-age=60"
BADGE_CACHE_PRIVATE = "private, max-age=60"  # a badge that needs a token is no shared cache's to keep
BADGE_COLOURS: dict[State, str] = {
    "healthy": "#2e7d32",
    "degraded": "#ef6c00",
    "failing": "#c62828",
    "silent": "#6a1b9a",
    "unknown": "#757575",
}
SVG_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/svg+xml": {"schema": {"type": "string"}}}, "description": "An SVG badge"}
}
Conn = Annotated[Any, Depends(connection)]
Server = Annotated[str | None, Query(max_length=255)]


class Ok(BaseModel):
    ok: bool


@router.get("/grid", response_model=Grid, tags=["patch sets"])
async def get_grid(
    conn: Conn,
    project: Annotated[str | None, Query(max_length=255)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 30,
    server: Server = None,
) -> Grid:
    """The most recently active patch sets (of `project`) x CI systems: each CI's newest result."""
    return await reads.grid.grid(conn, project=project or None, limit=limit, server=server or None)


@router.get("/projects", response_model=list[str], tags=["patch sets"])
async def get_projects(request: Request, conn: Conn) -> list[str]:
    """Every project with CI runs, sorted."""
    cache = cache_of(request)
    cached = cache.projects.get(PROJECTS_TTL_KEY)
    if cached is not None:
        return list(cached)
    names = await reads.runs.project_names(conn)
    cache.projects.put(PROJECTS_TTL_KEY, names)
    return names


@router.get("/changes/{number}", response_model=ChangeView, responses=NOT_FOUND, tags=["patch sets"])
async def get_change(conn: Conn, number: Annotated[int, Path(ge=1, le=2**31 - 1)], server: Server = None) -> ChangeView:
    """A change with each patch set and every CI's newest result on it."""
    view = await reads.grid.change_view(conn, number, server=server or None)
    if view is None:
        raise not_found(f"no change {number}" + (f" on server {server!r}" if server else ""))
    return view


_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _escape(text: str) -> str:
    """XML text/attribute escaping; characters XML 1.0 cannot carry become U+FFFD."""
    text = _XML_INVALID.sub("\ufffd", text)
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#39;")
    )


def _text_width(text: str) -> int:
    return 10 + 7 * len(text)


def badge_svg(label: str, message: str, colour: str) -> str:
    """A flat shields.io-style badge; every text is XML-escaped."""
    label = label[:40]
    left, right = _text_width(label), _text_width(message)
    width = left + right
    label_x, message_x = left / 2, left + right / 2
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" '
        f'aria-label="{_escape(label)}: {_escape(message)}">'
        f"<title>{_escape(label)}: {_escape(message)}</title>"
        f'<rect width="{left}" height="20" fill="#555"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{colour}"/>'
        '<g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11">'
        f'<text x="{label_x}" y="14">{_escape(label)}</text>'
        f'<text x="{message_x}" y="14">{_escape(message)}</text>'
        "</g></svg>"
    )


@badges.get("/badge/{name}.svg", response_class=Response, responses={**SVG_RESPONSE, **NOT_FOUND})
async def get_badge(
    request: Request,
    conn: Conn,
    name: Annotated[str, Path(min_length=1, max_length=255)],
    server: Server = None,
) -> Response:
    """A small SVG badge: the CI's state colour and its 24 h success rate. Needs the read token
    when reads do, unless ``api.public_badges`` is set."""
    system = await system_or_404(conn, name, server or None)
    detail = await systems_summary_one(conn, system, settings_of(request).ci, cache=cache_of(request))
    rate = detail.health.success_rate
    message = detail.state if rate is None else f"{detail.state} {round(rate * 100)}%"
    svg = badge_svg(system.display_name or system.name, message, BADGE_COLOURS[detail.state])
    cache = BADGE_CACHE_PUBLIC if badges_public(settings_of(request).api) else BADGE_CACHE_PRIVATE
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": cache})


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text"}},
    tags=["probes"],
)
async def get_metrics() -> Response:
    """Prometheus text exposition of :mod:`cidash.metrics`."""
    return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE)


@probes.get("/healthz", response_model=Ok)
async def healthz() -> Ok:
    """The process is alive (no dependency is checked)."""
    return Ok(ok=True)


async def _database_ok(request: Request) -> bool:
    try:
        async with asyncio.timeout(READY_DB_TIMEOUT_S):
            async with store_of(request).engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
    except Exception as exc:
        log.warning("readiness: the database is unreachable: %s", type(exc).__name__)
        return False
    return True


async def _servers(request: Request) -> list[ServerStatus]:
    status = request_state(request).status
    if status is None:
        return []
    found = status()
    if inspect.isawaitable(found):
        found = await found
    return list(found)


@probes.get(
    "/readyz",
    response_model=Readiness | ReadinessWords,
    responses={503: {"model": Readiness | ReadinessWords, "description": "Not ready: see database and servers"}},
)
async def readyz(request: Request) -> Response:
    """Ready when the database answers and no server's collector has failed for good. Without the
    read token (when one is set) only status words: the details name internal hosts and errors."""
    database = await _database_ok(request)
    servers = await _servers(request)
    ready = database and all(server.fatal is None for server in servers)
    full = Readiness(ready=ready, database=database, servers=servers)
    body = full if reads_open_to(request) else ReadinessWords.of(full)
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if ready else 503)


__all__ = ["ErrorOut", "badges", "probes", "router"]
