"""The alert engine's test world: a store, an engine with rules, posted CI results and what the
feed and webhooks saw; the reference CI and a failure where it passed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from cidash.alerts.engine import AlertEngine
from cidash.config import AlertRuleConfig
from cidash.domain.comments import AccountRef
from cidash.domain.views import AlertOut, FeedMessage, IncidentOut
from cidash.store import Store, alerts_store
from cidash.store import feed as feed_module
from cidash.store.schema import alerts_t, feed_t
from tests.support.store_fixtures import T0, THIRD_PARTY, ZUUL, observed, parsed

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
    """(type, what) of each message: the incident event, the alert's edge, the state."""
    out: list[tuple[str, str]] = []
    for m in messages:
        what = {"incident": m.data.get("event"), "alert": m.data.get("edge"), "state": m.data.get("state")}[m.type]
        out.append((m.type, str(what)))
    return out


async def make_world(store: Store, rules: list[AlertRuleConfig], **options: object) -> World:
    store.after_insert = feed_module.append_run_messages
    now = [T0 + timedelta(hours=1)]
    engine = AlertEngine(store, rules, clock=lambda: now[0], **options)  # type: ignore[arg-type]
    return World(store, engine, now)


async def stored_alerts(store: Store) -> list[AlertOut]:
    async with store.engine.connect() as conn:
        return list(reversed(await alerts_store.list_alerts(conn, limit=1000)))


async def stored_incidents(store: Store) -> list[IncidentOut]:
    async with store.engine.connect() as conn:
        return list(reversed(await alerts_store.list_incidents(conn, limit=1000)))


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


def reference_config(account: str) -> object:
    from cidash.config import CISystemConfig

    return CISystemConfig(account=account, reference=True)


STREAK = {"count": 3, "for_s": 0, "clear_s": 0, "clear_runs": 1}


async def with_reference(store: Store, rules: list[AlertRuleConfig], **options: object) -> World:
    world = await make_world(store, rules, **options)
    await store.sync_ci_configs([reference_config("zuul")], ["review"])  # type: ignore[list-item]
    return world


async def fail_where_reference_passed(world: World, change: int, at: datetime | None = None) -> list[FeedMessage]:
    await world.post("SUCCESS", author=ZUUL, ci="zuul", change=change, at=at)
    return await world.post("FAILURE", change=change, at=at + timedelta(seconds=30) if at else None)


# -- the lifecycle ----------------------------------------------------------------------------------------
