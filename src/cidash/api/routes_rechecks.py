"""``/systems/{name}/rechecks``: the human recheck comments behind a CI's recheck burden."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy.ext.asyncio import AsyncConnection

from cidash.api.routes import NOT_FOUND, connection, system_or_404
from cidash.api.routes_systems import Name, Project, Server
from cidash.domain import health
from cidash.domain.views import RecheckCases, RecheckOut, Window
from cidash.store.rechecks import recheck_cases

router = APIRouter(tags=["systems"])


@router.get("/systems/{name}/rechecks", response_model=RecheckCases, responses=NOT_FOUND)
async def system_rechecks(
    conn: Annotated[AsyncConnection, Depends(connection)],
    name: Name,
    server: Server = None,
    window: Window = "7d",
    project: Project = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> RecheckCases:
    """The recheck comments of the window aimed at the CI (named, or plain after its failure; see
    ``GET /api/v1/measures``), how many, and the newest `limit` of them with their text."""
    system = await system_or_404(conn, name, server)
    now = datetime.now(UTC)
    total, cases = await recheck_cases(
        conn, system.id, now - health.WINDOW_SPANS[window], now, project=project or None, limit=limit
    )
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
