"""``/systems/{name}/rechecks``: the human recheck comments behind a CI's recheck burden."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy.ext.asyncio import AsyncConnection

from cidash.api.deps import NOT_FOUND, connection, query_error, system_or_404
from cidash.api.routes.systems import Name, Project, Server
from cidash.domain import health
from cidash.domain.views import RecheckCases, RecheckOut, Window
from cidash.store import reads, recheck_cases

router = APIRouter(tags=["systems"])


@router.get("/systems/{name}/rechecks", response_model=RecheckCases, responses=NOT_FOUND)
async def system_rechecks(
    conn: Annotated[AsyncConnection, Depends(connection)],
    name: Name,
    server: Server = None,
    window: Window = "7d",
    from_: Annotated[str | None, Query(alias="from", max_length=64)] = None,
    to: Annotated[str | None, Query(max_length=64)] = None,
    project: Project = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> RecheckCases:
    """The recheck comments aimed at the CI (named, or plain after a failure of its own; see
    ``GET /api/v1/measures``) over `window` back from now, or from `from` to `to` when given (the
    report card's week; both ends included), how many, and the newest `limit` of them with their text."""
    system = await system_or_404(conn, name, server)
    try:
        since, until = reads.params.parse_time(from_, "from"), reads.params.parse_time(to, "to")
    except reads.params.QueryError as exc:
        raise query_error(exc) from None
    until = until or datetime.now(UTC)
    since = since or until - health.WINDOW_SPANS[window]
    total, cases = await recheck_cases(conn, system.id, since, until, project=project or None, limit=limit)
    rechecks = [
        RecheckOut(
            id=case.id,
            posted_at=case.posted_at,
            author=case.author,
            project=case.project,
            branch=case.branch,
            change=case.change_number,
            patchset=case.patchset_number,
            text=case.text,
            aimed=case.aimed,
        )
        for case in cases
    ]
    return RecheckCases(window=window, total=total, rechecks=rechecks)
