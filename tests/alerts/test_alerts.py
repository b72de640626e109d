"""cidash.alerts.engine on both engines: incidents open at the run that made them true, update without
notifying, resolve once; failures are judged against the reference CI; history and maintenance
stay quiet; silence; every edge notified once (takeover included); webhooks per edge (signed,
retried, logged); ack, silence and maintenance through the REST routes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import pytest_asyncio
import sqlalchemy as sa

from cidash.alerts.engine import DEFAULT_RULES, AlertEngine, silence_incident
from cidash.alerts.webhooks import WebhookSender, verify
from cidash.api.app import create_app
from cidash.api.state import state_of
from cidash.config import AlertRuleConfig, Settings, WebhookConfig
from cidash.domain.urls import redact_url
from cidash.domain.views import AlertOut, FeedMessage, IncidentOut
from cidash.errors import ConfigError
from cidash.parsing import CommentKind, ParsedComment
from cidash.store import Store, alerts_store
from cidash.store import feed as feed_module
from cidash.store.schema import alerts_t, incidents_t
from tests.support.alerts_world import (
    OTHER_CI,
    STREAK,
    World,
    check_feed_rows,
    fail_where_reference_passed,
    make_world,
    rule,
    stored_alerts,
    stored_incidents,
    summary,
    with_reference,
)
from tests.support.store_fixtures import T0, THIRD_PARTY, ZUUL, observed, parsed
from tests.support.wait import until


async def test_an_incident_opens_updates_and_resolves_once(store: Store) -> None:
    world = await with_reference(store, [rule("streak", "consecutive_failures", **STREAK)])
    assert await fail_where_reference_passed(world, 1) == []
    first_failure = world.t
    assert await fail_where_reference_passed(world, 2) == []
    opened = await fail_where_reference_passed(world, 3)
    assert summary(opened) == [("incident", "open"), ("alert", "open"), ("state", "unknown")]
    incident = IncidentOut.model_validate(opened[0].data)
    assert incident.started_at == first_failure  # the first run that made it true, not "now"
    assert incident.state == "firing" and incident.failed == 3 and incident.quiet is None
    assert "3 of 3 runs failed where the reference CI passed" in incident.summary
    # more failures join it: an update, no notification
    assert summary(await fail_where_reference_passed(world, 4)) == [("incident", "update")]
    # a failure the reference failed too is the change's: inhibited, neither counted nor ending it
    await world.post("FAILURE", author=ZUUL, ci="zuul", change=5)
    inhibited = await world.post("FAILURE", change=5)
    assert [IncidentOut.model_validate(m.data).inhibited for m in inhibited] == [1]
    # count - 1 passes in a row end the condition; with clear_s=0, clear_runs=1 it resolves at once
    assert summary(await world.post("SUCCESS", change=6)) == [("incident", "update")]
    resolved = await world.post("SUCCESS", change=7)
    cleared_at = world.t
    assert summary(resolved) == [("incident", "resolve"), ("alert", "resolve"), ("state", "unknown")]
    done = IncidentOut.model_validate(resolved[0].data)
    assert done.state == "resolved" and done.resolved_at == cleared_at and done.id == incident.id
    assert await world.post("SUCCESS", change=8) == []
    alerts = await stored_alerts(store)
    assert [(a.incident_id, a.edge, a.muted) for a in alerts] == [
        (incident.id, "open", False),
        (incident.id, "resolve", False),
    ]
    await check_feed_rows(store, world.alerts)
    # the same runs evaluated again (a replayed batch, a takeover): nothing new
    async with store.engine.connect() as conn:
        replay = await feed_module.messages_since(conn, 0, feed_module.FeedFilter.of(kinds=["run"]))
    assert await world.engine.on_feed(replay) == []
    assert await world.engine.tick() == []
    assert len(await stored_alerts(store)) == 2 and len(await stored_incidents(store)) == 1


async def test_failures_the_reference_shared_open_nothing(store: Store) -> None:
    world = await with_reference(store, [rule("streak", "consecutive_failures", **STREAK)])
    for change in range(1, 6):
        await world.post("FAILURE", author=ZUUL, ci="zuul", change=change)
        assert await world.post("FAILURE", change=change) == []
    # no reference result: the other CIs decide (most of them passed: it counts)
    for change in range(10, 12):
        await world.post("SUCCESS", author=OTHER_CI, ci="other-ci", change=change)
        assert await world.post("FAILURE", change=change) == []
    # a failure nobody judged yet waits; the reference's late success opens the incident then
    assert await world.post("FAILURE", change=12) == []
    late = await world.post("SUCCESS", author=ZUUL, ci="zuul", change=12)
    assert summary(late)[:2] == [("incident", "open"), ("alert", "open")]
    assert late[0].data["ci"] == "acme-ci"


async def test_damping_holds_before_opening_and_clears_before_resolving(store: Store) -> None:
    streak = rule("streak", "consecutive_failures", count=2, for_s=1800, clear_s=1800, clear_runs=3)
    world = await with_reference(store, [streak])
    world.now[0] = T0 + timedelta(minutes=5)  # the runs below are at T0 + 1..4 min
    for change in (1, 2):
        assert await fail_where_reference_passed(world, change) == []
    world.now[0] = world.t + timedelta(minutes=10)
    assert await world.engine.tick() == []  # held 10 min of 30
    world.now[0] = world.t + timedelta(minutes=31)
    assert summary(await world.engine.tick())[:2] == [("incident", "open"), ("alert", "open")]
    await world.post("SUCCESS", change=3, at=world.now[0])  # clear from here: 1 pass of 3
    cleared_at = world.now[0]
    world.now[0] += timedelta(minutes=20)
    assert [m.data.get("event") for m in await world.engine.tick() if m.type == "alert"] == []
    # a quiet night: clear for hours, but time alone is no evidence that the CI recovered
    world.now[0] += timedelta(hours=8)
    assert [m.data.get("event") for m in await world.engine.tick() if m.type == "alert"] == []
    assert (await stored_incidents(store))[0].state == "firing"
    # a failure that does not make a streak keeps it clear; two more passes resolve it
    await world.post("SUCCESS", author=ZUUL, ci="zuul", change=4, at=world.now[0])
    await world.post("FAILURE", change=4, at=world.now[0] + timedelta(seconds=10))
    await world.post("SUCCESS", change=5, at=world.now[0] + timedelta(seconds=20))
    assert (await stored_incidents(store))[0].state == "firing"
    resolved = await world.post("SUCCESS", change=6, at=world.now[0] + timedelta(seconds=30))
    assert summary(resolved)[:2] == [("incident", "resolve"), ("alert", "resolve")]
    assert IncidentOut.model_validate(resolved[0].data).resolved_at == cleared_at


async def test_time_alone_never_clears_a_failure_rate(store: Store) -> None:
    rate = rule("rate", "failure_rate", threshold=0.5, window_s=3600, min_runs=4, for_s=0, clear_s=600)
    world = await with_reference(store, [rate])
    for change in range(1, 5):
        await fail_where_reference_passed(world, change)
    assert [i.state for i in await stored_incidents(store)] == ["firing"]
    # days without a run: the window holds the last min_runs runs, all failed; nothing resolves
    for days in (1, 2, 3):
        world.now[0] = world.t + timedelta(days=days)
        assert [m for m in await world.engine.tick() if m.type == "alert"] == []
    assert [i.state for i in await stored_incidents(store)] == ["firing"]
    # passes bring the rate down (clear from the second: 2 of 4 failed); 5 passes from there resolve it
    world.now[0] = world.t + timedelta(days=4)
    for change in range(10, 16):
        assert [i.state for i in await stored_incidents(store)] == ["firing"]
        await world.post("SUCCESS", change=change, at=world.now[0] + timedelta(minutes=change))
    world.now[0] += timedelta(hours=1)
    await world.engine.tick()
    assert [i.state for i in await stored_incidents(store)] == ["resolved"]


async def test_history_updates_incidents_but_pages_no_one(store: Store) -> None:
    world = await with_reference(store, [rule("streak", "consecutive_failures", **STREAK)])
    old = T0 - timedelta(days=2)
    messages = []
    for i in range(3):
        messages += await fail_where_reference_passed(world, 100 + i, at=old + timedelta(minutes=i))
    incident = IncidentOut.model_validate(next(m.data for m in messages if m.type == "incident"))
    assert incident.started_at == old + timedelta(seconds=30) and incident.quiet == "history"
    alerts = await stored_alerts(store)
    assert [(a.edge, a.muted, a.quiet) for a in alerts] == [("open", True, "history")]
    assert alerts[0].created_at == world.now[0] and alerts[0].started_at == incident.started_at


async def test_maintenance_and_silence_keep_edges_quiet(store: Store, receiver: Receiver) -> None:
    hook = {"url": receiver.url}
    world = await with_reference(store, [rule("streak", "consecutive_failures", webhooks=[hook], **STREAK)])
    await world.post("SUCCESS", change=999)  # the CI exists from its first comment
    async with store.engine.begin() as conn:
        ref = (await alerts_store.ci_refs(conn, [("review", "acme-ci")]))[("review", "acme-ci")]
        await alerts_store.add_maintenance(
            conn, ref.id, world.now[0] - timedelta(hours=1), world.now[0] + timedelta(hours=1), "ops", "upgrade", T0
        )
    for change in (1, 2, 3):
        await fail_where_reference_passed(world, change)
    incident = (await stored_incidents(store))[0]
    assert incident.quiet == "maintenance"
    await world.engine.drain()
    assert receiver.requests == []
    # silenced until resolved: the resolve edge is quiet too
    found = await silence_incident(store, incident.id, "ops", "known", None)
    assert found is not None and found[0].silenced_until_resolved and found[0].silenced_by == "ops"
    for change in (4, 5):
        await world.post("SUCCESS", change=change)
    alerts = await stored_alerts(store)
    assert [(a.edge, a.quiet) for a in alerts] == [("open", "maintenance"), ("resolve", "maintenance")]
    await world.engine.drain()
    assert receiver.requests == []


async def test_silent_via_tick_and_its_end(store: Store) -> None:
    world = await make_world(store, [rule("quiet", "silent", silent_s=3600)])
    await world.post("SUCCESS", at=T0)
    # another CI answers a patch set created after acme's last comment
    created = T0 + timedelta(minutes=30)
    await world.post("SUCCESS", author=OTHER_CI, ci="other-ci", at=T0 + timedelta(minutes=40), created_at=created)
    assert await world.engine.tick(created + timedelta(minutes=59)) == []
    opened = await world.engine.tick(created + timedelta(minutes=61))
    assert summary(opened)[:2] == [("incident", "open"), ("alert", "open")]
    assert IncidentOut.model_validate(opened[0].data).started_at == created + timedelta(hours=1)
    assert await world.engine.tick(created + timedelta(hours=3)) == []  # still silent: nothing new
    world.now[0] = created + timedelta(hours=4)
    back = await world.post("SUCCESS", at=created + timedelta(hours=4))
    assert summary(back)[:2] == [("incident", "resolve"), ("alert", "resolve")]


async def test_unreadable_comments_open_an_incident_until_they_are_read_again(store: Store) -> None:
    """`unreadable` is damped like the run rules: held ``for_s`` (default 30 min) before it opens,
    and resolved only after ``clear_runs`` (default 5) read comments and ``clear_s`` (1 h)."""
    store.after_insert = feed_module.append_run_messages
    unreadable = rule("unread", "unreadable", threshold=0.5, window_s=3600, min_runs=4)
    now = [T0 + timedelta(minutes=40)]
    engine = AlertEngine(store, [unreadable], clock=lambda: now[0])
    unread = ParsedComment(CommentKind.OTHER, True, "acme-ci", None, None, None, (), "listed in config; no report")
    comments = [
        (observed(f"Patch Set 1:\n\nunreadable {i}", change=500 + i, posted_at=T0 + timedelta(minutes=30 + i)), unread)
        for i in range(4)
    ]
    await store.write_comments(
        [(observed("ok", change=499, posted_at=T0 + timedelta(minutes=29)), parsed()), *comments]
    )
    assert await engine.tick() == []  # 3 of 4 unread since T0+30 min: held 10 min of 30
    now[0] = T0 + timedelta(minutes=61)
    opened = await engine.tick()
    assert summary(opened)[:2] == [("incident", "open"), ("alert", "open")]
    incident = IncidentOut.model_validate(opened[0].data)
    assert incident.started_at == T0 + timedelta(minutes=30)  # the first unread comment of the share
    assert "neither a result nor a start" in incident.summary
    assert await engine.tick() == []  # still unreadable: nothing new
    now[0] += timedelta(hours=2)  # the window holds none of them any more, but nothing was read either
    assert await engine.tick() == []
    # read comments again: the share falls to 2 of 4 at the second; 5 read ones from there and 1 h
    back = now[0]
    results = [
        (observed(f"read {i}", change=600 + i, posted_at=back + timedelta(minutes=i)), parsed()) for i in range(1, 7)
    ]
    for item in results[:5]:
        await store.write_comments([item])
        assert await engine.tick() == []
    await store.write_comments(results[5:])
    now[0] = back + timedelta(minutes=30)
    assert await engine.tick() == []  # enough read comments, clear for 28 min of 60
    now[0] = back + timedelta(minutes=63)
    resolved = await engine.tick()
    assert summary(resolved)[:2] == [("incident", "resolve"), ("alert", "resolve")]
    done = IncidentOut.model_validate(resolved[0].data)
    assert done.id == incident.id and done.resolved_at == back + timedelta(minutes=2)
    assert len(await stored_incidents(store)) == 1


async def test_a_short_burst_of_unreadable_comments_opens_nothing(store: Store) -> None:
    store.after_insert = feed_module.append_run_messages
    unreadable = rule("unread", "unreadable", threshold=0.5, window_s=3600, min_runs=4, for_s=1800)
    now = [T0]
    engine = AlertEngine(store, [unreadable], clock=lambda: now[0])
    unread = ParsedComment(CommentKind.OTHER, True, "acme-ci", None, None, None, (), "listed in config; no report")
    items = [(observed(f"ok {i}", change=700 + i, posted_at=T0 + timedelta(minutes=i)), parsed()) for i in range(2)]
    items += [
        (observed(f"Patch Set 1:\n\n?? {i}", change=710 + i, posted_at=T0 + timedelta(minutes=5 + i)), unread)
        for i in range(3)
    ]
    await store.write_comments(items)
    now[0] = T0 + timedelta(minutes=8)
    assert await engine.tick() == []  # 3 of 5 unread, for 3 min of the 30 it must hold
    # read again 10 min later: the condition held 10 min of the 30 it needs
    again = [
        (observed(f"ok {i}", change=720 + i, posted_at=T0 + timedelta(minutes=15 + i)), parsed()) for i in range(4)
    ]
    await store.write_comments(again)
    now[0] = T0 + timedelta(hours=3)
    assert await engine.tick() == []
    assert await stored_incidents(store) == []


async def test_only_the_servers_this_replica_collects(store: Store) -> None:
    collecting: list[str] = []
    world = await make_world(store, [rule("each", "failure")], servers=lambda: collecting)
    await world.post("SUCCESS", author=OTHER_CI, ci="other-ci", change=1)
    assert await world.post("FAILURE", change=1) == []  # server "review" is another replica's
    assert await world.engine.tick() == []
    collecting.append("review")  # elected for it: the next evaluation pays what is owed
    assert summary(await world.engine.tick())[:2] == [("incident", "open"), ("alert", "open")]


async def test_a_takeover_pays_the_edges_a_killed_collector_owed(store: Store) -> None:
    world = await make_world(store, [rule("each", "failure", ci=["acme-ci"], severity="info")])
    await world.post("SUCCESS", author=OTHER_CI, ci="other-ci", change=4242)
    # killed after committing this run, before evaluating it: nobody was notified
    comment = observed("FAILURE owed", change=4242, author=THIRD_PARTY, posted_at=world.t + timedelta(minutes=1))
    stats = await store.write_comments([(comment, parsed(result="FAILURE", ci="acme-ci"))])
    assert isinstance(stats.after_insert, list) and len(stats.after_insert) == 1
    server = str(stats.after_insert[0].data["server"])
    owed = await world.engine.catch_up(server)
    assert summary(owed)[:2] == [("incident", "open"), ("alert", "open")]
    assert await world.engine.catch_up(server) == [], "evaluating again notifies nothing twice"
    assert await world.engine.catch_up("another-server") == []
    async with store.engine.connect() as conn:
        edges = (await conn.execute(sa.select(sa.func.count()).select_from(alerts_t))).scalar_one()
        incidents = (await conn.execute(sa.select(sa.func.count()).select_from(incidents_t))).scalar_one()
    assert (edges, incidents) == (1, 1)


# -- webhooks -----------------------------------------------------------------------------------------------


@dataclass
class Receiver:
    url: str
    statuses: dict[str, list[int]]  # path -> the next statuses to answer (then 200)
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A tiny HTTP server: answers the next status of `statuses[path]` (then 200), records requests."""
    state = Receiver("", {})

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            state.requests.append((headers, body))
            path = lines[0].split(" ")[1].split("?")[0]
            waiting = state.statuses.get(path, [])
            status = waiting.pop(0) if waiting else 200
            writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
            await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    state.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield state
    finally:
        server.close()
        await server.wait_closed()


async def test_webhooks_per_edge_signed_retried_and_logged(store: Store, receiver: Receiver) -> None:
    receiver.statuses = {"/hook": [500, 503]}
    hooks = [
        WebhookConfig(url=receiver.url + "?token=abc", secret="s3cret"),  # type: ignore[arg-type]
        WebhookConfig(url=receiver.url.replace("http://", "http://user:pw@") + "/plain"),
    ]
    sender = WebhookSender(store, backoff_s=0.01, max_backoff_s=0.05)
    world = await make_world(
        store, [rule("each", "failure", webhooks=[h.model_dump() for h in hooks])], webhooks=sender
    )
    hooks = list(world.engine.rules[0].webhooks)
    await world.post("SUCCESS", author=OTHER_CI, ci="other-ci", change=1)
    fired = await world.post("FAILURE", change=1)
    await world.engine.drain()
    alert = AlertOut.model_validate(next(m.data for m in fired if m.type == "alert"))
    assert alert.edge == "open" and alert.incident_id is not None and alert.started_at is not None
    assert len(receiver.requests) == 4  # 500, 503 (retried) and 200 for one, 200 for the other
    signed = [(h, b) for h, b in receiver.requests if "x-cidash-signature" in h]
    plain = [(h, b) for h, b in receiver.requests if "x-cidash-signature" not in h]
    assert len(signed) == 3 and len(plain) == 1
    for headers, body in receiver.requests:
        assert AlertOut.model_validate_json(body) == alert
        assert headers["x-cidash-alert-id"] == str(alert.id)
    for headers, body in signed:
        signature, timestamp = headers["x-cidash-signature"], headers["x-cidash-timestamp"]
        assert verify("s3cret", body, signature, timestamp)
        assert not verify("wrong", body, signature, timestamp)
        assert not verify("s3cret", body, signature, str(int(timestamp) + 1))  # the timestamp is signed
    async with store.engine.connect() as conn:
        log = await alerts_store.deliveries(conn, alert.id)
    by_url: dict[str, list[tuple[int, int | None, bool]]] = {}
    for row in log:
        by_url.setdefault(row.url, []).append((row.attempt, row.status_code, row.ok))
    assert by_url == {
        redact_url(hooks[0].url): [(1, 500, False), (2, 503, False), (3, 200, True)],
        redact_url(hooks[1].url): [(1, 200, True)],
    }
    # a second failure joins the incident: no delivery; the success resolves it: one per webhook
    await world.post("SUCCESS", author=OTHER_CI, ci="other-ci", change=2)
    await world.post("FAILURE", change=2)
    await world.post("SUCCESS", change=3)
    await world.engine.drain()
    edges = [AlertOut.model_validate_json(b).edge for _, b in receiver.requests if b]
    assert edges.count("resolve") == 2 and edges.count("open") == 4
    views = world.engine.rule_views()
    assert views[0].webhooks == [receiver.url + "?token=%2A%2A%2A", receiver.url + "/plain"]
    await world.engine.close()


async def edge_cycle(world: World, change: int, resolve: bool = True) -> list[AlertOut]:
    """An incident of the `each` failure rule opened (and resolved): its notifications."""
    await world.post("SUCCESS", author=OTHER_CI, ci="other-ci", change=change)
    messages = await world.post("FAILURE", change=change)
    if resolve:
        messages += await world.post("SUCCESS")
    return [AlertOut.model_validate(m.data) for m in messages if m.type == "alert"]


EACH = {"for_s": 0, "clear_s": 0}


async def test_a_webhook_that_never_answers_gives_up_and_never_blocks(store: Store) -> None:
    sender = WebhookSender(store, attempts=3, backoff_s=0.01, max_backoff_s=0.02, deadline_s=0.5)
    dead = "http://127.0.0.1:1/hook"  # connection refused
    world = await make_world(store, [rule("each", "failure", webhooks=[{"url": dead}], **EACH)], webhooks=sender)
    await world.post("SUCCESS", author=OTHER_CI, ci="other-ci", change=1)
    fired = await world.post("FAILURE", change=1)
    assert summary(fired)[:2] == [("incident", "open"), ("alert", "open")]  # delivery goes on in the background
    await world.engine.drain()
    async with store.engine.connect() as conn:
        log = await alerts_store.deliveries(conn)
    assert [(row.attempt, row.ok, row.status_code) for row in log] == [
        (1, False, None),
        (2, False, None),
        (3, False, None),
    ]
    assert all(row.error for row in log)
    await world.engine.close()


async def test_a_full_backlog_drops_its_oldest_delivery_and_logs_it(store: Store) -> None:
    never = asyncio.Event()

    async def stuck(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await never.wait()  # takes the request, never answers

    server = await asyncio.start_server(stuck, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"
    sender = WebhookSender(store, attempts=1, deadline_s=30, concurrency=1, backlog=2)
    world = await make_world(store, [rule("each", "failure", webhooks=[{"url": url}], **EACH)], webhooks=sender)
    fired = [*await edge_cycle(world, 1), *await edge_cycle(world, 2), *await edge_cycle(world, 3, resolve=False)]
    assert len(fired) == 5 and sender.in_flight >= 3
    # one under way, two queued: the two oldest queued ones were dropped, each with a delivery row
    await asyncio.gather(*list(sender._side_tasks))
    async with store.engine.connect() as conn:
        rows = await alerts_store.deliveries(conn)
    assert [(row.alert_id, row.attempt, row.ok, row.error) for row in rows] == [
        (fired[1].id, 0, False, "dropped: backlog of 2 full"),
        (fired[2].id, 0, False, "dropped: backlog of 2 full"),
    ]
    await world.engine.webhooks.close(grace_s=0)
    server.close()
    never.set()


def test_rule_config_defaults_and_validation() -> None:
    default = AlertRuleConfig(name="x", kind="failure_rate")
    assert (default.threshold, default.window_s, default.min_runs, default.escalate_after_s) == (
        0.5,
        21600.0,
        10,
        21600.0,
    )
    for bad in ({"kind": "nope"}, {"kind": "failure", "extra": 1}, {"kind": "failure_rate", "threshold": 1.0}):
        with pytest.raises(ValueError):
            AlertRuleConfig.model_validate({"name": "x", **bad})
    assert AlertRuleConfig(name="old", kind="recovered").kind == "recovered"  # older configs still load


async def test_engine_defaults_and_duplicate_names(store: Store) -> None:
    assert AlertEngine.from_settings(store, Settings()).rules == DEFAULT_RULES
    assert AlertEngine(store, [rule("r", "recovered"), rule("a", "failure")]).rules == (rule("a", "failure"),)
    with pytest.raises(ConfigError):
        AlertEngine(store, [rule("a", "failure"), rule("a", "silent")])


async def test_incident_and_alert_routes(store: Store) -> None:
    world = await with_reference(store, [rule("streak", "consecutive_failures", **STREAK)])
    for change in (1, 2, 3):
        await fail_where_reference_passed(world, change)
    incident = (await stored_incidents(store))[0]
    settings = Settings(api={"write_token": "w-token"})  # type: ignore[arg-type]
    app = create_app(settings, store, alerts=world.engine)
    transport = httpx.ASGITransport(app=app)
    auth = {"Authorization": "Bearer w-token"}
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        page = (await client.get("/api/v1/incidents", params={"state": "firing"})).json()
        assert [i["id"] for i in page["items"]] == [incident.id] and page["next_cursor"] is None
        assert (await client.get("/api/v1/incidents", params={"state": "resolved"})).json()["items"] == []
        detail = (await client.get(f"/api/v1/incidents/{incident.id}")).json()
        assert [(r["result"], r["verdict"], r["reference_result"]) for r in detail["runs"]] == [
            ("FAILURE", "fail", "SUCCESS")
        ] * 3
        assert [n["edge"] for n in detail["notifications"]] == ["open"]
        assert (await client.get("/api/v1/incidents/999999")).status_code == 404

        ack = {"author": "alice", "note": "looking"}
        assert (await client.post(f"/api/v1/incidents/{incident.id}/ack", json=ack)).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert (await client.post(f"/api/v1/incidents/{incident.id}/ack", json=ack, headers=wrong)).status_code == 403
        acked = (await client.post(f"/api/v1/incidents/{incident.id}/ack", json=ack, headers=auth)).json()
        assert (acked["acked_by"], acked["ack_note"]) == ("alice", "looking") and acked["acked_at"]
        until = (world.now[0] + timedelta(hours=2)).isoformat()
        body = {"author": "bob", "reason": "vendor fixing", "until": until}
        hushed = (await client.post(f"/api/v1/incidents/{incident.id}/silence", json=body, headers=auth)).json()
        assert hushed["silenced_by"] == "bob" and not hushed["silenced_until_resolved"]
        assert (await client.post("/api/v1/incidents/999999/ack", json=ack, headers=auth)).status_code == 404
        assert (
            await client.post(f"/api/v1/incidents/{incident.id}/silence", json={"author": "x"}, headers=auth)
        ).status_code == 422
        notes = (await client.get(f"/api/v1/incidents/{incident.id}")).json()["notes"]
        assert [(n["action"], n["author"]) for n in notes] == [("ack", "alice"), ("silence", "bob")]

        window = {
            "ci": "acme-ci",
            # GET /maintenance lists the windows not ended by the real clock
            "starts_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
            "ends_at": (datetime.now(UTC) + timedelta(days=1, hours=2)).isoformat(),
            "author": "carol",
            "reason": "datacenter move",
        }
        made = await client.post("/api/v1/maintenance", json=window, headers=auth)
        assert made.status_code == 201 and made.json()["ci"] == "acme-ci"
        assert (
            await client.post("/api/v1/maintenance", json={**window, "ci": "nobody"}, headers=auth)
        ).status_code == 404
        backwards = {**window, "ends_at": window["starts_at"]}
        assert (await client.post("/api/v1/maintenance", json=backwards, headers=auth)).status_code == 422
        assert [w["author"] for w in (await client.get("/api/v1/maintenance")).json()] == ["carol"]
        assert (await client.get("/api/v1/maintenance", params={"ci": "other-ci"})).json() == []
        assert [w["id"] for w in (await client.get("/api/v1/maintenance", params={"ci": "acme-ci"})).json()] == [
            made.json()["id"]
        ]
        # an upcoming window can be withdrawn (write token); one that began is history and stays
        began = {**window, "starts_at": (datetime.now(UTC) - timedelta(minutes=5)).isoformat()}
        ongoing = (await client.post("/api/v1/maintenance", json=began, headers=auth)).json()
        upcoming = made.json()["id"]
        assert (await client.delete(f"/api/v1/maintenance/{upcoming}")).status_code == 401
        withdrawn = await client.delete(f"/api/v1/maintenance/{upcoming}", headers=auth)
        assert withdrawn.status_code == 200 and withdrawn.json()["reason"] == "datacenter move"
        assert (await client.delete(f"/api/v1/maintenance/{upcoming}", headers=auth)).status_code == 404
        refused = await client.delete(f"/api/v1/maintenance/{ongoing['id']}", headers=auth)
        assert refused.status_code == 409 and "began at" in refused.json()["detail"]
        assert [w["id"] for w in (await client.get("/api/v1/maintenance")).json()] == [ongoing["id"]]

        alerts = (await client.get("/api/v1/alerts")).json()
        assert [(a["edge"], a["incident_id"]) for a in alerts["items"]] == [("open", incident.id)]
        assert (await client.get("/api/v1/alerts", params={"cursor": "garbage!"})).status_code == 422
        assert (await client.get("/api/v1/alerts", params={"kind": "bogus"})).status_code == 422
        rules = (await client.get("/api/v1/alerts/rules")).json()
        assert rules[0]["params"]["count"] == 3 and rules[0]["params"]["clear_s"] == 0
        state_of(app).alerts = None  # an API replica without the engine lists the default rules
        assert [r["name"] for r in (await client.get("/api/v1/alerts/rules")).json()] == [r.name for r in DEFAULT_RULES]


async def test_a_held_engine_evaluates_once_the_start_up_backfill_is_in(store: Store) -> None:
    """`cidash serve` holds the engine through its start-up backfill (history by the thousand
    runs): deferred runs, ticks and catch-ups wait, and the first round after it pays them once."""
    world = await with_reference(store, [rule("each", "failure", ci=["acme-ci"])])
    engine = world.engine
    engine.hold()
    at = T0 + timedelta(minutes=50)  # within the notify span of the engine's clock (T0 + 1 h)
    stats = await store.write_comments(
        [
            (observed("ok", author=ZUUL, change=1, posted_at=at), parsed(result="SUCCESS", ci="zuul")),
            (observed("broken", change=1, posted_at=at + timedelta(seconds=30)), parsed(result="FAILURE")),
        ]
    )
    assert isinstance(stats.after_insert, list)
    engine.defer(stats.after_insert)
    assert await engine.tick() == [] and await engine.catch_up("review") == []
    published: list[FeedMessage] = []

    async def publish(messages: list[FeedMessage]) -> None:
        published.extend(messages)

    imported = asyncio.Event()
    evaluator = asyncio.create_task(engine.run_deferred(publish, first=imported.wait))
    try:
        await asyncio.sleep(0.2)  # the point: time for an evaluation that must not happen yet
        assert published == [] and await stored_incidents(store) == []
        imported.set()
        await until(lambda: any(m.type == "alert" for m in published), 10, "the held evaluation")
        assert [(i.ci, i.state, i.quiet) for i in await stored_incidents(store)] == [("acme-ci", "firing", None)]
        assert [m.data["edge"] for m in published if m.type == "alert"] == ["open"]  # once, not per path
        assert await engine.tick() == []  # ticks again, and nothing is owed twice
    finally:
        evaluator.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await evaluator
