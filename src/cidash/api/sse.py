"""The live feed as server-sent events, ``GET /api/v1/events?kinds=&ci=&projects=``, with the
websocket's guarantees (:mod:`cidash.api.ws`): it resumes from the ``Last-Event-ID`` header (or
``?since=``), nothing missed and nothing twice; each message is ``id: N``, ``event: <type>`` and
``data: <the message JSON, as on the websocket>``; ``: ping`` comments every 15 s. A bad
``Last-Event-ID`` or ``since`` is a 422; too many live clients a 503 with ``Retry-After``; a
closed stream ends with ``event: close`` and the websocket's close code and reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import orjson
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from cidash.api.auth import require_read
from cidash.api.deps import API_PREFIX
from cidash.api.live_slots import (
    CLOSE_TRY_AGAIN,
    close_live_at_shutdown,
    full_reason,
    hub_of,
    release_slot,
    slots_full,
    take_slot,
)
from cidash.api.params import feed_filter, resume_point
from cidash.api.state import LiveFeedUnavailableError
from cidash.live.hub import CLOSE_GOING_AWAY, GONE, FeedHub, Subscriber
from cidash.store import MAX_ID

log = logging.getLogger(__name__)

SSE_RETRY_AFTER_S = 10

router = APIRouter(prefix=API_PREFIX, tags=["live"], lifespan=close_live_at_shutdown)


@router.get(
    "/events",
    dependencies=[Depends(require_read)],
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "The feed as server-sent events"},
        503: {"description": "Too many live clients (Retry-After), or no live feed on this replica"},
    },
)
async def feed_events(
    request: Request,
    kinds: str | None = Query(None, description="comma-separated: run, alert, state"),
    ci: str | None = Query(None, description="comma-separated CI names"),
    projects: str | None = Query(None, description="comma-separated projects"),
    since: int | None = Query(None, ge=0, le=MAX_ID, description="resume after this feed id (Last-Event-ID wins)"),
    last_event_id: str | None = Header(None, alias="Last-Event-ID"),
) -> StreamingResponse:
    try:
        resume = resume_point(last_event_id, "Last-Event-ID") if last_event_id is not None else since
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    if slots_full(request.app):
        raise HTTPException(503, full_reason(request.app), headers={"Retry-After": str(SSE_RETRY_AFTER_S)})
    try:
        hub = await hub_of(request.app)
    except LiveFeedUnavailableError:
        raise HTTPException(503, "no live feed on this replica (built without a bus)") from None
    client = Subscriber("sse", hub.options.queue_size, asyncio.get_running_loop().time())
    hub.subscribe(client, feed_filter([kinds], [ci], [projects]), resume)
    return StreamingResponse(
        _stream(request.app, hub, client),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _close_event(code: int, reason: str) -> str:
    """The SSE form of a websocket close: an ``event: close`` with its code and reason."""
    return f"event: close\ndata: {orjson.dumps({'code': code, 'reason': reason}).decode()}\n\n"


async def _stream(app: FastAPI, hub: FeedHub, client: Subscriber) -> AsyncIterator[str]:
    if not take_slot(app, "sse"):  # others took the last slots since the check above
        yield _close_event(CLOSE_TRY_AGAIN, full_reason(app))
        return
    hub.join(client)
    try:
        async for chunk in _chunks(hub, client):
            yield chunk
    except Exception as exc:  # e.g. the database failed the replay: end the stream, the client resumes
        log.warning("SSE subscriber ended: %s", type(exc).__name__)
    finally:
        release_slot("sse")
        hub.leave(client)


async def _chunks(hub: FeedHub, client: Subscriber) -> AsyncIterator[str]:
    async with contextlib.aclosing(hub.deliveries(client)) as deliveries:
        async for what, number, kind, text in deliveries:
            if what == "message":
                yield f"id: {number}\nevent: {kind}\ndata: {text}\n\n"
            elif what == "hello":
                yield f"retry: 2000\n: hello {number}\n\n"
            elif what == "ping":
                yield ": ping\n\n"
            elif what == "close":
                if number not in (GONE, CLOSE_GOING_AWAY):
                    yield _close_event(number, text)
                return
