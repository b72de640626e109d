"""The live feed's websocket, ``/api/v1/ws``; :class:`cidash.live.hub.FeedHub` fans the feed out.

Websocket protocol (``frontend/src/lib/ws.ts`` speaks it):

1. The client sends ``{"type":"subscribe","kinds":[...],"ci":[...],"projects":[...],"since":N}``
   (every key optional), or puts the same in the URL (``?kinds=run,alert&ci=a,b&projects=p&since=N``;
   any of them starts the stream without waiting for a message). Empty or absent lists mean
   everything; messages without a project (state changes, CI-wide alerts) pass a projects filter.
   A later subscribe message changes the filters of the running stream.
2. The server sends ``{"type":"hello","id":<newest feed id>}``, then, when ``since`` is given
   (and not above the newest id), every stored message with ``id > since`` matching the filters,
   in id order, then live messages: ``{"type":"run"|"alert"|"state","id":N,"data":{...}}``.
   Ids only increase: nothing is missed between the backlog and the live part, nothing twice.
3. ``{"type":"ping","id":<newest id>}`` every 15 s (each client on its own phase), answered by
   ``{"type":"pong"}``; a client ``{"type":"ping"}`` gets ``{"type":"pong"}``. Nothing from the
   client for 45 s: close 4000.
4. A client that does not keep up (its queue of 1,000 messages overflows) is closed with 4008
   "slow consumer"; the others are never held up by it. It resumes with ``since``.
5. A message that is not a JSON object, or a ``since`` that is not a whole number from 0 to
   2^63 - 1 (in the URL or a subscribe message), closes the socket with 4022 and the reason
   (messages of an unknown ``type`` are ignored). A process already serving
   ``api.max_live_clients`` websocket and SSE clients closes a new socket at once with 1013
   "try again later"; a message over ``api.max_body_bytes`` closes it with 1009.

"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, WebSocket
from starlette.datastructures import QueryParams

from cidash.api.auth import bearer_token, read_allowed
from cidash.api.deps import API_PREFIX
from cidash.api.live_slots import (
    CLOSE_TRY_AGAIN,
    close_live_at_shutdown,
    full_reason,
    hub_of,
    release_slot,
    take_slot,
)
from cidash.api.params import feed_filter, resume_point
from cidash.api.state import state_of
from cidash.config import Settings
from cidash.live.hub import GONE, FeedHub, Subscriber
from cidash.store import FeedFilter
from cidash.tasks import cancel_and_wait

log = logging.getLogger(__name__)

CLOSE_POLICY = 1008
CLOSE_UNAVAILABLE = 1011
CLOSE_INVALID = 4022  # like HTTP 422: the client sent something this protocol cannot take
MAX_REASON_BYTES = 123  # what a websocket close frame can carry
_QUERY_KEYS = ("kinds", "ci", "projects", "since")

Subscription = tuple[FeedFilter, int | None]  # the filters and the resume point

router = APIRouter(prefix=API_PREFIX, tags=["live"], lifespan=close_live_at_shutdown)


def _reason(text: str) -> str:
    """`text` cut to what a close frame carries."""
    return text.encode()[:MAX_REASON_BYTES].decode(errors="ignore")


def _from_query(params: QueryParams) -> Subscription | None:
    if not any(key in params for key in _QUERY_KEYS):
        return None
    flt = feed_filter(params.getlist("kinds"), params.getlist("ci"), params.getlist("projects"))
    return flt, resume_point(params.get("since"))


def _listed(value: object) -> list[object]:
    if isinstance(value, list):
        return value
    return [value] if value is not None else []


def _from_message(data: dict[str, Any]) -> Subscription:
    flt = feed_filter(_listed(data.get("kinds")), _listed(data.get("ci")), _listed(data.get("projects")))
    return flt, resume_point(data.get("since"))


def _token_ok(settings: Settings, header: str | None, query_token: str | None) -> bool:
    return read_allowed(settings.api, bearer_token(header) or query_token)


async def _read_socket(websocket: WebSocket, hub: FeedHub, client: Subscriber) -> None:
    loop = asyncio.get_running_loop()
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            client.last_seen = loop.time()
            raw = message.get("text")
            if raw is None:
                raw = message.get("bytes")
            try:
                data = orjson.loads(raw) if raw else None
            except orjson.JSONDecodeError as exc:
                client.close(CLOSE_INVALID, _reason(f"invalid message: not JSON ({exc})"))
                break
            if not isinstance(data, dict):
                client.close(CLOSE_INVALID, "invalid message: not a JSON object")
                break
            kind = data.get("type")
            if kind == "ping":
                client.pongs += 1
                client.wake.set()
            elif kind == "subscribe":
                try:
                    subscription = _from_message(data)
                except ValueError as exc:
                    client.close(CLOSE_INVALID, _reason(str(exc)))
                    break
                hub.subscribe(client, *subscription)
    except Exception as exc:  # a broken connection ends the reader like a disconnect
        log.debug("websocket reader ended: %s", type(exc).__name__)
    finally:
        client.close(GONE, "")


@router.websocket("/ws")
async def feed_socket(websocket: WebSocket) -> None:
    app: FastAPI = websocket.app
    if not _token_ok(
        state_of(app).settings,
        websocket.headers.get("authorization"),
        websocket.query_params.get("token"),
    ):
        await websocket.close(CLOSE_POLICY, "a valid token is required")
        return
    await websocket.accept()
    try:
        query = _from_query(websocket.query_params)
    except ValueError as exc:
        await websocket.close(CLOSE_INVALID, _reason(str(exc)))
        return
    if not take_slot(app, "websocket"):
        await websocket.close(CLOSE_TRY_AGAIN, _reason(full_reason(app)))
        return
    try:
        await _follow(websocket, app, query)
    finally:
        release_slot("websocket")


async def _follow(websocket: WebSocket, app: FastAPI, query: Subscription | None) -> None:
    try:
        hub = await hub_of(app)
    except Exception as exc:
        log.warning("live feed unavailable: %s", type(exc).__name__)
        await websocket.close(CLOSE_UNAVAILABLE, "live feed unavailable")
        return
    loop = asyncio.get_running_loop()
    client = Subscriber("websocket", hub.options.queue_size, loop.time())
    if query is not None:
        hub.subscribe(client, *query)
    hub.join(client)
    reader = asyncio.create_task(_read_socket(websocket, hub, client))
    try:
        while not client.started and client.close_code is None:
            client.wake.clear()
            await client.wake.wait()
        if client.close_code is None:
            await _serve_socket(websocket, hub, client)
        elif client.close_code != GONE:
            with contextlib.suppress(Exception):
                await websocket.close(client.close_code, client.close_reason)
    finally:
        hub.leave(client)
        await cancel_and_wait(reader)


async def _serve_socket(websocket: WebSocket, hub: FeedHub, client: Subscriber) -> None:
    async with contextlib.aclosing(hub.deliveries(client)) as deliveries:
        try:
            async for what, number, _kind, text in deliveries:
                if what == "message":
                    await websocket.send_text(text)
                elif what == "ping":
                    await websocket.send_text(f'{{"type":"ping","id":{number}}}')
                elif what == "pong":
                    await websocket.send_text('{"type":"pong"}')
                elif what == "hello":
                    await websocket.send_text(f'{{"type":"hello","id":{number}}}')
                elif what == "close":
                    if number != GONE:
                        await websocket.close(number, text)
                    return
        except Exception as exc:  # the peer went away mid-send, or the database failed the replay
            if client.close_code is None:
                log.debug("websocket subscriber ended: %s", type(exc).__name__)
                with contextlib.suppress(Exception):
                    await websocket.close(CLOSE_UNAVAILABLE, "live feed error")
