"""``/systems``: the summary list, one system, its runs, series and job breakdown, and edits."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection

from cidash.api.auth import require_write
from cidash.api.deps import NOT_FOUND, cache_of, connection, query_error, settings_of, store_of, system_or_404
from cidash.api.routes.runs import CSV_RESPONSE, ResultParam, csv_response, run_filters
from cidash.domain import health
from cidash.domain.views import (
    Grid,
    JobBreakdown,
    RunPage,
    SeriesPoint,
    SystemDetail,
    SystemPatch,
    SystemSummary,
    Window,
)
from cidash.health.systems import CaseKind, system_detail, systems_summary, vote_cases
from cidash.store import reads

router = APIRouter(tags=["systems"])

Name = Annotated[str, Path(min_length=1, max_length=255, description="The CI system's account key")]
Server = Annotated[
    str | None,
    Query(max_length=255, description="Gerrit server, when several have a CI with this name"),
]
Project = Annotated[str | None, Query(max_length=255)]
Conn = Annotated[AsyncConnection, Depends(connection)]


@router.get("/systems", response_model=list[SystemSummary])
async def list_systems(
    request: Request,
    conn: Conn,
    window: Window = "24h",
    project: Project = None,
    q: Annotated[
        str | None,
        Query(max_length=255, description="Only CI systems whose name, display name or owner contains this"),
    ] = None,
) -> list[SystemSummary]:
    """Every CI system with its health over `window` and its current state (filtered to the CI
    systems following `project`, and counted on it, when given; to those `q` finds in their
    name, display name or owner, case-insensitive)."""
    return await systems_summary(
        conn, settings_of(request).ci, window=window, project=project or None, cache=cache_of(request), q=q
    )


@router.get("/measures", response_model=dict[str, str])
async def measures() -> dict[str, str]:
    """What each measure means, in words (coverage: which patch sets are eligible)."""
    return health.MEASURES


@router.get("/systems/{name}", response_model=SystemDetail, responses=NOT_FOUND)
async def get_system(request: Request, conn: Conn, name: Name, server: Server = None) -> SystemDetail:
    """One CI system with every window (1h, 24h, 7d, 30d)."""
    system = await system_or_404(conn, name, server)
    return await system_detail(conn, system, settings_of(request).ci, cache=cache_of(request))


@router.patch(
    "/systems/{name}",
    response_model=SystemDetail,
    responses=NOT_FOUND,
    dependencies=[Depends(require_write)],
)
async def patch_system(
    request: Request, conn: Conn, name: Name, patch: SystemPatch, server: Server = None
) -> SystemDetail:
    """Edit display name, owner, confirmation or the reference flag (needs the write token)."""
    system = await system_or_404(conn, name, server)
    await conn.rollback()  # end this connection's snapshot: the edit commits on another one
    await store_of(request).patch_system(system, patch)
    cache_of(request).clear()
    updated = await system_or_404(conn, system.name, system.server)
    return await system_detail(conn, updated, settings_of(request).ci, cache=cache_of(request))


@router.get(
    "/systems/{name}/runs",
    response_model=RunPage,
    responses={**NOT_FOUND, **CSV_RESPONSE},
)
async def system_runs(
    request: Request,
    conn: Conn,
    name: Name,
    server: Server = None,
    project: Project = None,
    branch: Annotated[str | None, Query(max_length=255)] = None,
    result: ResultParam = None,
    from_: Annotated[str | None, Query(alias="from", max_length=64)] = None,
    to: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int | None, Query(ge=1, le=500)] = None,
    cursor: Annotated[str | None, Query(max_length=256)] = None,
    format: Literal["json", "csv"] = "json",
) -> RunPage | Response:
    """The CI system's runs, newest first (same filters and paging as ``/runs``)."""
    system = await system_or_404(conn, name, server)
    filters = run_filters(system.name, system.server, project, branch, result, from_, to)
    if format == "csv":
        return await csv_response(request, filters, limit, cursor, f"{system.name}-runs.csv")
    try:
        return await reads.runs.runs_page(conn, filters, limit=limit or 50, cursor=cursor)
    except reads.params.QueryError as exc:
        raise query_error(exc) from None


@router.get("/systems/{name}/series", response_model=list[SeriesPoint], responses=NOT_FOUND)
async def system_series(
    conn: Conn,
    name: Name,
    server: Server = None,
    bucket: Literal["hour", "day"] = "hour",
    from_: Annotated[str | None, Query(alias="from", max_length=64)] = None,
    to: Annotated[str | None, Query(max_length=64)] = None,
    project: Project = None,
) -> list[SeriesPoint]:
    """Runs, outcomes, success rate and latency per hour or day over [from, to) (every bucket)."""
    system = await system_or_404(conn, name, server)
    try:
        since = reads.params.parse_time(from_, "from")
        until = reads.params.parse_time(to, "to")
        return await reads.series.series(conn, system, bucket=bucket, since=since, until=until, project=project or None)
    except reads.params.QueryError as exc:
        raise query_error(exc) from None


@router.get("/systems/{name}/cases", response_model=Grid, responses=NOT_FOUND)
async def system_cases(
    request: Request,
    conn: Conn,
    name: Name,
    kind: CaseKind,
    server: Server = None,
    window: Window = "7d",
) -> Grid:
    """The patch sets behind its false -1 share (`kind=false_negative`: -1 where the reference CI
    passed and the change merged) or false +1 share (`false_positive`), with every CI's result."""
    system = await system_or_404(conn, name, server)
    return await vote_cases(conn, system, settings_of(request).ci, kind=kind, window=window, cache=cache_of(request))


@router.get("/systems/{name}/jobs", response_model=list[JobBreakdown], responses=NOT_FOUND)
async def system_jobs(conn: Conn, name: Name, server: Server = None, window: Window = "7d") -> list[JobBreakdown]:
    """Per job: runs, test failures, infra errors and the latest failure over `window`."""
    system = await system_or_404(conn, name, server)
    since = datetime.now(UTC) - health.WINDOW_SPANS[window]
    return await reads.jobs.job_breakdown(conn, system, since=since)
