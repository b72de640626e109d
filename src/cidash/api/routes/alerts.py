"""``/api/v1/alerts`` and ``/api/v1/incidents``: the notifications (one per incident edge, newest
first, opaque cursor), the rules in effect, the incidents with their timelines, and what operators
do about them: ack, silence, maintenance windows (``Authorization: Bearer <api.write_token>``).
Every change is a note in the incident's history and an ``incident`` feed message."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal, get_args

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from sqlalchemy.ext.asyncio import AsyncConnection

from cidash.alerts.engine import DEFAULT_RULES, AlertEngine, acknowledge, judge_runs, rule_views, silence_incident
from cidash.api.auth import require_read, require_write
from cidash.api.deps import ERRORS, settings_of, store_of
from cidash.api.params import Instant, StoredId, decode_id_cursor, encode_id_cursor
from cidash.api.state import request_state
from cidash.config import AlertKind
from cidash.domain.urls import log_url
from cidash.domain.views import (
    AckIn,
    AlertPage,
    AlertRuleOut,
    ErrorOut,
    FeedMessage,
    IncidentDetail,
    IncidentOut,
    IncidentPage,
    MaintenanceIn,
    MaintenanceOut,
    SilenceIn,
    TimelineRun,
)
from cidash.store import alerts_store, to_aware_utc

ALERT_KINDS = frozenset(get_args(AlertKind))
MAX_LIMIT = 500

router = APIRouter(prefix="/api/v1", tags=["alerts"], responses=ERRORS)


def _split(values: list[str] | None) -> list[str]:
    return [part.strip() for value in values or () for part in value.split(",") if part.strip()]


CURSOR_PREFIX = "a"
INCIDENT_CURSOR_PREFIX = "i"


def _engine(request: Request) -> AlertEngine | None:
    return request_state(request).alerts


@router.get("/alerts", response_model=AlertPage, dependencies=[Depends(require_read)])
async def list_alerts(
    request: Request,
    ci: list[str] | None = Query(None, description="CI names (comma-separated or repeated)"),
    kind: list[str] | None = Query(None, description="alert kinds (comma-separated or repeated)"),
    start: Instant | None = Query(None, alias="from", description="created at or after (ISO 8601)"),
    end: Instant | None = Query(None, alias="to", description="created before (ISO 8601)"),
    limit: int = Query(50, ge=1, le=MAX_LIMIT),
    cursor: str | None = Query(None, description="next_cursor of the previous page"),
) -> AlertPage:
    kinds = _split(kind)
    unknown = sorted(set(kinds) - ALERT_KINDS)
    if unknown:
        raise HTTPException(422, f"kind: unknown alert kind {unknown[0]!r}; use {', '.join(sorted(ALERT_KINDS))}")
    store = store_of(request)
    before = decode_id_cursor(CURSOR_PREFIX, cursor) if cursor else None
    async with store.engine.connect() as conn:
        items = await alerts_store.list_alerts(
            conn,
            ci=_split(ci),
            kinds=kinds,
            start=start,
            end=end,
            before_id=before,
            limit=limit + 1,
        )
    more = len(items) > limit
    items = items[:limit]
    return AlertPage(items=items, next_cursor=encode_id_cursor(CURSOR_PREFIX, items[-1].id) if more and items else None)


@router.get("/alerts/rules", response_model=list[AlertRuleOut], dependencies=[Depends(require_read)])
async def list_rules(request: Request) -> list[AlertRuleOut]:
    engine = _engine(request)
    if engine is not None:
        return engine.rule_views()
    settings = settings_of(request)
    return rule_views(settings.alerts or DEFAULT_RULES)


NOT_FOUND: dict[int | str, dict[str, object]] = {404: {"model": ErrorOut, "description": "No such incident"}}


@router.get("/incidents", response_model=IncidentPage, dependencies=[Depends(require_read)])
async def list_incidents(
    request: Request,
    state: Literal["firing", "resolved"] | None = Query(None),
    ci: list[str] | None = Query(None, description="CI names (comma-separated or repeated)"),
    limit: int = Query(50, ge=1, le=MAX_LIMIT),
    cursor: str | None = Query(None, description="next_cursor of the previous page"),
) -> IncidentPage:
    """Incidents, newest first; ``state=firing`` for the open ones."""
    store = store_of(request)
    before = decode_id_cursor(INCIDENT_CURSOR_PREFIX, cursor) if cursor else None
    async with store.engine.connect() as conn:
        items = await alerts_store.list_incidents(conn, state=state, ci=_split(ci), before_id=before, limit=limit + 1)
    more = len(items) > limit
    items = items[:limit]
    return IncidentPage(
        items=items, next_cursor=encode_id_cursor(INCIDENT_CURSOR_PREFIX, items[-1].id) if more and items else None
    )


@router.get(
    "/incidents/{incident_id}",
    response_model=IncidentDetail,
    dependencies=[Depends(require_read)],
    responses=NOT_FOUND,
)
async def get_incident(request: Request, incident_id: StoredId) -> IncidentDetail:
    """One incident: its runs beside the reference CI's results on the same patch sets, its
    notifications, acks and silences."""
    store = store_of(request)
    async with store.engine.connect() as conn:
        incident = await alerts_store.get_incident(conn, incident_id)
        if incident is None:
            raise HTTPException(404, f"no incident {incident_id}")
        refs = await alerts_store.ci_refs(conn, [(incident.server, incident.ci)])
        ci = refs[(incident.server, incident.ci)]
        found = await alerts_store.runs_by_id(conn, await alerts_store.incident_run_ids(conn, incident_id))
        runs = sorted((run for _, run in found.values()), key=lambda run: (run.posted_at, run.id))
        urls = await alerts_store.job_urls(conn, [run.id for run in runs])
        timeline = [
            TimelineRun(
                id=judged.id,
                posted_at=judged.posted_at,
                project=judged.project,
                change=judged.change,
                patchset=judged.patchset,
                result=judged.result,
                verdict=judged.verdict,
                reference_result=reference,
                log_url=log_url(urls.get(judged.id, [])),
            )
            for judged, reference in await judge_runs(conn, ci, runs)
        ]
        notifications = list(reversed(await alerts_store.list_alerts(conn, incident_id=incident_id, limit=MAX_LIMIT)))
        notes = await alerts_store.notes_of(conn, incident_id)
    return IncidentDetail(incident=incident, runs=timeline, notifications=notifications, notes=notes)


async def _changed(
    request: Request, found: tuple[IncidentOut, list[FeedMessage]] | None, incident_id: StoredId
) -> IncidentOut:
    """The incident as changed (404 when there is none); its feed message goes to the live subscribers."""
    if found is None:
        raise HTTPException(404, f"no incident {incident_id}")
    incident, messages = found
    bus = request_state(request).bus
    if bus is not None and messages:
        await bus.publish(messages)
    return incident


@router.post(
    "/incidents/{incident_id}/ack",
    response_model=IncidentOut,
    dependencies=[Depends(require_write)],
    responses=NOT_FOUND,
)
async def ack_incident(request: Request, incident_id: StoredId, body: AckIn) -> IncidentOut:
    store = store_of(request)
    return await _changed(request, await acknowledge(store, incident_id, body.author, body.note), incident_id)


@router.post(
    "/incidents/{incident_id}/unack",
    response_model=IncidentOut,
    dependencies=[Depends(require_write)],
    responses=NOT_FOUND,
)
async def unack_incident(request: Request, incident_id: StoredId, body: AckIn) -> IncidentOut:
    store = store_of(request)
    found = await acknowledge(store, incident_id, body.author, body.note, undo=True)
    return await _changed(request, found, incident_id)


@router.post(
    "/incidents/{incident_id}/silence",
    response_model=IncidentOut,
    dependencies=[Depends(require_write)],
    responses=NOT_FOUND,
)
async def silence(request: Request, incident_id: StoredId, body: SilenceIn) -> IncidentOut:
    """Silence until `until`, or until the incident resolves: its edges notify no one meanwhile."""
    store = store_of(request)
    until = to_aware_utc(body.until) if body.until is not None else None
    found = await silence_incident(store, incident_id, body.author, body.reason, until)
    return await _changed(request, found, incident_id)


@router.post(
    "/incidents/{incident_id}/unsilence",
    response_model=IncidentOut,
    dependencies=[Depends(require_write)],
    responses=NOT_FOUND,
)
async def unsilence(request: Request, incident_id: StoredId, body: AckIn) -> IncidentOut:
    store = store_of(request)
    found = await silence_incident(store, incident_id, body.author, body.note, None, undo=True)
    return await _changed(request, found, incident_id)


@router.get("/maintenance", response_model=list[MaintenanceOut], dependencies=[Depends(require_read)])
async def list_maintenance(
    request: Request, ci: Annotated[str | None, Query(max_length=255)] = None
) -> list[MaintenanceOut]:
    """Maintenance windows that have not ended (of one CI with `ci`), earliest first."""
    store = store_of(request)
    async with store.engine.connect() as conn:
        return await alerts_store.list_maintenance(conn, ending_after=datetime.now(UTC), ci_name=ci)


@router.delete(
    "/maintenance/{window_id}",
    response_model=MaintenanceOut,
    dependencies=[Depends(require_write)],
    responses={
        404: {"model": ErrorOut, "description": "No such maintenance window"},
        409: {"model": ErrorOut, "description": "The window has begun: it is history now"},
    },
)
async def delete_maintenance(request: Request, window_id: StoredId) -> MaintenanceOut:
    """Withdraw a window declared ahead, before it begins (one that has begun stays in the history);
    the withdrawn window."""
    store = store_of(request)

    async def work(conn: AsyncConnection) -> MaintenanceOut:
        found = await alerts_store.list_maintenance(conn, window_id=window_id)
        if not found:
            raise HTTPException(404, f"window_id: no maintenance window {window_id}")
        window = found[0]
        if to_aware_utc(window.starts_at) <= datetime.now(UTC):
            raise HTTPException(409, f"window_id: window {window_id} began at {window.starts_at.isoformat()}")
        await alerts_store.delete_maintenance(conn, window_id)
        return window

    return await store.write(work)


@router.post(
    "/maintenance",
    response_model=MaintenanceOut,
    status_code=201,
    dependencies=[Depends(require_write)],
    responses={404: {"model": ErrorOut, "description": "No such CI system"}},
)
async def add_maintenance(request: Request, body: MaintenanceIn) -> MaintenanceOut:
    """Declare a window ahead: incidents of the CI that open inside it notify no one."""
    starts, ends = to_aware_utc(body.starts_at), to_aware_utc(body.ends_at)
    if ends <= starts:
        raise HTTPException(422, "ends_at: must be after starts_at")
    store = store_of(request)
    async with store.engine.connect() as conn:
        refs = [ref for ref in await alerts_store.all_ci_refs(conn) if ref.name == body.ci]
    if body.server is not None:
        refs = [ref for ref in refs if ref.server == body.server]
    if len(refs) != 1:
        which = "no" if not refs else "more than one (give server)"
        raise HTTPException(404 if not refs else 422, f"ci: {which} CI system named {body.ci!r}")
    window_id = await store.write(
        lambda conn: alerts_store.add_maintenance(
            conn, refs[0].id, starts, ends, body.author, body.reason, datetime.now(UTC)
        )
    )
    async with store.engine.connect() as conn:
        return (await alerts_store.list_maintenance(conn, window_id=window_id))[0]
