"""The live feed's fan-out: one :class:`FeedHub` per application subscribes to the bus once and
fans out to its subscribers' bounded queues (one writer per connection, no per-client bus
subscription), offering each message only to the subscribers that follow its CI or every CI. The
websocket (:mod:`cidash.api.ws`) and server-sent events (:mod:`cidash.api.sse`) endpoints each
serve one :class:`Subscriber` what :meth:`FeedHub.deliveries` yields.

The hub delivers feed ids strictly in order: a message above the next expected id first makes the
hub read the missing ids from the feed table (ids are committed in order, see
:mod:`cidash.store.feed`), and it polls the feed when the bus is quiet, so a lost bus message (a
Redis reconnect, a full queue, a collector in another process without Redis) only costs latency.
A connecting subscriber joins the hub before it reads its backlog; while it replays, live messages
wait in its queue and the ones already replayed are skipped (if the queue overflows during the
replay, it is dropped and the replay simply reads further: everything is in the feed table). A
subscriber whose queue overflows otherwise is closed as a slow consumer; one that sends nothing
for the idle timeout (websocket) is closed by the heartbeat.

Imports ``domain``, ``store`` and the bus; never ``api``: the endpoints read the hub, not the reverse.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Literal, NamedTuple

import orjson

from cidash import metrics
from cidash.domain.views import FeedMessage
from cidash.live.bus import Bus, BusClosedError
from cidash.store import FeedFilter, Store, StoredFeedRow, feed
from cidash.tasks import cancel_and_wait

log = logging.getLogger(__name__)

Transport = Literal["websocket", "sse"]
# the hub's own closes, in websocket close codes (the SSE endpoint sends them as an ``event: close``)
CLOSE_GOING_AWAY = 1001  # the server stops
CLOSE_HEARTBEAT = 4000
CLOSE_SLOW_CONSUMER = 4008
GONE = -1  # the peer went away: nothing to send
PING_TICKS = 30  # the ping loop looks for due subscribers this many times per ping interval


@dataclass(frozen=True, slots=True)
class LiveOptions:
    """The live feed's intervals and bounds (tests use short intervals)."""

    ping_interval_s: float = 15.0
    idle_timeout_s: float = 45.0
    queue_size: int = 1000
    replay_page: int = 500
    poll_interval_s: float = 2.0
    bus_queue_size: int = 100_000


class Delivery(NamedTuple):
    """One thing to send a subscriber: ``hello`` (number: the newest feed id), ``message``
    (number: its id, kind, text: the message JSON), ``ping`` (number: the newest id), ``pong``,
    or ``close`` (number: the close code, text: the reason), which is the last."""

    what: Literal["hello", "message", "ping", "pong", "close"]
    number: int = 0
    kind: str = ""
    text: str = ""


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


class Subscriber:
    """One websocket or SSE connection as the hub sees it: its filters, its bounded queue, and
    why it was closed."""

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

    def __init__(self, transport: Transport, maxsize: int, now: float) -> None:
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
        self.clients: set[Subscriber] = set()
        # who may want a message, by its CI: a message is offered to the clients following its CI
        # and to those following every CI, not to all of them (1,000 calls per message otherwise)
        self._by_ci: dict[str, set[Subscriber]] = {}
        self._any_ci: set[Subscriber] = set()
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
            client.close(CLOSE_GOING_AWAY, "server shutting down")

    def join(self, client: Subscriber) -> None:
        # a random phase: 1,000 clients that (re)connect together are not all pinged, and do not
        # all answer, in the same instant every 15 s, which would hold up the messages behind them
        interval = self.options.ping_interval_s
        client.next_ping = asyncio.get_running_loop().time() + interval * random.uniform(0.5, 1.0)
        self.clients.add(client)
        self._route(client)

    def leave(self, client: Subscriber) -> None:
        self.clients.discard(client)
        self._unroute(client)

    def subscribe(self, client: Subscriber, flt: FeedFilter, since: int | None) -> None:
        """Set (or change) a client's filters, keeping the routing in step."""
        joined = client in self.clients
        if joined:
            self._unroute(client)
        client.subscribe(flt, since)
        if joined:
            self._route(client)

    def _route(self, client: Subscriber) -> None:
        if client.flt.ci is None:
            self._any_ci.add(client)
        else:
            for name in client.flt.ci:
                self._by_ci.setdefault(name, set()).add(client)

    def _unroute(self, client: Subscriber) -> None:
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

    async def deliveries(self, client: Subscriber) -> AsyncGenerator[Delivery, None]:
        """What to send one started subscriber, in order: hello, its backlog (from ``since``), then
        live messages, pings and pongs; ends after a ``close``."""
        newest = await self.newest()
        yield Delivery("hello", newest)
        since = client.since
        cursor = newest if since is None or since > newest or since < 0 else since
        if cursor < newest:
            client.replaying = True
            page = self.options.replay_page
            while True:
                drops = client.drops
                rows = await self.read(cursor, client.flt, page)
                for row in rows:
                    yield Delivery("message", row.id, row.kind, row.message_text())
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
                yield Delivery("close", client.close_code, text=client.close_reason)
                return
            while client.pongs:
                client.pongs -= 1
                yield Delivery("pong")
            if client.ping_due:
                client.ping_due = False
                yield Delivery("ping", self.last)
            while client.buffer and client.close_code is None:
                item = client.buffer.popleft()
                if item.id <= client.cursor:
                    continue
                client.cursor = item.id
                yield Delivery("message", item.id, item.kind, item.text)
