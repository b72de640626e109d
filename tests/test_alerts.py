"""cidash.alerts on both engines: every rule fires exactly when it should and once per condition,
state changes, webhooks (signed, retried, logged), muting, and the alerts REST routes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
import pytest
import pytest_asyncio
import sqlalchemy as sa
from fastapi import FastAPI

from cidash.alerts import DEFAULT_RULES, AlertEngine
from cidash.api import alert_routes
from cidash.config import AlertRuleConfig, Settings, WebhookConfig
from cidash.errors import ConfigError
from cidash.observations import AccountRef
from cidash.store import Store, alerts_store
from cidash.store import feed as feed_module
from cidash.store.models_live import alerts_t, feed_t
from cidash.urls import redact_url
from cidash.views import AlertOut, FeedMessage
from cidash.webhooks import WebhookSender, verify
from tests.store_fixtures import T0, THIRD_PARTY, ZUUL, observed, parsed

OTHER_CI = AccountRef(account_id=9002, username="other-ci", name="Other CI", email="ci@other.example")
NOVA = "openstack/nova"


def rule(name: str, kind: str, **options: object) -> AlertRuleConfig:
    return AlertRuleConfig.model_validate({"name": name, "kind": kind, **options})


@dataclass
class World:
    """Posts CI results through the real write path and hands the new runs to the engine."""

    store: Store
    engine: AlertEngine
    now: list[datetime]
    t: datetime = T0
    change: int = 1000
    alerts: list[FeedMessage] = field(default_factory=list)

    async def post(
        self,
        result: str,
        *,
        author: AccountRef = THIRD_PARTY,
        ci: str = "acme-ci",
        change: int | None = None,
        patchset: int = 1,
        project: str = NOVA,
        at: datetime | None = None,
        created_at: datetime | None = None,
    ) -> list[FeedMessage]:
        return await self.post_many([(result, author, ci, change, patchset, project, at, created_at)])

    async def post_many(
        self, specs: list[tuple[str, AccountRef, str, int | None, int, str, datetime | None, datetime | None]]
    ) -> list[FeedMessage]:
        items = []
        for result, author, ci, change, patchset, project, at, created_at in specs:
            self.t += timedelta(minutes=1)
            if change is None:
                self.change += 1
                change = self.change
            posted = at or self.t
            comment = observed(
                f"{result} from {ci} at {posted.isoformat()}",
                change=change,
                patchset=patchset,
                author=author,
                posted_at=posted,
                project=project,
                created_at=created_at or posted - timedelta(minutes=5),
            )
            items.append((comment, parsed(result=result, ci=ci)))
        stats = await self.store.write_comments(items)
        runs = stats.after_insert
        assert isinstance(runs, list) and len(runs) == len(specs)
        out = await self.engine.on_feed(runs)
        self.alerts.extend(out)
        return out


def summary(messages: list[FeedMessage]) -> list[tuple[str, str]]:
    return [(m.type, str(m.data.get("kind") if m.type == "alert" else m.data.get("state"))) for m in messages]


async def make_world(store: Store, rules: list[AlertRuleConfig], **options: object) -> World:
    store.after_insert = feed_module.append_run_messages
    now = [T0 + timedelta(hours=1)]
    engine = AlertEngine(store, rules, clock=lambda: now[0], **options)  # type: ignore[arg-type]
    return World(store, engine, now)


async def stored_alerts(store: Store) -> list[AlertOut]:
    async with store.engine.connect() as conn:
        return list(reversed(await alerts_store.list_alerts(conn, limit=1000)))


async def check_feed_rows(store: Store, messages: list[FeedMessage]) -> None:
    """The published messages are the stored feed rows; alert rows point at them."""
    async with store.engine.connect() as conn:
        rows = {
            r[0]: (r[1], json.loads(r[2]))
            for r in await conn.execute(sa.select(feed_t.c.id, feed_t.c.kind, feed_t.c.payload))
        }
        links = dict((await conn.execute(sa.select(alerts_t.c.id, alerts_t.c.feed_id))).all())
    for message in messages:
        assert rows[message.id] == (message.type, message.data)
        if message.type == "alert":
            assert links[message.data["id"]] == message.id


# -- the rules -------------------------------------------------------------------------------------------


async def test_consecutive_failures_fire_once_per_streak(store: Store) -> None:
    world = await make_world(store, [rule("streak", "consecutive_failures", count=3, severity="critical")])
    assert await world.post("FAILURE") == []
    assert await world.post("NODE_FAILURE") == []  # infra errors count as failures
    assert await world.post("SKIPPED") == []  # "other" neither extends nor ends a streak
    fired = await world.post("FAILURE")
    assert summary(fired) == [("alert", "consecutive_failures"), ("state", "failing")]
    alert = AlertOut.model_validate(fired[0].data)
    assert (alert.ci, alert.server, alert.severity, alert.rule, alert.muted) == (
        "acme-ci",
        "review",
        "critical",
        "streak",
        False,
    )
    assert alert.message.startswith("acme-ci: 3 failures in a row")
    assert alert.run_id == (await store.all_runs())[-1].id
    assert fired[1].data == {"ci": "acme-ci", "server": "review", "state": "failing", "state_reason": alert.message}
    assert fired[0].id < fired[1].id

    assert await world.post("FAILURE") == []  # same streak
    assert await world.post("SUCCESS") == []
    assert await world.post("FAILURE") == []
    assert await world.post("FAILURE") == []
    again = await world.post("FAILURE")  # a new streak
    assert summary(again) == [("alert", "consecutive_failures")]  # still failing: no state change
    assert again[0].data["id"] > alert.id

    # a batch with a whole streak in it fires once; other CIs are independent
    batch = [("FAILURE", OTHER_CI, "other-ci", None, 1, NOVA, None, None)] * 5
    assert summary(await world.post_many(batch)) == [("alert", "consecutive_failures"), ("state", "failing")]
    # the same runs handed over again (a retried publish) alert nothing
    runs = await store.all_runs()
    assert len(await stored_alerts(store)) == 3
    await check_feed_rows(store, world.alerts)
    assert len(runs) == 14


async def test_a_long_streak_seen_in_pieces_alerts_once(store: Store) -> None:
    world = await make_world(store, [rule("streak", "consecutive_failures", count=2)])
    assert await world.post("SUCCESS") == []
    assert await world.post("FAILURE") == []
    assert summary(await world.post("FAILURE")) == [("alert", "consecutive_failures"), ("state", "failing")]
    for _ in range(5):  # the streak outgrows the runs the engine reads back (count=2): still the same streak
        assert await world.post("FAILURE") == []
    # a success arriving late (posted in the middle of the streak) splits it: the runs after it
    # are a streak of their own, which has not been reported
    middle = world.t - timedelta(minutes=2, seconds=30)
    assert await world.post("SUCCESS", at=middle) == []
    assert summary(await world.post("FAILURE")) == [("alert", "consecutive_failures")]


async def test_failure_rate_fires_once_per_window_until_it_falls_back(store: Store) -> None:
    world = await make_world(store, [rule("rate", "failure_rate", threshold=0.5, window_s=3600, min_runs=4)])
    for result in ("SUCCESS", "SUCCESS", "FAILURE"):
        assert await world.post(result) == []
    assert await world.post("FAILURE") == []  # 2/4 is not above 50%
    fired = await world.post("ERROR")  # 3/5
    assert summary(fired) == [("alert", "failure_rate"), ("state", "failing")]
    assert "3 of 5 runs failed (60%)" in str(fired[0].data["message"])
    assert await world.post("FAILURE") == []  # 4/6: still above, same window: once
    assert await world.post("SUCCESS") == []  # 4/7: still above
    assert await world.post("SUCCESS") == []  # 4/8: falls back to 50%
    assert await world.post("SUCCESS") == []  # 4/9
    assert await world.post("FAILURE") == []  # 5/10
    assert summary(await world.post("FAILURE")) == [("alert", "failure_rate")]  # 6/11: above again
    for _ in range(5):
        assert await world.post("FAILURE") == []  # still the same condition
    # a window later, still above: one reminder (too few runs in a window is not "fell back")
    world.t += timedelta(minutes=61)
    world.now[0] = world.t + timedelta(minutes=30)
    for _ in range(3):
        assert await world.post("FAILURE") == []  # fewer than min_runs in the new window
    assert summary(await world.post("FAILURE")) == [("alert", "failure_rate")]
    assert await world.post("FAILURE") == []
    assert len(await stored_alerts(store)) == 3


async def test_failure_only_when_the_reference_passed(store: Store) -> None:
    world = await make_world(store, [rule("blame", "failure", only_when_reference_passed=True)])
    await store.sync_ci_configs([_reference("zuul")], ["review"])
    # the reference passed change 1: the third-party failure is the CI's problem
    assert await world.post("SUCCESS", author=ZUUL, ci="zuul", change=1) == []
    fired = await world.post("FAILURE", change=1)
    assert summary(fired) == [("alert", "failure")]
    assert "although the reference CI passed it" in str(fired[0].data["message"])
    # the reference failed change 2 too: no alert
    assert await world.post("FAILURE", author=ZUUL, ci="zuul", change=2) == []
    assert await world.post("FAILURE", change=2) == []
    # another patch set of change 1 was not passed by the reference
    assert await world.post("FAILURE", change=1, patchset=2) == []
    # change 3: the failure comes first, the reference's success later fires it, once
    assert await world.post("FAILURE", change=3) == []
    late = await world.post("SUCCESS", author=ZUUL, ci="zuul", change=3)
    assert summary(late) == [("alert", "failure")]
    assert late[0].data["ci"] == "acme-ci" and late[0].data["project"] == NOVA
    assert await world.post("SUCCESS", author=ZUUL, ci="zuul", change=3) == []  # a recheck: no second alert
    # the reference failing itself is never "a failure the reference passed"
    assert await world.post("FAILURE", author=ZUUL, ci="zuul", change=1) == []
    assert [a.kind for a in await stored_alerts(store)] == ["failure", "failure"]


async def test_every_failure_and_nothing_twice(store: Store) -> None:
    world = await make_world(store, [rule("each", "failure", ci=["acme-ci"], projects=[NOVA], severity="info")])
    assert summary(await world.post("FAILURE")) == [("alert", "failure")]  # failure kind: no state change
    assert await world.post("SUCCESS") == []
    assert await world.post("FAILURE", project="openstack/cinder") == []  # not its projects
    assert await world.post("FAILURE", author=OTHER_CI, ci="other-ci") == []  # not its CI
    assert summary(await world.post("RETRY_LIMIT")) == [("alert", "failure")]
    # the same stored runs handed to the engine again alert nothing
    async with store.engine.connect() as conn:
        replay = await feed_module.messages_since(conn, 0, feed_module.FeedFilter.of(kinds=["run"]))
    assert await world.engine.on_feed(replay) == []
    assert len(await stored_alerts(store)) == 2


async def test_recovered_after_failing_and_the_state_messages(store: Store) -> None:
    world = await make_world(
        store, [rule("streak", "consecutive_failures", count=2), rule("back", "recovered", severity="info")]
    )
    assert await world.post("SUCCESS") == []  # nothing to recover from
    assert await world.post("FAILURE") == []
    assert summary(await world.post("FAILURE")) == [("alert", "consecutive_failures"), ("state", "failing")]
    back = await world.post("SUCCESS")
    assert summary(back) == [("alert", "recovered"), ("state", "healthy")]
    assert back[0].data["severity"] == "info" and "recovered after failures" in str(back[0].data["message"])
    assert await world.post("SUCCESS") == []  # once
    # failure, streak and recovery in one batch keep their order
    batch = [(r, THIRD_PARTY, "acme-ci", None, 1, NOVA, None, None) for r in ("FAILURE", "FAILURE", "SUCCESS")]
    assert summary(await world.post_many(batch)) == [
        ("alert", "consecutive_failures"),
        ("state", "failing"),
        ("alert", "recovered"),
        ("state", "healthy"),
    ]
    ids = [m.id for m in world.alerts]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    alert_ids = [m.data["id"] for m in world.alerts if m.type == "alert"]
    assert alert_ids == sorted(alert_ids)
    await check_feed_rows(store, world.alerts)


async def test_silent_via_tick_and_the_recovery(store: Store) -> None:
    world = await make_world(
        store, [rule("quiet", "silent", silent_s=6 * 3600), rule("back", "recovered")], servers=["review"]
    )
    # acme-ci reports on nova at T0+1min, then stops; zuul keeps reporting on new patch sets
    assert await world.post("SUCCESS") == []
    arrivals = [T0 + timedelta(hours=h) for h in (1, 2, 3)]
    for arrived in arrivals:
        assert (
            await world.post("SUCCESS", author=ZUUL, ci="zuul", at=arrived + timedelta(minutes=20), created_at=arrived)
            == []
        )
    assert await world.engine.tick(T0 + timedelta(hours=6, minutes=30)) == []  # nothing waited 6 h yet
    fired = await world.engine.tick(T0 + timedelta(hours=7, minutes=30))  # the T0+1h patch set waited 6.5 h
    assert summary(fired) == [("alert", "silent"), ("state", "silent")]
    assert fired[0].data["run_id"] is None and fired[0].data["project"] is None
    assert "has not commented for 7 h" in str(fired[0].data["message"])
    assert await world.engine.tick(T0 + timedelta(hours=9)) == []  # once per silence
    # zuul itself stays quiet-free (it commented recently): only acme-ci was reported
    assert {a.ci for a in await stored_alerts(store)} == {"acme-ci"}
    world.now[0] = T0 + timedelta(hours=10)
    back = await world.post("SUCCESS", at=T0 + timedelta(hours=9, minutes=30))
    assert summary(back) == [("alert", "recovered"), ("state", "healthy")]
    assert "after silence" in str(back[0].data["message"])
    # acme-ci quiet since with no patch set arriving after its comment: not silent; zuul never
    # commented on the patch set acme-ci reported at T0+9h30: zuul is
    late = await world.engine.tick(T0 + timedelta(hours=30))
    assert summary(late) == [("alert", "silent"), ("state", "silent")]
    assert late[0].data["ci"] == "zuul" and "1 patch set waited" in str(late[0].data["message"])
    assert await world.engine.tick(T0 + timedelta(hours=31)) == []
    fired += late
    await check_feed_rows(store, world.alerts + fired)


async def test_runs_older_than_max_age_do_not_alert(store: Store) -> None:
    world = await make_world(store, [rule("each", "failure")], max_age_s=3600)
    assert await world.post("FAILURE", at=T0 - timedelta(hours=3)) == []  # a history import
    assert summary(await world.post("FAILURE")) == [("alert", "failure")]


async def test_only_the_servers_this_replica_collects(store: Store) -> None:
    collecting: list[str] = []
    world = await make_world(
        store, [rule("each", "failure"), rule("quiet", "silent", silent_s=3600)], servers=lambda: collecting
    )
    assert await world.post("FAILURE") == []  # server "review" is another replica's
    await world.post("SUCCESS", author=ZUUL, ci="zuul", at=T0 + timedelta(hours=2), created_at=T0 + timedelta(hours=1))
    assert await world.engine.tick(T0 + timedelta(hours=5)) == []
    collecting.append("review")  # elected for it
    assert summary(await world.post("FAILURE")) == [("alert", "failure")]
    assert summary(await world.engine.tick(T0 + timedelta(hours=5))) == [("alert", "silent"), ("state", "silent")]


def _reference(account: str) -> object:
    from cidash.config import CISystemConfig

    return CISystemConfig(account=account, reference=True)


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


async def test_webhooks_are_signed_retried_and_logged(store: Store, receiver: Receiver) -> None:
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
    fired = await world.post("FAILURE")
    await world.engine.drain()
    alert = AlertOut.model_validate(fired[0].data)
    assert len(receiver.requests) == 4  # 500, 503 (retried) and 200 for one, 200 for the other
    signed = [(h, b) for h, b in receiver.requests if "x-cidash-signature" in h]
    plain = [(h, b) for h, b in receiver.requests if "x-cidash-signature" not in h]
    assert len(signed) == 3 and len(plain) == 1
    for headers, body in receiver.requests:
        assert AlertOut.model_validate_json(body) == alert
        assert headers["x-cidash-alert-id"] == str(alert.id)
        assert headers["content-type"] == "application/json"
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
    assert all("abc" not in url and "pw" not in url for url in by_url)
    views = world.engine.rule_views()
    assert views[0].webhooks == [receiver.url + "?token=%2A%2A%2A", receiver.url + "/plain"]
    await world.engine.close()


async def test_a_webhook_that_never_answers_gives_up_and_never_blocks(store: Store) -> None:
    sender = WebhookSender(store, attempts=3, backoff_s=0.01, max_backoff_s=0.02, deadline_s=0.5)
    dead = "http://127.0.0.1:1/hook"  # connection refused
    world = await make_world(store, [rule("each", "failure", webhooks=[{"url": dead}])], webhooks=sender)
    fired = await world.post("FAILURE")
    assert summary(fired) == [("alert", "failure")]  # returned at once, delivery in the background
    assert sender.in_flight == 1
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
    world = await make_world(store, [rule("each", "failure", webhooks=[{"url": url}])], webhooks=sender)
    fired = [AlertOut.model_validate((await world.post("FAILURE"))[0].data) for _ in range(5)]
    # one under way, two queued: the two oldest queued ones were dropped, each with a delivery row
    assert sender.in_flight == 3
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


# -- muting ------------------------------------------------------------------------------------------------


async def test_mute_and_what_it_silences(store: Store, receiver: Receiver) -> None:
    sender = WebhookSender(store, backoff_s=0.01)
    world = await make_world(store, [rule("each", "failure", webhooks=[{"url": receiver.url}])], webhooks=sender)
    first = AlertOut.model_validate((await world.post("FAILURE"))[0].data)
    muted = await world.engine.mute(first.id, True)
    assert muted is not None and muted.muted and muted.id == first.id
    second = AlertOut.model_validate((await world.post("FAILURE"))[0].data)
    assert second.muted  # the condition goes on: still muted, no webhook
    await world.post("SUCCESS")
    third = AlertOut.model_validate((await world.post("FAILURE"))[0].data)
    assert not third.muted  # cleared by the success
    await world.engine.drain()
    assert [json.loads(body)["id"] for _, body in receiver.requests] == [first.id, third.id]
    unmuted = await world.engine.mute(first.id, False)
    assert unmuted is not None and not unmuted.muted
    assert await world.engine.mute(999_999, True) is None
    assert [a.muted for a in await stored_alerts(store)] == [False, True, False]
    await world.engine.close()


# -- configuration and the REST routes -----------------------------------------------------------------


def test_rule_config_defaults_and_validation() -> None:
    settings = Settings(
        alerts=[
            {
                "name": "x",
                "kind": "silent",
                "silent_s": 60,
                "webhooks": [{"url": "https://h/x", "secret": "hush-hush-42"}],
            }
        ]
    )
    assert settings.alerts[0].webhooks[0].secret is not None
    assert settings.alerts[0].webhooks[0].secret.get_secret_value() == "hush-hush-42"  # type: ignore[union-attr]
    assert "hush-hush-42" not in repr(settings.alerts[0])
    with pytest.raises(ValueError):
        AlertRuleConfig.model_validate({"name": "x", "kind": "nope"})
    with pytest.raises(ValueError):
        AlertRuleConfig.model_validate({"name": "x", "kind": "failure", "typo": 1})
    with pytest.raises(ValueError):
        WebhookConfig(url="ftp://x")
    assert [r.kind for r in DEFAULT_RULES] == ["consecutive_failures", "failure_rate", "silent", "recovered"]
    assert (
        DEFAULT_RULES[0].count,
        DEFAULT_RULES[1].threshold,
        DEFAULT_RULES[1].window_s,
        DEFAULT_RULES[1].min_runs,
    ) == (
        3,
        0.5,
        21600,
        10,
    )
    assert DEFAULT_RULES[2].silent_s == 21600


async def test_engine_defaults_and_duplicate_names(store: Store) -> None:
    assert AlertEngine.from_settings(store, Settings()).rules == DEFAULT_RULES
    with pytest.raises(ConfigError):
        AlertEngine(store, [rule("a", "failure"), rule("a", "silent")])


async def test_alert_routes(store: Store) -> None:
    world = await make_world(store, [rule("each", "failure"), rule("streak", "consecutive_failures", count=2)])
    for _ in range(3):
        await world.post("FAILURE")
    await world.post("FAILURE", author=OTHER_CI, ci="other-ci")
    everything = list(reversed(await stored_alerts(store)))  # newest first
    assert len(everything) == 5

    settings = Settings(api={"write_token": "w-token"})  # type: ignore[arg-type]
    app = FastAPI()
    app.include_router(alert_routes.router)
    app.state.store, app.state.settings, app.state.alerts = store, settings, world.engine
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        page = (await client.get("/api/v1/alerts", params={"limit": 2})).json()
        assert [a["id"] for a in page["items"]] == [a.id for a in everything[:2]]
        seen = [a["id"] for a in page["items"]]
        while page["next_cursor"]:
            page = (await client.get("/api/v1/alerts", params={"limit": 2, "cursor": page["next_cursor"]})).json()
            seen.extend(a["id"] for a in page["items"])
        assert seen == [a.id for a in everything]
        only = (await client.get("/api/v1/alerts", params={"ci": "other-ci", "kind": "failure"})).json()
        assert [a["ci"] for a in only["items"]] == ["other-ci"] and only["next_cursor"] is None
        kinds = (await client.get("/api/v1/alerts", params=[("kind", "consecutive_failures")])).json()
        assert {a["kind"] for a in kinds["items"]} == {"consecutive_failures"}
        later = (
            await client.get("/api/v1/alerts", params={"from": (world.now[0] + timedelta(seconds=1)).isoformat()})
        ).json()
        assert later["items"] == []
        until = (await client.get("/api/v1/alerts", params={"to": world.now[0].isoformat()})).json()
        assert until["items"] == []  # "to" is exclusive and every alert was made at now
        assert (await client.get("/api/v1/alerts", params={"cursor": "garbage!"})).status_code == 422
        assert (await client.get("/api/v1/alerts", params={"kind": "bogus"})).status_code == 422
        assert (await client.get("/api/v1/alerts", params={"limit": 0})).status_code == 422

        rules = (await client.get("/api/v1/alerts/rules")).json()
        assert [(r["name"], r["kind"], r["params"]) for r in rules] == [
            ("each", "failure", {"severity": "warning", "only_when_reference_passed": False}),
            ("streak", "consecutive_failures", {"severity": "warning", "count": 2}),
        ]

        target = everything[-1].id
        assert (await client.post(f"/api/v1/alerts/{target}/mute")).status_code == 401
        wrong = await client.post(f"/api/v1/alerts/{target}/mute", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403
        auth = {"Authorization": "Bearer w-token"}
        done = await client.post(f"/api/v1/alerts/{target}/mute", headers=auth)
        assert done.status_code == 200 and done.json()["muted"] is True
        assert (await client.post(f"/api/v1/alerts/{target}/unmute", headers=auth)).json()["muted"] is False
        assert (await client.post("/api/v1/alerts/999999/mute", headers=auth)).status_code == 404

        app.state.settings = Settings()  # no write token configured: writes are disabled
        assert (await client.post(f"/api/v1/alerts/{target}/mute", headers=auth)).status_code == 403
        # an API replica without the engine still lists rules and mutes
        del app.state.alerts
        app.state.settings = settings
        assert [r["name"] for r in (await client.get("/api/v1/alerts/rules")).json()] == [r.name for r in DEFAULT_RULES]
        assert (await client.post(f"/api/v1/alerts/{target}/mute", headers=auth)).json()["muted"] is True


async def test_a_takeover_pays_the_alerts_a_killed_collector_owed(store: Store) -> None:
    world = await make_world(store, [rule("each", "failure", ci=["acme-ci"], severity="info")])
    assert summary(await world.post("FAILURE")) == [("alert", "failure")]
    # killed after committing these runs, before evaluating them: nobody alerted
    comment = observed("FAILURE owed", change=4242, author=THIRD_PARTY, posted_at=world.t + timedelta(minutes=1))
    stats = await store.write_comments([(comment, parsed(result="FAILURE", ci="acme-ci"))])
    assert isinstance(stats.after_insert, list) and len(stats.after_insert) == 1
    server = str(stats.after_insert[0].data["server"])

    owed = await world.engine.catch_up(server)
    assert summary(owed) == [("alert", "failure")]
    assert owed[0].data["run_id"] == stats.after_insert[0].data["id"]
    assert await world.engine.catch_up(server) == [], "evaluating again alerts nothing twice"
    assert await world.engine.catch_up("another-server") == []
    assert len(await stored_alerts(store)) == 2
