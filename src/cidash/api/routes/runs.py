"""``/runs``: filtered, cursor-paged run lists (JSON or CSV), one run, and re-parsing."""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from cidash.api.auth import require_write
from cidash.api.deps import NOT_FOUND, cache_of, connection, not_found, query_error, settings_of, store_of
from cidash.api.params import StoredId
from cidash.domain.views import ErrorOut, RunOut, RunPage
from cidash.store import reads

router = APIRouter(tags=["runs"])

ResultParam = Annotated[
    str | None,
    Query(
        max_length=64,
        description="A result class (success, failure, infra, other) or a result word (e.g. NODE_FAILURE)",
    ),
]
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "With ?format=csv: one row per run"}
}
CSV_COLUMNS = (
    "id",
    "server",
    "ci",
    "project",
    "branch",
    "change",
    "patchset",
    "result",
    "result_class",
    "vote",
    "pipeline",
    "posted_at",
    "latency_s",
    "message_id",
    "source",
    "log_url",
    "jobs",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ReparseOut(BaseModel):
    runs: int  # stored runs read
    changed: int  # result, vote, pipeline or jobs changed
    unchanged: int
    not_results: int  # no longer read as a CI result (left as they were)
    comments: int = 0  # a CI's stored starts and unread comments read
    now_results: int = 0  # of those, now read as results (they became runs)
    comments_changed: int = 0  # a start now unread, or the reverse


class ReparseProgressOut(BaseModel):
    """The re-read running in this replica now, or the last one it ran."""

    running: bool
    ci: str | None  # the CI it re-reads; None: every CI
    done: int  # stored comments read so far
    total: int  # stored comments to read (counted when it began)
    started_at: datetime | None
    finished_at: datetime | None
    counts: ReparseOut | None  # when finished
    error: str | None = None  # why it stopped, when it failed


def _progress_of(request: Request) -> ReparseProgressOut:
    state = request.app.state
    progress: ReparseProgressOut | None = getattr(state, "reparse_progress", None)
    if progress is None:
        progress = ReparseProgressOut(
            running=False, ci=None, done=0, total=0, started_at=None, finished_at=None, counts=None
        )
        state.reparse_progress = progress
    return progress


def run_filters(
    ci: str | None,
    server: str | None,
    project: str | None,
    branch: str | None,
    result: str | None,
    from_: str | None,
    to: str | None,
) -> reads.runs.RunFilters:
    try:
        return reads.runs.RunFilters(
            ci=ci or None,
            server=server or None,
            project=project or None,
            branch=branch or None,
            result=reads.runs.check_result_filter(result),
            since=reads.params.parse_time(from_, "from"),
            until=reads.params.parse_time(to, "to"),
        )
    except reads.params.QueryError as exc:
        raise query_error(exc) from None


def _cell(value: Any) -> Any:
    """Text cells that a spreadsheet would run as a formula get a leading apostrophe."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _csv_line(run: RunOut | None) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if run is None:
        writer.writerow(CSV_COLUMNS)
    else:
        writer.writerow(
            [
                run.id,
                _cell(run.server),
                _cell(run.ci),
                _cell(run.project),
                _cell(run.branch),
                run.change,
                run.patchset,
                _cell(run.result),
                run.result_class,
                "" if run.vote is None else run.vote,
                _cell(run.pipeline or ""),
                run.posted_at.isoformat(),
                "" if run.latency_s is None else run.latency_s,
                _cell(run.message_id or ""),
                run.source,
                _cell(run.log_url or ""),
                len(run.jobs),
            ]
        )
    return buffer.getvalue()


async def csv_response(
    request: Request, filters: reads.runs.RunFilters, limit: int | None, cursor: str | None, filename: str
) -> Response:
    """Every matching run (or `limit` of them), newest first, streamed as CSV with a header line.
    The first query runs before the status line is sent, so a bad cursor or a database error is a
    422 or 503, not a 200 that stops after the header."""
    if cursor:
        try:
            reads.cursor.decode_cursor(cursor)
        except reads.params.QueryError as exc:
            raise query_error(exc) from None
    engine = store_of(request).engine

    async def lines() -> AsyncIterator[str]:
        async with engine.connect() as conn:
            runs = aiter(reads.runs.iter_runs(conn, filters, limit=limit, cursor=cursor))
            first = await anext(runs, None)
            yield _csv_line(None) + ("" if first is None else _csv_line(first))
            async for run in runs:
                yield _csv_line(run)

    body = lines()
    head = await anext(body)

    async def chunks() -> AsyncIterator[str]:
        yield head
        async for line in body:
            yield line

    safe_name = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in filename)
    return StreamingResponse(
        chunks(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{safe_name}"'},
    )


@router.get("/runs", response_model=RunPage, responses=CSV_RESPONSE)
async def list_runs(
    request: Request,
    conn: Annotated[AsyncConnection, Depends(connection)],
    ci: Annotated[str | None, Query(max_length=255, description="CI system name (account key)")] = None,
    server: Annotated[str | None, Query(max_length=255)] = None,
    project: Annotated[str | None, Query(max_length=255)] = None,
    branch: Annotated[str | None, Query(max_length=255)] = None,
    result: ResultParam = None,
    from_: Annotated[str | None, Query(alias="from", max_length=64, description="ISO 8601, inclusive")] = None,
    to: Annotated[str | None, Query(max_length=64, description="ISO 8601, exclusive")] = None,
    limit: Annotated[int | None, Query(ge=1, le=500, description="Page size (default 50); CSV: all without it")] = None,
    cursor: Annotated[str | None, Query(max_length=256, description="next_cursor of the previous page")] = None,
    format: Literal["json", "csv"] = "json",
) -> RunPage | Response:
    """Runs newest first, filtered; pages are stable under inserts (keyset on posted_at, id)."""
    filters = run_filters(ci, server, project, branch, result, from_, to)
    if format == "csv":
        return await csv_response(request, filters, limit, cursor, "runs.csv")
    try:
        return await reads.runs.runs_page(conn, filters, limit=limit or 50, cursor=cursor)
    except reads.params.QueryError as exc:
        raise query_error(exc) from None


@router.post(
    "/runs/reparse",
    response_model=ReparseOut,
    responses={409: {"model": ErrorOut, "description": "A re-read is already running"}},
    dependencies=[Depends(require_write)],
)
async def reparse_runs(
    request: Request,
    ci: Annotated[str | None, Query(max_length=255, description="Only this CI system's comments")] = None,
) -> ReparseOut:
    """Re-read the stored comments with the current rules (runs updated, starts and unread
    comments now read as results become runs), then rebuild the rollups; follow it with
    ``GET /runs/reparse``."""
    progress = _progress_of(request)
    if progress.running:
        raise HTTPException(409, f"a re-read is already running ({progress.done} of {progress.total} comments)")
    progress.running, progress.ci, progress.done, progress.total = True, ci or None, 0, 0
    progress.started_at, progress.finished_at, progress.counts, progress.error = datetime.now(UTC), None, None, None

    def step(done: int, total: int) -> None:
        progress.done, progress.total = done, total

    try:
        counts = await store_of(request).reparse(settings_of(request).ci, ci=ci or None, progress=step)
    except Exception as exc:
        progress.error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        progress.running, progress.finished_at = False, datetime.now(UTC)
        cache_of(request).clear()
    out = ReparseOut(**dataclasses.asdict(counts))
    progress.counts = out
    return out


@router.get("/runs/reparse", response_model=ReparseProgressOut)
async def reparse_progress(request: Request) -> ReparseProgressOut:
    """The re-read this replica is running (or ran last): comments done of the total, and its counts."""
    return _progress_of(request)


@router.get("/runs/{run_id}", response_model=RunOut, responses=NOT_FOUND)
async def get_run(
    conn: Annotated[AsyncConnection, Depends(connection)],
    run_id: StoredId,
) -> RunOut:
    """One run, with its raw comment."""
    run = await reads.runs.run_by_id(conn, run_id)
    if run is None:
        raise not_found(f"no run {run_id}")
    return run
