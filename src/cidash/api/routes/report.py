"""``/report``: the weekly report card (``cidash report --week`` and the dashboard's Report page)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncConnection

from cidash.api.deps import cache_of, connection, query_error, settings_of
from cidash.domain.views import ReportCard
from cidash.health.report import report_card, week_end
from cidash.store import reads

router = APIRouter(tags=["report"])


def _end(value: str | None) -> datetime | None:
    """`end` as midnight UTC of its day (a date, or a time whose day is taken)."""
    moment = reads.params.parse_time(value, "end")
    return week_end(moment) if moment is not None else None


@router.get("/report", response_model=ReportCard)
async def get_report(
    request: Request,
    conn: Annotated[AsyncConnection, Depends(connection)],
    end: Annotated[
        str | None,
        Query(
            max_length=64,
            description="The week ends at this day's midnight UTC (default: today's; tomorrow's holds today so far)",
        ),
    ] = None,
    project: Annotated[str | None, Query(max_length=255)] = None,
) -> ReportCard:
    """Every CI system over the week before `end` and the week before that: state, runs, success,
    infra errors, coverage, agreement, false -1 share, latency, alerts, with the runs page address
    behind each number; worst first."""
    try:
        when = _end(end)
    except reads.params.QueryError as exc:
        raise query_error(exc) from None
    if when is not None and when > week_end(datetime.now(UTC)) + timedelta(days=1):
        raise query_error(
            reads.params.QueryError(
                "end: the week cannot end after the end of today (a week ending tomorrow holds today so far)"
            )
        )
    return await report_card(conn, settings_of(request).ci, end=when, project=project or None, cache=cache_of(request))
