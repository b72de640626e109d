"""``/api/v1/alerts``: the alert history (newest first, opaque cursor), the rules in effect, and
muting (``Authorization: Bearer <api.write_token>``)."""

from __future__ import annotations

from typing import get_args

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from cidash.alerts import DEFAULT_RULES, AlertEngine, rule_views
from cidash.api.auth import require_read, require_write
from cidash.api.params import Instant, StoredId, decode_id_cursor, encode_id_cursor
from cidash.config import AlertKind, Settings
from cidash.store import alerts_store
from cidash.store.engine import writer_engine
from cidash.store.writer import Store
from cidash.views import AlertOut, AlertPage, AlertRuleOut, ErrorOut

ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorOut, "description": "A token is required"},
    403: {"model": ErrorOut, "description": "Wrong token, or writes disabled"},
    422: {"model": ErrorOut, "description": "A parameter is invalid"},
}
ALERT_KINDS = frozenset(get_args(AlertKind))
MAX_LIMIT = 500

router = APIRouter(prefix="/api/v1", tags=["alerts"], responses=ERRORS)


def _split(values: list[str] | None) -> list[str]:
    return [part.strip() for value in values or () for part in value.split(",") if part.strip()]


CURSOR_PREFIX = "a"


def _engine(request: Request) -> AlertEngine | None:
    engine = getattr(request.app.state, "alerts", None)
    return engine if isinstance(engine, AlertEngine) else None


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
    store: Store = request.app.state.store
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
    settings: Settings = request.app.state.settings
    return rule_views(settings.alerts or DEFAULT_RULES)


async def _set_muted(request: Request, alert_id: int, muted: bool) -> AlertOut:
    engine = _engine(request)
    if engine is not None:
        alert = await engine.mute(alert_id, muted)
    else:  # an API-only replica: the alert engine runs with the collector
        store: Store = request.app.state.store
        async with writer_engine(store.engine).begin() as conn:
            found = await alerts_store.set_muted(conn, alert_id, muted)
        alert = None
        if found:
            async with store.engine.connect() as conn:
                alert = await alerts_store.get_alert(conn, alert_id)
    if alert is None:
        raise HTTPException(404, f"no alert {alert_id}")
    return alert


@router.post(
    "/alerts/{alert_id}/mute",
    response_model=AlertOut,
    dependencies=[Depends(require_write)],
    responses={404: {"model": ErrorOut, "description": "No such alert"}},
)
async def mute_alert(request: Request, alert_id: StoredId) -> AlertOut:
    return await _set_muted(request, alert_id, True)


@router.post(
    "/alerts/{alert_id}/unmute",
    response_model=AlertOut,
    dependencies=[Depends(require_write)],
    responses={404: {"model": ErrorOut, "description": "No such alert"}},
)
async def unmute_alert(request: Request, alert_id: StoredId) -> AlertOut:
    return await _set_muted(request, alert_id, False)
