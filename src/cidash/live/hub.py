"""The live feed: websocket ``/api/v1/ws`` and server-sent events ``/api/v1/events``.

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

SSE: ``GET /api/v1/events?kinds=&ci=&projects=`` resumes from the ``Last-Event-ID`` header (or
``?since=``) with the same guarantees; each message is ``id: N``, ``event: <type>`` and
``data: <the message JSON, as on the websocket>``; ``: ping`` comments every 15 s. A bad
``Last-Event-ID`` or ``since`` is a 422; too many live clients a 503 with ``Retry-After``.

How: one :class:`FeedHub` per application subscribes to the bus once and fans out to the
clients' bounded queues (one writer per connection, no per-client bus subscription), offering
each message only to the clients that follow its CI or every CI. The hub
delivers feed ids strictly in order: a message above the next expected id first makes the hub
read the missing ids from the feed table (ids are committed in order, see
:mod:`cidash.store.feed`), and it polls the feed when the bus is quiet, so a lost bus message (a
Redis reconnect, a full queue, a collector in another process without Redis) only costs latency.
A connecting client joins the hub before it reads its backlog; while it replays, live messages
wait in its queue and the ones already replayed are skipped (if the queue overflows during the
replay, it is dropped and the replay simply reads further: everything is in the feed table).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request, WebSocket
from fastapi.responses import StreamingResponse
from starlette.datastructures import QueryParams

from cidash import metrics
from cidash.api.auth import bearer_token, read_allowed, require_read
from cidash.api.params import parse_id
from cidash.config import Settings
from cidash.domain.views import FeedMessage
from cidash.live.bus import Bus, BusClosedError
from cidash.service.process import cancel_and_wait
from cidash.store import MAX_ID, FeedFilter, Store, StoredFeedRow, feed

log = logging.getLogger(__name__)

CLOSE_HEARTBEAT = 4000
CLOSE_SLOW_CONSUMER = 4008
CLOSE_UNAVAILABLE = 1011
CLOSE_POLICY = 1008
CLOSE_TRY_AGAIN = 1013
CLOSE_INVALID = 4022  # like HTTP 422: the client sent something this protocol cannot take
MAX_REASON_BYTES = 123  # what a websocket close frame can carry
SSE_RETRY_AFTER_S = 10
_GONE = -1  # the peer went away: nothing to send
PING_TICKS = 30  # the ping loop looks for due clients this many times per ping interval


@dataclass(frozen=True, slots=True)
class LiveOptions:
    """Set ``app.state.live_options`` to change them (tests use short intervals)."""

    ping_interval_s: float = 15.0
    idle_timeout_s: float = 45.0
    queue_size: int = 1000
    replay_page: int = 500
    poll_interval_s: float = 2.0
    bus_queue_size: int = 100_000


_counts: dict[str, int] = {"websocket": 0, "sse": 0}


def live_clients() -> int:
    """Live-feed subscribers connected to this process (websocket and SSE)."""
    return _counts["websocket"] + _counts["sse"]


def live_clients_by_transport() -> dict[str, int]:
    return dict(_counts)


def _count_client(transport: Literal["websocket", "sse"], delta: int) -> None:
    _counts[transport] += delta
    metrics.WEBSOCKET_CLIENTS.labels(transport=transport).set(_counts[transport])


def _max_clients(app: FastAPI) -> int | None:
    settings: Settings | None = getattr(app.state, "settings", None)
    return settings.api.max_live_clients if settings is not None else None


def _take_slot(app: FastAPI, transport: Literal["websocket", "sse"]) -> bool:
    """Count one more live client unless the process serves api.max_live_clients already (the
    check and the count happen together, with no await between: the cap cannot be overshot)."""
    limit = _max_clients(app)
    if limit is not None and live_clients() >= limit:
        return False
    _count_client(transport, 1)
    return True


def _full_reason(app: FastAPI) -> str:
    return f"too many live clients (api.max_live_clients = {_max_clients(app)}); try again later"


def _reason(text: str) -> str:
    """`text` cut to what a close frame carries."""
    return text.encode()[:MAX_REASON_BYTES].decode(errors="ignore")


# -- hub ---------------------------------------------------------------------------------------------


class _Item:
    """One feed message as every subscriber receives it (encoded once)."""

    __slots__ = ("ci", "id", "kind", "project", "text")

    def __init__(self, message_id: int, kind: str, ci: object, project: object, text: str) -> None:
        self.id = message_id
        self.kind = kind
        self.ci = ci
        self.project = project
        self.text = text

    @classmethod
    def of_message(cls, message: FeedMessage) -> _Item:
        data = message.data
        text = orjson.dumps({"type": message.type, "id": message.id, "data": data}).decode()
        return cls(message.id, message.type, data.get("ci"), data.get("project"), text)

    @classmethod
    def of_row(cls, row: StoredFeedRow) -> _Item:
        text = row.message_text()
        try:
            data = orjson.loads(row.payload)
        except orjson.JSONDecodeError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        return cls(row.id, row.kind, data.get("ci"), data.get("project"), text)


class _Client:
    __slots__ = (
        "buffer",
        "close_code",
        "close_reason",
        "cursor",
        "drops",
        "flt",
        "last_seen",
        "maxsize",
        "next_ping",
        "ping_due",
        "pongs",
        "replaying",
        "since",
        "started",
        "transport",
        "wake",
    )

    def __init__(self, transport: Literal["websocket", "sse"], maxsize: int, now: float) -> None:
        self.transport = transport
        self.maxsize = maxsize
        self.buffer: deque[_Item] = deque()
        self.wake = asyncio.Event()
        self.flt = FeedFilter()
        self.since: int | None = None
        self.started = False  # subscription known: receives messages
        self.replaying = False
        self.cursor = 0  # the last id sent
        self.drops = 0  # queue overflows while replaying
        self.close_code: int | None = None
        self.close_reason = ""
        self.last_seen = now  # last message from the client (websocket)
        self.next_ping = now  # set by the hub when the client joins
        self.ping_due = False
        self.pongs = 0

    def subscribe(self, flt: FeedFilter, since: int | None) -> None:
        self.flt = flt
        if not self.started:
            self.since = since
            self.started = True
            self.wake.set()

    def offer(self, item: _Item) -> None:
        if not self.started or self.close_code is not None:
            return
        if item.id <= self.cursor or not self.flt.matches(item.kind, item.ci, item.project):
            return
        if len(self.buffer) >= self.maxsize:
            self.buffer.clear()
            if self.replaying:
                self.drops += 1  # the replay reads these from the feed table instead
            else:
                self.close(CLOSE_SLOW_CONSUMER, "slow consumer")
            return
        self.buffer.append(item)
        self.wake.set()

    def close(self, code: int, reason: str) -> None:
        if self.close_code is None:
            self.close_code = code
            self.close_reason = reason
        self.wake.set()


class FeedHub:
    """One bus subscription per application, fanned out to the clients in feed-id order."""

    def __init__(self, bus: Bus, store: Store, options: LiveOptions) -> None:
        self.bus = bus
        self.store = store
        self.options = options
        self.clients: set[_Client] = set()
        # who may want a message, by its CI: a message is offered to the clients following its CI
        # and to those following every CI, not to all of them (1,000 calls per message otherwise)
        self._by_ci: dict[str, set[_Client]] = {}
        self._any_ci: set[_Client] = set()
        self.last = 0
        self._ready = asyncio.Event()
        self._start_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._failure: BaseException | None = None
        self._db_errors = 0

    async def start(self) -> None:
        async with self._start_lock:
            if self._tasks and all(not task.done() for task in self._tasks):
                return
            await self.stop()
            self._ready.clear()
            self._failure = None
            self._tasks = [
                asyncio.create_task(self._run(), name="live feed hub"),
                asyncio.create_task(self._tick(), name="live feed pings"),
            ]
            ready = asyncio.create_task(self._ready.wait())
            await asyncio.wait([ready, self._tasks[0]], return_when=asyncio.FIRST_COMPLETED)
            ready.cancel()
            if not self._ready.is_set():
                failure = self._failure or RuntimeError("the live feed hub stopped")
                await self.stop()
                raise failure

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            await cancel_and_wait(task)
        for client in list(self.clients):
            client.close(1001, "server shutting down")

    def join(self, client: _Client) -> None:
        # a random phase: 1,000 clients that (re)connect together are not all pinged, and do not
        # all answer, in the same instant every 15 s, which would hold up the messages behind them
        interval = self.options.ping_interval_s
        client.next_ping = asyncio.get_running_loop().time() + interval * random.uniform(0.5, 1.0)
        self.clients.add(client)
        self._route(client)

    def leave(self, client: _Client) -> None:
        self.clients.discard(client)
        self._unroute(client)

    def subscribe(self, client: _Client, flt: FeedFilter, since: int | None) -> None:
        """Set (or change) a client's filters, keeping the routing in step."""
        joined = client in self.clients
        if joined:
            self._unroute(client)
        client.subscribe(flt, since)
        if joined:
            self._route(client)

    def _route(self, client: _Client) -> None:
        if client.flt.ci is None:
            self._any_ci.add(client)
        else:
            for name in client.flt.ci:
                self._by_ci.setdefault(name, set()).add(client)

    def _unroute(self, client: _Client) -> None:
        self._any_ci.discard(client)
        for name in client.flt.ci or ():
            followers = self._by_ci.get(name)
            if followers is not None:
                followers.discard(client)
                if not followers:
                    del self._by_ci[name]

    async def newest(self) -> int:
        async with self.store.engine.connect() as conn:
            return await feed.newest_id(conn)

    async def read(
        self, since: int, flt: FeedFilter | None, limit: int, before: int | None = None
    ) -> list[StoredFeedRow]:
        async with self.store.engine.connect() as conn:
            return await feed.read_since(conn, since, flt, limit, before=before)

    async def _run(self) -> None:
        try:
            bus_depth = metrics.QUEUE_DEPTH.labels(queue="live:bus")
            async with self.bus.subscribe(self.options.bus_queue_size) as subscription:
                self.last = await self.newest()
                self._ready.set()
                while True:
                    try:
                        async with asyncio.timeout(self.options.poll_interval_s):
                            message = await subscription.next()
                        bus_depth.set(subscription.pending())
                    except TimeoutError:
                        await self._catch_up()
                        continue
                    if message is None:  # messages may have been lost on the way
                        await self._catch_up()
                    else:
                        await self._message(message)
        except BusClosedError:
            if not self._ready.is_set():
                raise
            log.warning("the bus was closed: the live feed now polls the database")
            while True:
                await asyncio.sleep(self.options.poll_interval_s)
                await self._catch_up()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._failure = exc
            if self._ready.is_set():
                log.exception("the live feed hub failed")
            raise

    async def _message(self, message: FeedMessage) -> None:
        if message.id <= self.last:
            return  # delivered already (from the feed table, or twice by the bus)
        if message.id > self.last + 1:
            await self._catch_up(before=message.id)  # ids between: rolled back, or lost on the way
            if message.id <= self.last:
                return
        self._publish(_Item.of_message(message))

    async def _catch_up(self, before: int | None = None) -> None:
        page = self.options.replay_page
        try:
            while True:
                rows = await self.read(self.last, None, page, before=before)
                for row in rows:
                    self._publish(_Item.of_row(row))
                if len(rows) < page:
                    break
            self._db_errors = 0
        except Exception as exc:
            self._db_errors += 1
            if self._db_errors == 1 or self._db_errors % 100 == 0:
                log.warning("live feed: cannot read the feed table (%s)", type(exc).__name__)

    def _publish(self, item: _Item) -> None:
        self.last = item.id
        if isinstance(item.ci, str):
            for client in self._by_ci.get(item.ci, ()):
                client.offer(item)
        for client in self._any_ci:
            client.offer(item)

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.options.ping_interval_s
        while True:
            await asyncio.sleep(interval / PING_TICKS)
            now = loop.time()
            for client in list(self.clients):
                if client.next_ping > now:
                    continue
                client.next_ping = now + interval
                if client.transport == "websocket" and now - client.last_seen > self.options.idle_timeout_s:
                    client.close(CLOSE_HEARTBEAT, "heartbeat timeout")
                else:
                    client.ping_due = True
                    client.wake.set()


def options_of(app: FastAPI) -> LiveOptions:
    options = getattr(app.state, "live_options", None)
    return options if isinstance(options, LiveOptions) else LiveOptions()


async def hub_of(app: FastAPI) -> FeedHub:
    """The application's hub, started on first use (needs ``app.state.bus`` and ``.store``)."""
    hub: FeedHub | None = getattr(app.state, "live_hub", None)
    if hub is None:
        hub = FeedHub(app.state.bus, app.state.store, options_of(app))
        app.state.live_hub = hub
    await hub.start()
    return hub


async def close_live(app: FastAPI) -> None:
    """Stop the hub (the router's lifespan does it at shutdown)."""
    hub: FeedHub | None = getattr(app.state, "live_hub", None)
    if hub is not None:
        await hub.stop()


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    await close_live(app)


router = APIRouter(prefix="/api/v1", tags=["live"], lifespan=_lifespan)


# -- one subscriber ------------------------------------------------------------------------------------

Event = tuple[str, int, str, str]  # (what, id, kind, text): hello | message | ping | pong | close


async def _events(hub: FeedHub, client: _Client) -> AsyncGenerator[Event, None]:
    """What to send to one started client, in order; ends after a ("close", code, "", reason)."""
    newest = await hub.newest()
    yield ("hello", newest, "", "")
    since = client.since
    cursor = newest if since is None or since > newest or since < 0 else since
    if cursor < newest:
        client.replaying = True
        page = hub.options.replay_page
        while True:
            drops = client.drops
            rows = await hub.read(cursor, client.flt, page)
            for row in rows:
                yield ("message", row.id, row.kind, row.message_text())
                cursor = client.cursor = row.id
            if len(rows) < page and client.drops == drops:
                break
        client.replaying = False
    client.cursor = max(client.cursor, cursor)
    while True:
        while not (client.buffer or client.ping_due or client.pongs or client.close_code is not None):
            client.wake.clear()
            await client.wake.wait()
        if client.close_code is not None:
            yield ("close", client.close_code, "", client.close_reason)
            return
        while client.pongs:
            client.pongs -= 1
            yield ("pong", 0, "", "")
        if client.ping_due:
            client.ping_due = False
            yield ("ping", hub.last, "", "")
        while client.buffer and client.close_code is None:
            item = client.buffer.popleft()
            if item.id <= client.cursor:
                continue
            client.cursor = item.id
            yield ("message", item.id, item.kind, item.text)


def _split(values: Iterable[object]) -> list[str]:
    found: list[str] = []
    for value in values:
        if isinstance(value, str):
            found.extend(part.strip() for part in value.split(",") if part.strip())
    return found


def _since(value: object, what: str = "since") -> int | None:
    """A resume point: None when absent, a feed id 0..2^63 - 1, else ValueError saying why."""
    if value is None or value == "":
        return None
    return parse_id(value, what, minimum=0)


_QUERY_KEYS = ("kinds", "ci", "projects", "since")


def _from_query(params: QueryParams) -> tuple[FeedFilter, int | None] | None:
    if not any(key in params for key in _QUERY_KEYS):
        return None
    flt = FeedFilter.of(
        _split(params.getlist("kinds")), _split(params.getlist("ci")), _split(params.getlist("projects"))
    )
    return flt, _since(params.get("since"))


def _listed(value: object) -> list[object]:
    if isinstance(value, list):
        return value
    return [value] if value is not None else []


def _from_message(data: dict[str, Any]) -> tuple[FeedFilter, int | None]:
    flt = FeedFilter.of(
        _split(_listed(data.get("kinds"))), _split(_listed(data.get("ci"))), _split(_listed(data.get("projects")))
    )
    return flt, _since(data.get("since"))


def _token_ok(settings: Settings | None, header: str | None, query_token: str | None) -> bool:
    if settings is None:
        return True
    return read_allowed(settings.api, bearer_token(header) or query_token)


# -- websocket ------------------------------------------------------------------------------------------


async def _read_socket(websocket: WebSocket, hub: FeedHub, client: _Client) -> None:
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
        client.close(_GONE, "")


@router.websocket("/ws")
async def feed_socket(websocket: WebSocket) -> None:
    app: FastAPI = websocket.app
    if not _token_ok(
        getattr(app.state, "settings", None),
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
    if not _take_slot(app, "websocket"):
        await websocket.close(CLOSE_TRY_AGAIN, _reason(_full_reason(app)))
        return
    try:
        await _follow(websocket, app, query)
    finally:
        _count_client("websocket", -1)


async def _follow(websocket: WebSocket, app: FastAPI, query: tuple[FeedFilter, int | None] | None) -> None:
    try:
        hub = await hub_of(app)
    except Exception as exc:
        log.warning("live feed unavailable: %s", type(exc).__name__)
        await websocket.close(CLOSE_UNAVAILABLE, "live feed unavailable")
        return
    loop = asyncio.get_running_loop()
    client = _Client("websocket", hub.options.queue_size, loop.time())
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
        elif client.close_code != _GONE:
            with contextlib.suppress(Exception):
                await websocket.close(client.close_code, client.close_reason)
    finally:
        hub.leave(client)
        await cancel_and_wait(reader)


async def _serve_socket(websocket: WebSocket, hub: FeedHub, client: _Client) -> None:
    async with contextlib.aclosing(_events(hub, client)) as events:
        try:
            async for what, number, _kind, text in events:
                if what == "message":
                    await websocket.send_text(text)
                elif what == "ping":
                    await websocket.send_text(f'{{"type":"ping","id":{number}}}')
                elif what == "pong":
                    await websocket.send_text('{"type":"pong"}')
                elif what == "hello":
                    await websocket.send_text(f'{{"type":"hello","id":{number}}}')
                elif what == "close":
                    if number != _GONE:
                        await websocket.close(number, text)
                    return
        except Exception as exc:  # the peer went away mid-send, or the database failed the replay
            if client.close_code is None:
                log.debug("websocket subscriber ended: %s", type(exc).__name__)
                with contextlib.suppress(Exception):
                    await websocket.close(CLOSE_UNAVAILABLE, "live feed error")


# -- server-sent events ----------------------------------------------------------------------------------


@router.get(
    "/events",
    dependencies=[Depends(require_read)],
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "The feed as server-sent events"}},
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
        resume = _since(last_event_id, "Last-Event-ID") if last_event_id is not None else since
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    if live_clients() >= (_max_clients(request.app) or MAX_ID):
        raise HTTPException(503, _full_reason(request.app), headers={"Retry-After": str(SSE_RETRY_AFTER_S)})
    hub = await hub_of(request.app)
    flt = FeedFilter.of(_split([kinds or ""]), _split([ci or ""]), _split([projects or ""]))
    client = _Client("sse", hub.options.queue_size, asyncio.get_running_loop().time())
    hub.subscribe(client, flt, resume)
    return StreamingResponse(
        _sse(request.app, hub, client),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _sse_close(code: int, reason: str) -> str:
    """The SSE form of a websocket close: an ``event: close`` with its code and reason."""
    return f"event: close\ndata: {orjson.dumps({'code': code, 'reason': reason}).decode()}\n\n"


async def _sse(app: FastAPI, hub: FeedHub, client: _Client) -> AsyncIterator[str]:
    if not _take_slot(app, "sse"):  # others took the last slots since the check above
        yield _sse_close(CLOSE_TRY_AGAIN, _full_reason(app))
        return
    hub.join(client)
    try:
        async for chunk in _sse_chunks(hub, client):
            yield chunk
    except Exception as exc:  # e.g. the database failed the replay: end the stream, the client resumes
        log.warning("SSE subscriber ended: %s", type(exc).__name__)
    finally:
        _count_client("sse", -1)
        hub.leave(client)


async def _sse_chunks(hub: FeedHub, client: _Client) -> AsyncIterator[str]:
    async with contextlib.aclosing(_events(hub, client)) as events:
        async for what, number, kind, text in events:
            if what == "message":
                yield f"id: {number}\nevent: {kind}\ndata: {text}\n\n"
            elif what == "hello":
                yield f"retry: 2000\n: hello {number}\n\n"
            elif what == "ping":
                yield ": ping\n\n"
            elif what == "close":
                if number not in (_GONE, 1001):
                    yield _sse_close(number, text)
                return
