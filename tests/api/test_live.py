"""The live feed (cidash.live.hub behind cidash.api.ws and cidash.api.sse) over a real uvicorn
server: subscriptions and filters, resuming with `since` (exactly the missed messages, once, also
while new ones are published), slow consumers, ping/pong and idle timeouts, and server-sent events
with Last-Event-ID."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
import uvicorn
import websockets
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect

from cidash import metrics
from cidash.alerts.engine import AlertEngine
from cidash.api import sse as sse_feed
from cidash.api import ws as ws_feed
from cidash.api.live_slots import live_clients
from cidash.api.routes import alerts as alert_routes
from cidash.api.state import AppState, attach_state, state_of
from cidash.config import AlertRuleConfig, CISystemConfig, Settings
from cidash.domain.comments import AccountRef
from cidash.domain.views import FeedMessage
from cidash.health import HealthCache
from cidash.live import hub as live
from cidash.live.bus import Bus, LocalBus, RedisBus
from cidash.live.hub import LiveOptions
from cidash.store import Store
from cidash.store import feed as feed_module
from tests.support.store_fixtures import T0, THIRD_PARTY, ZUUL, observed, parsed
from tests.support.wait import until

pytestmark = pytest.mark.timeout(120)

FAST = LiveOptions(ping_interval_s=30, idle_timeout_s=60, queue_size=1000, replay_page=500, poll_interval_s=0.5)


@dataclass
class Site:
    """A running server plus the write path that feeds it (store -> bus, engine -> bus)."""

    store: Store
    bus: Bus
    engine: AlertEngine
    app: FastAPI
    port: int
    change: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))

    def ws_url(self, query: str = "") -> str:
        return f"ws://127.0.0.1:{self.port}/api/v1/ws{query}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def post(self, results: list[tuple[str, AccountRef, str]], *, one_change: bool = False) -> list[FeedMessage]:
        """Store CI results (each on a change of its own, or all on one), publish their run
        messages, then the incident messages they cause."""
        items = []
        shared = next(self.change)
        for result, author, ci in results:
            change = shared if one_change else next(self.change)
            posted = T0 + timedelta(seconds=change)
            comment = observed(f"{result} {change}", change=change, author=author, posted_at=posted)
            items.append((comment, parsed(result=result, ci=ci)))
        stats = await self.store.write_comments(items)
        runs = stats.after_insert
        assert isinstance(runs, list)
        await self.bus.publish(runs)
        alerts = await self.engine.on_feed(runs)
        await self.bus.publish(alerts)
        return runs + alerts

    async def fail(self, count: int = 1) -> list[FeedMessage]:
        """`count` incidents of acme-ci, each opened by a failure where the reference passed and
        resolved by its next success: two notifications (alert) and two state messages each."""
        posted = []
        for _ in range(count):
            posted += await self.post([("SUCCESS", ZUUL, "zuul"), ("FAILURE", THIRD_PARTY, "acme-ci")], one_change=True)
            posted += await self.post([("SUCCESS", THIRD_PARTY, "acme-ci")])
        return posted

    async def stored(self, since: int, kinds: list[str] | None = None) -> list[FeedMessage]:
        async with self.store.engine.connect() as conn:
            return await feed_module.messages_since(conn, since, feed_module.FeedFilter.of(kinds=kinds), limit=100_000)

    def hub(self) -> live.FeedHub:
        hub = state_of(self.app).live_hub
        assert hub is not None, "no live client has connected yet"
        return hub


@asynccontextmanager
async def running(
    store: Store, options: LiveOptions = FAST, settings: Settings | None = None, bus: Bus | None = None
) -> AsyncIterator[Site]:
    store.after_insert = feed_module.append_run_messages
    rules = [AlertRuleConfig(name="each", kind="failure", ci=["acme-ci"], for_s=0, clear_s=0)]
    engine = AlertEngine(store, rules, clock=lambda: T0 + timedelta(hours=2), notify_within_s=86400)
    await store.sync_ci_configs([CISystemConfig(account="zuul", reference=True)], ["review"])
    bus = bus or LocalBus()
    # the live routes alone, without the API's guard and middleware, over the app state create_app makes
    app = FastAPI()
    app.include_router(ws_feed.router)
    app.include_router(sse_feed.router)
    app.include_router(alert_routes.router)
    attach_state(
        app,
        AppState(
            settings=settings or Settings(),
            store=store,
            health_cache=HealthCache(ttl_s=30, stale_s=0),
            bus=bus,
            alerts=engine,
            live_options=options,
        ),
    )
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan="on", timeout_graceful_shutdown=3
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:
            if task.done():
                await task
            await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Site(store, bus, engine, app, port)
    finally:
        server.should_exit = True
        await task
        await engine.close()
        await bus.close()


async def recv(ws: ClientConnection, limit_s: float = 5.0) -> dict[str, Any]:
    async with asyncio.timeout(limit_s):
        message = json.loads(await ws.recv())
    assert isinstance(message, dict)
    return message


async def feed_messages(ws: ClientConnection, count: int, limit_s: float = 10.0) -> list[dict[str, Any]]:
    """The next `count` feed messages (pings answered and skipped)."""
    found: list[dict[str, Any]] = []
    async with asyncio.timeout(limit_s):
        while len(found) < count:
            message = await recv(ws, limit_s)
            if message["type"] == "ping":
                await ws.send('{"type":"pong"}')
                continue
            found.append(message)
    return found


async def nothing_more(ws: ClientConnection, wait: float = 0.3) -> None:
    try:
        async with asyncio.timeout(wait):
            message = await ws.recv()
    except TimeoutError:
        return
    raise AssertionError(f"unexpected message {message!r}")


def ids(messages: list[dict[str, Any]] | list[FeedMessage]) -> list[int]:
    return [m["id"] if isinstance(m, dict) else m.id for m in messages]


async def subscribe(site: Site, **subscription: Any) -> ClientConnection:
    ws = await connect(site.ws_url(), compression=None)
    await ws.send(json.dumps({"type": "subscribe", **subscription}))
    return ws


# -- subscriptions --------------------------------------------------------------------------------------


def filters(site: Site) -> set[tuple[str, str]]:
    """(kinds, ci) of each subscriber as the hub applies them ("*": any)."""

    def text(values: frozenset[str] | None) -> str:
        return "*" if values is None else ",".join(sorted(values))

    return {(text(c.flt.kinds), text(c.flt.ci)) for c in site.hub().clients}


async def test_subscribe_and_receive_live_messages_with_filters(store: Store) -> None:
    async with running(store) as site:
        await site.post([("SUCCESS", ZUUL, "zuul")])
        newest = (await site.stored(0))[-1].id
        runs = await subscribe(site, kinds=["run"], ci=["acme-ci"])
        alerts = await connect(site.ws_url("?kinds=alert,state"), compression=None)  # CLI style: no message needed
        everything = await subscribe(site)
        for ws in (runs, alerts, everything):
            assert await recv(ws) == {"type": "hello", "id": newest}
        assert live_clients() == 3
        assert metrics.REGISTRY.get_sample_value("cidash_websocket_clients", {"transport": "websocket"}) == 3

        posted = await site.post([("FAILURE", THIRD_PARTY, "acme-ci"), ("SUCCESS", ZUUL, "zuul")])
        posted += await site.fail()
        acme_runs = [m for m in posted if m.type == "run" and m.data["ci"] == "acme-ci"]
        got = await feed_messages(runs, len(acme_runs))
        assert got == [{"type": "run", "id": m.id, "data": m.data} for m in acme_runs]
        notices = [m for m in posted if m.type in ("alert", "state")]
        assert [m.type for m in notices] == ["alert", "state", "alert", "state"]  # open, resolve
        assert await feed_messages(alerts, len(notices)) == [
            {"type": m.type, "id": m.id, "data": m.data} for m in notices
        ]
        assert ids(await feed_messages(everything, len(posted))) == sorted(ids(posted))
        await nothing_more(runs)

        # a later subscribe message changes the filters of the running stream
        await runs.send(json.dumps({"type": "subscribe", "kinds": ["run"], "ci": ["zuul"]}))
        await until(lambda: ("run", "zuul") in filters(site), 5, "the hub to apply the new filter")
        zuul = [
            m
            for m in await site.post([("SUCCESS", ZUUL, "zuul"), ("FAILURE", THIRD_PARTY, "acme-ci")])
            if m.type == "run"
        ]
        assert ids(await feed_messages(runs, 1)) == [zuul[0].id]
        await nothing_more(runs)
        # ... and back to every CI: runs of both arrive again
        await runs.send(json.dumps({"type": "subscribe", "kinds": ["run"]}))
        await until(lambda: ("run", "*") in filters(site), 5, "the hub to apply the wider filter")
        both = await site.post([("FAILURE", THIRD_PARTY, "acme-ci"), ("SUCCESS", ZUUL, "zuul")])
        both_runs = [m for m in both if m.type == "run"]
        assert ids(await feed_messages(runs, len(both_runs))) == ids(both_runs)
        await nothing_more(runs)
        for ws in (runs, alerts, everything):
            await ws.close()
        await until(lambda: live_clients() == 0, 5, "the clients to be gone")
        assert metrics.REGISTRY.get_sample_value("cidash_websocket_clients", {"transport": "websocket"}) == 0


async def test_since_above_the_newest_id_means_the_feed_restarted(store: Store) -> None:
    async with running(store) as site:
        await site.fail()
        newest = (await site.stored(0))[-1].id
        ws = await subscribe(site, since=newest + 1000)
        assert await recv(ws) == {"type": "hello", "id": newest}  # the client resets to this id
        posted = await site.fail()
        assert ids(await feed_messages(ws, len(posted))) == ids(posted)
        await ws.close()


async def test_the_hub_offers_a_message_to_the_followers_of_its_ci_only() -> None:
    """Routing by CI (so 1,000 clients are not all asked about each message), kept in step with
    filter changes, and emptied when clients leave."""
    hub = live.FeedHub(LocalBus(), None, FAST)  # type: ignore[arg-type]  # routing needs no store
    acme, zuul, every = (live.Subscriber("websocket", 10, 0.0) for _ in range(3))
    for client, ci in ((acme, ["acme-ci"]), (zuul, ["zuul", "acme-ci"]), (every, [])):
        hub.join(client)
        hub.subscribe(client, feed_module.FeedFilter.of(ci=ci), None)

    def item(number: int, ci: object) -> live._Item:
        return live._Item(number, "run", ci, "p", f'{{"id":{number}}}')

    hub._publish(item(1, "acme-ci"))
    hub._publish(item(2, "zuul"))
    hub._publish(item(3, None))  # a CI-wide notice without a CI: only for clients of every CI
    assert [[i.id for i in c.buffer] for c in (acme, zuul, every)] == [[1], [1, 2], [1, 2, 3]]
    hub.subscribe(acme, feed_module.FeedFilter.of(ci=["zuul"]), None)
    hub._publish(item(4, "acme-ci"))
    hub._publish(item(5, "zuul"))
    assert [[i.id for i in c.buffer] for c in (acme, zuul, every)] == [[1, 5], [1, 2, 4, 5], [1, 2, 3, 4, 5]]
    for client in (acme, zuul, every):
        hub.leave(client)
    assert (hub.clients, hub._by_ci, hub._any_ci) == (set(), {}, set())


async def test_clients_that_join_together_are_pinged_at_different_times() -> None:
    """Each client's ping has its own phase in the second half of the interval, so 1,000 clients
    that reconnect together do not all get (and answer) a ping in the same instant."""
    hub = live.FeedHub(LocalBus(), None, LiveOptions(ping_interval_s=15))  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    before = loop.time()
    clients = [live.Subscriber("websocket", 10, before) for _ in range(1000)]
    for client in clients:
        hub.join(client)
    after = loop.time()  # joining 1,000 may take a while on a busy machine
    due = sorted(client.next_ping for client in clients)
    assert before + 7.5 <= due[0] and due[-1] <= after + 15
    assert due[-1] - due[0] > 5  # spread over the window, not bunched


# -- resuming: THE guarantee ----------------------------------------------------------------------------


async def test_reconnect_with_since_gets_exactly_the_missed_messages_once(store: Store) -> None:
    options = LiveOptions(ping_interval_s=30, idle_timeout_s=60, queue_size=6, replay_page=3, poll_interval_s=0.5)
    async with running(store, options) as site:
        ws = await subscribe(site, kinds=["alert", "state"])
        await recv(ws)
        first = [m for m in await site.fail(2) if m.type in ("alert", "state")]
        received = await feed_messages(ws, len(first))
        assert ids(received) == ids(first)
        last_id = received[-1]["id"]
        await ws.close()

        # while it is away: alerts (and runs it does not want)
        missed = [m for m in await site.fail(12) if m.type in ("alert", "state")]
        missed += [m for m in await site.post([("SUCCESS", THIRD_PARTY, "acme-ci")]) if m.type in ("alert", "state")]
        assert {m.data["state"] for m in first + missed if m.type == "state"} <= {
            "healthy",
            "degraded",
            "failing",
            "unknown",
        }

        # it comes back while new alerts keep being published
        stop = asyncio.Event()
        rounds = 0

        async def produce() -> None:
            nonlocal rounds
            while not stop.is_set():
                await site.fail()
                rounds += 1
                await asyncio.sleep(0.005)

        producer = asyncio.create_task(produce())
        try:
            await until(lambda: rounds >= 1, 10, "new alerts before the client comes back")
            ws = await subscribe(site, kinds=["alert", "state"], since=last_id)
            hello = await recv(ws)
            assert hello["type"] == "hello" and hello["id"] > last_id
            collected = await feed_messages(ws, len(missed))
            assert collected == [{"type": m.type, "id": m.id, "data": m.data} for m in missed]  # the backlog, in order
            replayed = rounds
            await until(lambda: rounds >= replayed + 3, 10, "live alerts after the replay")
        finally:
            stop.set()
            await producer
        expected = await site.stored(last_id, kinds=["alert", "state"])
        collected += await feed_messages(ws, len(expected) - len(collected))
        assert ids(collected) == ids(expected)  # nothing missed, nothing twice, in order
        assert collected == [{"type": m.type, "id": m.id, "data": m.data} for m in expected]
        later = [m for m in await site.fail() if m.type in ("alert", "state")]
        assert ids(await feed_messages(ws, len(later))) == ids(later)
        await nothing_more(ws)
        await ws.close()


async def test_a_burst_during_the_replay_is_neither_lost_nor_doubled(store: Store) -> None:
    """The client's queue overflows while it replays: the replay reads further instead of closing."""
    options = LiveOptions(ping_interval_s=30, idle_timeout_s=60, queue_size=4, replay_page=1, poll_interval_s=0.5)
    async with running(store, options) as site:
        await site.fail()
        since = (await site.stored(0))[-1].id
        await site.fail(40)  # the backlog: 40 runs and their alerts
        ws = await connect(site.ws_url(f"?since={since}"), compression=None, max_queue=1)
        await recv(ws)
        # wait until the server is replaying (one row per page, a slow reader)
        await until(lambda: any(c.replaying for c in site.hub().clients), 10, "the replay", step_s=0.001)
        burst = await site.post([("FAILURE", THIRD_PARTY, "acme-ci")] * 10)  # one publish, 20+ messages
        client = next(iter(site.hub().clients))
        expected = await site.stored(since)
        collected = await feed_messages(ws, len(expected), limit_s=30)
        assert ids(collected) == ids(expected)
        assert set(ids(burst)) <= set(ids(collected))
        assert client.drops >= 1  # the queue did overflow during the replay
        assert client.close_code is None
        await nothing_more(ws)
        await ws.close()


# -- slow consumers, heartbeats ---------------------------------------------------------------------------


async def test_a_slow_consumer_is_closed_and_the_others_keep_receiving(store: Store) -> None:
    options = LiveOptions(ping_interval_s=30, idle_timeout_s=60, queue_size=16, replay_page=100, poll_interval_s=5)
    async with running(store, options) as site:
        slow = await connect(site.ws_url("?kinds=run"), compression=None, max_queue=1)
        fast = await connect(site.ws_url("?kinds=run"), compression=None)
        assert (await recv(slow))["type"] == (await recv(fast))["type"] == "hello"
        hub = site.hub()
        big = os.urandom(48_000).hex()  # incompressible, so the slow socket's buffers fill up
        received: list[int] = []

        async def read_fast() -> None:
            with contextlib.suppress(websockets.ConnectionClosed):
                async for raw in fast:
                    received.append(json.loads(raw)["id"])

        reader = asyncio.create_task(read_fast())
        next_id = hub.last + 1
        published = 0
        async with asyncio.timeout(30):
            while not any(c.close_code == live.CLOSE_SLOW_CONSUMER for c in hub.clients):
                batch = [FeedMessage(type="run", id=next_id + i, data={"ci": "x", "blob": big}) for i in range(8)]
                next_id += len(batch)
                published += len(batch)
                await site.bus.publish(batch)
                await asyncio.sleep(0.002)
        await until(lambda: len(received) >= published, 30, "the fast client to receive everything")
        assert received == list(range(hub.last - published + 1, hub.last + 1))  # the fast one got all, in order
        # the slow one reads at last: what was on the way, then the close
        with pytest.raises(websockets.ConnectionClosed):
            async with asyncio.timeout(20):
                async for _ in slow:
                    pass
        assert (slow.close_code, slow.close_reason) == (4008, "slow consumer")
        await site.bus.publish([FeedMessage(type="run", id=next_id, data={"ci": "x"})])
        await until(lambda: received[-1] == next_id, 5, "the fast client to receive the last message")
        await fast.close()
        await reader


async def test_ping_pong_and_idle_timeout(store: Store) -> None:
    options = LiveOptions(ping_interval_s=0.15, idle_timeout_s=0.8, queue_size=100, replay_page=100, poll_interval_s=5)
    async with running(store, options) as site:
        await site.fail()
        newest = (await site.stored(0))[-1].id
        lively = await subscribe(site)
        quiet = await subscribe(site)
        assert (await recv(lively))["id"] == (await recv(quiet))["id"] == newest
        ping = await recv(lively)
        assert ping == {"type": "ping", "id": newest}
        await lively.send('{"type":"ping"}')
        while (message := await recv(lively))["type"] == "ping":
            await lively.send('{"type":"pong"}')
        assert message == {"type": "pong"}
        # the quiet one never answers: closed with 4000; the lively one answers and stays
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 2.0
        while loop.time() < deadline:
            message = await recv(lively)
            assert message["type"] == "ping"
            await lively.send('{"type":"pong"}')
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await recv(quiet)
        assert quiet.close_code == 4000
        posted = await site.fail()
        assert ids(await feed_messages(lively, len(posted))) == ids(posted)
        await lively.close()


async def test_a_client_that_never_subscribes_is_closed_when_idle(store: Store) -> None:
    options = LiveOptions(ping_interval_s=0.1, idle_timeout_s=0.3, queue_size=10, replay_page=10, poll_interval_s=5)
    async with running(store, options) as site:
        ws = await connect(site.ws_url(), compression=None)
        received = []
        with pytest.raises(websockets.ConnectionClosed):
            async with asyncio.timeout(5):
                while True:
                    received.append(await ws.recv())
        assert received == []  # no hello (nor anything else) before a subscription
        assert ws.close_code == 4000


async def test_read_token_protects_the_feed(store: Store) -> None:
    settings = Settings(api={"read_token": "r-token"})  # type: ignore[arg-type]
    async with running(store, settings=settings) as site:
        with pytest.raises(websockets.InvalidStatus) as refused:
            await connect(site.ws_url("?kinds=run"), compression=None)
        assert refused.value.response.status_code == 403
        ws = await connect(site.ws_url("?kinds=run&token=r-token"), compression=None)
        assert (await recv(ws))["type"] == "hello"
        await ws.close()
        async with httpx.AsyncClient(base_url=site.http) as client:
            assert (await client.get("/api/v1/events")).status_code == 401


# -- server-sent events ---------------------------------------------------------------------------------------


async def sse_events(
    lines: AsyncIterator[str], count: int, limit_s: float = 10.0
) -> tuple[list[dict[str, Any]], list[str]]:
    """The next `count` events of a stream's lines (and the comments seen on the way)."""
    events: list[dict[str, Any]] = []
    comments: list[str] = []
    current: dict[str, Any] = {}
    async with asyncio.timeout(limit_s):
        while len(events) < count:
            line = await anext(lines)
            if line.startswith(":"):
                comments.append(line)
            elif line == "":
                if "data" in current:
                    events.append(current)
                current = {}
            else:
                key, _, value = line.partition(": ")
                current[key] = value
    return events, comments


async def test_server_sent_events_resume_from_last_event_id(store: Store) -> None:
    options = LiveOptions(ping_interval_s=0.2, idle_timeout_s=0.5, queue_size=100, replay_page=2, poll_interval_s=5)
    async with running(store, options) as site:
        first = await site.fail(2)
        last_seen = next(m for m in first if m.type == "alert").id
        missed = [m for m in (await site.stored(last_seen, kinds=["alert"]))]
        async with (
            httpx.AsyncClient(base_url=site.http, timeout=None) as client,
            client.stream("GET", "/api/v1/events?kinds=alert", headers={"Last-Event-ID": str(last_seen)}) as response,
        ):
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = response.aiter_lines()
            events, comments = await sse_events(lines, len(missed))
            assert [int(e["id"]) for e in events] == ids(missed)
            assert all(e["event"] == "alert" for e in events)
            assert [json.loads(e["data"]) for e in events] == [
                {"type": "alert", "id": m.id, "data": m.data} for m in missed
            ]
            assert comments[0].startswith(": hello ")
            live_alerts = [m for m in await site.fail(3) if m.type == "alert"]
            events, comments = await sse_events(lines, len(live_alerts))
            assert [int(e["id"]) for e in events] == ids(live_alerts)
            await asyncio.sleep(0.5)  # no client messages needed: SSE is not closed for idleness
            more = [m for m in await site.fail() if m.type == "alert"]
            events, comments = await sse_events(lines, len(more))
            assert [int(e["id"]) for e in events] == ids(more)
            assert ": ping" in comments
        async with (
            httpx.AsyncClient(base_url=site.http, timeout=None) as client,
            client.stream("GET", f"/api/v1/events?kinds=alert&since={last_seen}") as response,
        ):
            events, _ = await sse_events(response.aiter_lines(), 2)
            assert [int(e["id"]) for e in events] == ids(missed[:2])


# -- replicas ---------------------------------------------------------------------------------------------------


async def test_two_replicas_on_redis_both_serve_the_feed(store: Store) -> None:
    """The collector publishes on one replica's RedisBus; subscribers of both replicas get everything."""
    prefix = f"test-live-{os.urandom(6).hex()}"
    url = os.environ.get("CIDASH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    bus_a, bus_b = RedisBus(url, prefix=prefix), RedisBus(url, prefix=prefix)
    await bus_a.start()  # fails loudly (CidashError) when Redis is down
    await bus_b.start()
    async with running(store, bus=bus_a) as a, running(store, bus=bus_b) as b:
        on_a = await subscribe(a, kinds=["run", "alert"])
        on_b = await subscribe(b, kinds=["run", "alert"])
        assert (await recv(on_a))["type"] == (await recv(on_b))["type"] == "hello"
        posted = await a.fail(3)  # written and published by replica a only
        wanted = [m for m in posted if m.type in ("run", "alert")]
        assert ids(await feed_messages(on_a, len(wanted))) == sorted(ids(wanted))
        assert ids(await feed_messages(on_b, len(wanted))) == sorted(ids(wanted))
        await on_a.close()
        await on_b.close()
