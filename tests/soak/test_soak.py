"""The chaos soak of issue 6: nothing is lost, nothing is stored twice, every bad line is accounted for.

`cidash sim` (in this process) streams live CI traffic to two `cidash serve` replicas (real
processes, sharing a private MariaDB and Redis) while the test drops and refuses SSH, storms the
REST API with 429 and 500, crashes MariaDB and SIGKILLs whichever replica collects. Meanwhile an
alert subscriber is bounced from replica to replica and resumes with `since` every time.

At the end: the stored runs equal `/__sim/truth` exactly; the dead letters are exactly the garbage
lines the simulator sent (minus those it counted as lost on its side) plus lines cut off by a
dropped link; the subscriber received every alert of the alerts table exactly once.

Garbage injection pauses around each fault that ends a stream session (an SSH drop, a refusal,
a database restart, a kill), until every garbage line sent so far is in the dead-letter table:
lines still in flight when a link dies are lost by nature (Gerrit's stream has no replay), so
without the pause the count could not be exact. The runs are not paused: REST recovers them.

`SHORT` runs in `make test`; `FULL` (issue 6's figures) with `make soak` (`pytest -m soak -s`).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlalchemy import pool
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from cidash.collector.election import LEASE_S
from cidash.sim.faults import FaultRequest
from cidash.sim.hub import GARBAGE_LINES
from cidash.sim.runner import RunningSim, SimOptions
from cidash.store import Store
from cidash.store.migrate import upgrade
from cidash.store.schema import alerts_t, dead_letters_t, incidents_t
from tests.support.sim_fixtures import client_key, compare, fetch_truth
from tests.support.soak_mariadb import PrivateMariaDB, free_port
from tests.support.soak_replicas import Replica, TomlValue, to_toml
from tests.support.soak_watch import AlertWatcher
from tests.support.stored import all_runs
from tests.support.wait import until

EVENTS_PER_COMMENT = 4  # the simulated world posts one CI result for about four stream events
REDIS_URL = "redis://127.0.0.1:6379/0"
POLL_S = 0.25
FAILURE_ALERT_CIS = ("dell-emc-ci", "midokura-ci")  # flaky ones: an incident from each failure to the next pass
SETTLE_LIMIT_S = 180.0  # the collector may be catching up with a backlog

Action = Literal["drop", "refusal", "storm-429", "storm-500", "db-restart", "kill"]


@dataclass(frozen=True)
class Scale:
    comments: int  # CI result comments streamed live
    rate: float  # stream events per second
    history: timedelta  # pre-generated past, seen through REST only
    ssh_drops: int
    refusal_s: float
    storms: int  # REST storms of each kind (429 and 500)
    storm_s: float
    db_restarts: int
    kills: int  # SIGKILLs of the collecting replica
    malformed: int  # garbage lines to inject (at most: a rate, while a collector listens)
    backfill_interval_s: float
    seed: int = 606

    @property
    def events(self) -> int:
        return self.comments * EVENTS_PER_COMMENT

    def plan(self, start: int) -> list[tuple[int, Action]]:
        """(after this many published events, do this): each kind spread evenly over 10-85 % of
        the events still to come after `start`."""
        counts: dict[Action, int] = {
            "drop": self.ssh_drops,
            "refusal": 1 if self.refusal_s else 0,
            "storm-429": self.storms,
            "storm-500": self.storms,
            "db-restart": self.db_restarts,
            "kill": self.kills,
        }
        steps: list[tuple[int, Action]] = []
        for index, (action, count) in enumerate(counts.items()):
            phase = (index + 0.5) / len(counts)  # kinds take turns rather than pile up
            steps += [
                (start + int((self.events - start) * (0.1 + 0.75 * (i + phase) / count)), action) for i in range(count)
            ]
        return sorted(steps)


SHORT = Scale(
    comments=3_000,
    rate=200,
    history=timedelta(hours=1),
    ssh_drops=3,
    refusal_s=10,
    storms=1,
    storm_s=12,
    db_restarts=1,
    kills=1,
    malformed=100,
    backfill_interval_s=8,
)
FULL = Scale(
    comments=100_000,
    rate=500,
    history=timedelta(hours=2),
    ssh_drops=20,
    refusal_s=60,
    storms=2,
    storm_s=30,
    db_restarts=3,
    kills=2,
    malformed=1_000,
    backfill_interval_s=20,
)


# -- fixtures --------------------------------------------------------------------------------------


@pytest_asyncio.fixture
async def private_db(tmp_path: Path) -> AsyncIterator[PrivateMariaDB]:
    db = PrivateMariaDB(tmp_path / "mariadb")
    db.install()
    try:
        await db.start()
        await upgrade(db.url)
        yield db
    finally:
        db.stop()


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[list[Replica]]:
    started = [Replica(name, tmp_path, free_port()) for name in ("replica-a", "replica-b")]
    yield started
    for replica in started:
        replica.stop()


def write_config(replica: Replica, sim: RunningSim, database_url: str, key: Path, scale: Scale, prefix: str) -> None:
    server: dict[str, TomlValue] = {
        "name": "sim",
        "ssh_host": "127.0.0.1",
        "ssh_port": sim.ssh_port,
        "ssh_user": "cidash",
        "ssh_key": str(key),
        "host_key_fingerprint": sim.host_key_fingerprint,
        "http_url": sim.http_url,
        "http_user": sim.options.http_user,
        "http_password": sim.options.http_password,
        "ci_group": "Third-Party CI",
        "keepalive_s": 5,
        "watchdog_s": 30,
        "backfill_interval_s": scale.backfill_interval_s,
    }
    alerts: list[dict[str, TomlValue]] = [
        {"name": "flaky-failure", "kind": "failure", "ci": list(FAILURE_ALERT_CIS), "for_s": 0, "clear_s": 0},
        {"name": "streak", "kind": "consecutive_failures", "count": 3},
    ]
    replica.config.write_text(
        to_toml(
            {"database_url": database_url, "redis_url": REDIS_URL, "redis_prefix": prefix},
            {"api": {"host": "127.0.0.1", "port": replica.port}},
            {
                "servers": [server],
                "ci": [{"account": "zuul", "display_name": "Zuul", "reference": True}],
                "alerts": alerts,
            },
        )
    )


# -- what the database holds -------------------------------------------------------------------------


@dataclass
class DeadLetterTally:
    """The dead-letter table, read incrementally: garbage lines the simulator sent, and the rest."""

    engine: AsyncEngine
    garbage: int = 0
    others: list[tuple[str, str]] = field(default_factory=list)  # (reason, raw)
    _last_id: int = 0

    async def refresh(self) -> None:
        query = (
            sa.select(dead_letters_t.c.id, dead_letters_t.c.reason, dead_letters_t.c.raw, dead_letters_t.c.raw_length)
            .where(dead_letters_t.c.id > self._last_id)
            .order_by(dead_letters_t.c.id)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        for row in rows:
            self._last_id = row.id
            if (row.raw, row.raw_length) in _GARBAGE_AS_STORED:
                self.garbage += 1
            else:
                self.others.append((row.reason, row.raw))

    async def settle(self, expected: Callable[[], int], limit_s: float = SETTLE_LIMIT_S) -> None:
        """Until every garbage line sent is stored (the database may be coming back)."""
        deadline = time.monotonic() + limit_s
        while True:
            with contextlib.suppress(Exception):
                await self.refresh()
            want = expected()
            assert self.garbage <= want, f"{self.garbage} garbage lines dead-lettered, only {want} were sent"
            if self.garbage == want:
                return
            assert time.monotonic() < deadline, f"{want - self.garbage} of {want} garbage lines never dead-lettered"
            await asyncio.sleep(POLL_S)


_GARBAGE_AS_STORED = {(line[:-1].decode("utf-8", "replace"), len(line) - 1) for line in GARBAGE_LINES}


async def stored_alerts(engine: AsyncEngine) -> list[tuple[int, int]]:
    """(feed id, alert id) of every stored alert."""
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(alerts_t.c.feed_id, alerts_t.c.id).order_by(alerts_t.c.id))).all()
    return [(int(row.feed_id), int(row.id)) for row in rows]


async def edge_tally(engine: AsyncEngine) -> tuple[int, list[str]]:
    """(incidents, problems): every incident has its open edge, every resolved one its resolve edge,
    no edge twice, every alert row is an edge."""
    incidents, alerts = incidents_t, alerts_t
    async with engine.connect() as conn:
        states = dict((await conn.execute(sa.select(incidents.c.id, incidents.c.state))).all())
        edges = Counter(
            (row.incident_id, row.edge) for row in await conn.execute(sa.select(alerts.c.incident_id, alerts.c.edge))
        )
    problems = [f"{edge} of incident {i} notified {n} times" for (i, edge), n in edges.items() if n > 1]
    problems += [f"alert row without an incident edge: {key}" for key in edges if key[0] is None or key[1] is None]
    for incident_id, state in states.items():
        owed = ["open", "resolve"] if state == "resolved" else ["open"]
        problems += [
            f"{edge} of incident {incident_id} never notified" for edge in owed if not edges[(incident_id, edge)]
        ]
    return len(states), problems


# -- the scenario -------------------------------------------------------------------------------------


@dataclass
class Chaos:
    scale: Scale
    sim: RunningSim
    db: PrivateMariaDB
    replicas: list[Replica]
    watcher: AlertWatcher
    tally: DeadLetterTally
    takeovers: list[float] = field(default_factory=list)
    double_leaders: int = 0  # samples where both replicas said they collect
    storms: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def malformed_rate(self) -> float:
        # thrice the even rate: no garbage is sent while no collector listens; the limit caps it
        return 3 * self.scale.malformed / self.scale.events

    def garbage_expected(self) -> int:
        counts = self.sim.faults.counts
        return counts.get("malformed", 0) - counts.get("malformed_lost", 0)

    async def run(self) -> None:
        self.sim.faults.apply(FaultRequest(malformed_rate=self.malformed_rate, malformed_limit=self.scale.malformed))
        for at, action in self.scale.plan(self.sim.hub.published):
            await self._until_published(at)
            await self.watcher.bounce()
            await self.act(action)
        await self.sim.done.wait()
        await asyncio.gather(*self.storms)
        await self.quiesce()
        await asyncio.wait_for(self.sim.hub.wait_drained(), 120)

    async def act(self, action: Action) -> None:
        faults, scale = self.sim.faults, self.scale
        if action in ("storm-429", "storm-500"):
            self.storms.append(asyncio.create_task(self.storm(429 if action == "storm-429" else 500)))
        else:
            async with self.garbage_paused():
                if action == "drop":
                    faults.apply(FaultRequest(drop_ssh=True))
                elif action == "refusal":
                    faults.apply(FaultRequest(refuse_ssh_s=scale.refusal_s, drop_ssh=True))
                elif action == "db-restart":
                    await self.db.restart()
                else:
                    await self.kill_collector()

    async def storm(self, status: int) -> None:
        """A REST storm of `status` that lasts `storm_s`, and again, until it met a request. A storm
        is a time window, and in it a backfill may not come (the collector was being killed, or the
        other kind of storm, which wins, was on): it would have proven nothing."""
        faults, kind = self.sim.faults, f"rest_{status}"
        before = faults.counts.get(kind, 0)
        deadline = time.monotonic() + SETTLE_LIMIT_S
        while True:
            faults.apply(FaultRequest.model_validate({f"{kind}_s": self.scale.storm_s}))
            await asyncio.sleep(self.scale.storm_s)
            if faults.counts.get(kind, 0) > before:
                return
            assert time.monotonic() < deadline, f"no REST request met a {status} storm in {SETTLE_LIMIT_S:.0f} s"

    @contextlib.asynccontextmanager
    async def garbage_paused(self) -> AsyncIterator[None]:
        await self.quiesce()
        yield
        self.sim.faults.apply(FaultRequest(malformed_rate=self.malformed_rate))

    async def quiesce(self) -> None:
        self.sim.faults.apply(FaultRequest(malformed_rate=0.0))
        await self.tally.settle(self.garbage_expected)

    async def collector(self, limit_s: float = 60) -> Replica:
        """The replica collecting the server now."""
        deadline = time.monotonic() + limit_s
        while True:
            found = [replica for replica in self.replicas if await replica.servers()]
            self.double_leaders += len(found) > 1
            if len(found) == 1:
                return found[0]
            assert time.monotonic() < deadline, f"{len(found)} replicas collect after {limit_s} s"
            await asyncio.sleep(POLL_S)

    async def kill_collector(self) -> None:
        victim = await self.collector()
        victim.kill()
        killed_at = time.monotonic()
        survivor = await self.collector(LEASE_S + 15)
        assert survivor is not victim
        self.takeovers.append(time.monotonic() - killed_at)
        victim.start()  # back as a follower: two replicas again
        await victim.wait_ready()

    async def final_backfill(self) -> None:
        """Wait for two backfills completed after now: the second one started after everything
        had been published (the REST copy is canonical, and complete)."""
        began = time.time()
        finished: set[datetime] = set()
        deadline = time.monotonic() + 4 * self.scale.backfill_interval_s + 120
        while len(finished) < 2:
            servers = (await (await self.collector()).servers()) or []
            for server in servers:
                at = server.get("last_backfill_at")
                if at and datetime.fromisoformat(at).timestamp() > began:
                    finished.add(datetime.fromisoformat(at))
            assert time.monotonic() < deadline, "no final backfill completed"
            await asyncio.sleep(POLL_S)

    async def _until_published(self, events: int, limit_s: float = 600) -> None:
        await until(
            lambda: self.sim.hub.published >= events, limit_s, f"the simulator to reach {events} events", POLL_S
        )


async def until_watched(watcher: AlertWatcher, alerts: list[tuple[int, int]], limit_s: float = 60) -> None:
    newest = max((feed_id for feed_id, _ in alerts), default=0)
    deadline = time.monotonic() + limit_s
    while True:  # the assertions afterwards say what is missing
        if watcher.last >= newest or time.monotonic() > deadline:
            return
        await asyncio.sleep(POLL_S)


def report(name: str, figures: dict[str, object]) -> None:
    print(f"\nchaos soak ({name}):")
    for key, value in figures.items():
        print(f"  {key:<28} {value}")


@pytest.mark.parametrize(
    "scale",
    [
        pytest.param(SHORT, id="short", marks=pytest.mark.timeout(400)),
        pytest.param(FULL, id="full", marks=[pytest.mark.soak, pytest.mark.timeout(3 * 3600)]),
    ],
)
async def test_chaos_soak(scale: Scale, tmp_path: Path, private_db: PrivateMariaDB, replicas: list[Replica]) -> None:
    began = time.monotonic()
    options = SimOptions(
        seed=scale.seed, rate=scale.rate, events=scale.events, history=scale.history, wait_for_clients=1
    )
    engine = create_async_engine(private_db.url, poolclass=pool.NullPool)
    watcher = AlertWatcher(replicas)
    try:
        async with RunningSim(options) as sim:
            prefix = f"cidash-soak-{secrets.token_hex(4)}"
            for replica in replicas:
                write_config(replica, sim, private_db.url, client_key(tmp_path), scale, prefix)
                replica.start()
            for replica in replicas:
                await replica.wait_ready()
            watcher.start()
            chaos = Chaos(scale, sim, private_db, replicas, watcher, DeadLetterTally(engine))
            await chaos.run()
            await chaos.final_backfill()
            truth = await fetch_truth(sim)
            injected = dict(sim.faults.counts)
        store = await Store.open(private_db.url)
        try:
            stored = await all_runs(store)
        finally:
            await store.close()
        await chaos.tally.refresh()
        alerts = await stored_alerts(engine)
        incidents, edge_problems = await edge_tally(engine)
        await until_watched(watcher, alerts)
    finally:
        await watcher.stop()
        await engine.dispose()

    missing, extra = compare(truth, stored)
    received = Counter(watcher.alerts)
    expected = Counter(alerts)
    links_lost = injected.get("ssh_drop", 0) + len(chaos.takeovers) + private_db.restarts
    report(
        "short" if scale is SHORT else "full",
        {
            "CI runs in the truth": len(truth),
            "CI runs stored": len(stored),
            "lost / duplicated": f"{sum(missing.values())} / {sum(extra.values())}",
            "stream events published": sim.hub.published,
            "injected by the simulator": injected,
            "garbage lines dead-lettered": chaos.tally.garbage,
            "cut-off lines dead-lettered": len(chaos.tally.others),
            "MariaDB restarts": private_db.restarts,
            "kill -9, takeover s": [round(took, 1) for took in chaos.takeovers],
            "samples with two collectors": chaos.double_leaders,
            "alerts stored / received": f"{len(alerts)} / {len(watcher.alerts)}",
            "alerts missed / duplicated": f"{sum((expected - received).values())} / {watcher.duplicates()}",
            "incidents / edge problems": f"{incidents} / {len(edge_problems)}",
            "websocket connections": watcher.connections,
            "minutes": round((time.monotonic() - began) / 60, 1),
        },
    )
    assert not missing and not extra, f"missing {list(missing)[:3]}; extra {list(extra)[:3]}"
    assert chaos.tally.garbage == chaos.garbage_expected() > 0
    assert all(raw.startswith("{") for _, raw in chaos.tally.others), chaos.tally.others[:3]
    assert len(chaos.tally.others) <= links_lost, "only a dropped link cuts a line off"
    assert received == expected, f"missed {list(expected - received)[:5]}, extra {list(received - expected)[:5]}"
    assert alerts, "the rules raised alerts"
    assert incidents and not edge_problems, edge_problems[:5]
    assert injected.get("ssh_drop") == scale.ssh_drops + (1 if scale.refusal_s else 0)
    assert injected.get("ssh_refused", 0) > 0 or not scale.refusal_s
    assert injected.get("rest_429", 0) > 0 and injected.get("rest_500", 0) > 0, "the storms met REST traffic"
    assert len(chaos.takeovers) == scale.kills and all(took <= LEASE_S for took in chaos.takeovers)
    assert watcher.connections > scale.kills + scale.db_restarts
