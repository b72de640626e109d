"""Exactly one replica collects a server; when it goes away another takes over and fills the gap."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path

import pytest

from cidash.collector.election import LEASE_S, Leadership
from cidash.service.runtime import Runtime
from cidash.sim.runner import RunningSim, SimOptions
from tests.support.sim_fixtures import client_key, compare, fetch_truth, sim_settings
from tests.support.stored import all_runs
from tests.support.wait import until

pytestmark = pytest.mark.timeout(180)


class Flags:
    def __init__(self) -> None:
        self.elected = 0
        self.deposed = 0

    async def on_elected(self) -> None:
        self.elected += 1

    async def on_deposed(self) -> None:
        self.deposed += 1


async def test_one_leader_then_takeover(migrated_db_url: str) -> None:
    first, second = Flags(), Flags()
    a = Leadership(migrated_db_url, "collector:x", holder="a", poll_s=0.2)
    b = Leadership(migrated_db_url, "collector:x", holder="b", poll_s=0.2)
    task_a = asyncio.create_task(a.run(first.on_elected, first.on_deposed))
    await until(lambda: a.leader, 5, "the first replica to lead")
    task_b = asyncio.create_task(b.run(second.on_elected, second.on_deposed))
    await asyncio.sleep(1.0)  # the point: five of b's polls during which a holds the lease
    assert a.leader and not b.leader, "two replicas must never both lead"
    task_a.cancel()  # the leader goes away
    with pytest.raises(asyncio.CancelledError):
        await task_a
    await until(lambda: b.leader, LEASE_S, "the second replica to take over within the lease")
    assert first.elected == 1 and first.deposed == 1
    assert second.elected == 1
    task_b.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task_b


async def test_collector_moves_between_replicas(migrated_db_url: str, tmp_path: Path) -> None:
    options = SimOptions(seed=21, rate=200, events=2000, history=timedelta(hours=2))
    async with RunningSim(options) as sim:
        settings = sim_settings(sim, migrated_db_url, client_key(tmp_path))
        replica_a = Runtime(settings, migrate=False)
        replica_b = Runtime(settings, migrate=False)
        await replica_a.__aenter__()
        try:
            await replica_b.__aenter__()
            try:
                assert len(replica_a.collectors) == 1
                assert replica_b.collectors == [], "only one replica may collect a server"
                await until(lambda: sim.hub.published > 600, 30, "traffic")
            finally:
                pass
            await replica_a.__aexit__(None, None, None)  # the collecting replica dies
            died = time.monotonic()
            await until(lambda: len(replica_b.collectors) == 1, LEASE_S + 5, "the other replica to collect")
            took = time.monotonic() - died
            collector = replica_b.collectors[0]
            await sim.done.wait()
            await until(lambda: collector.ingestor.pending == 0, 30, "the ingest queue to drain")
            result = await collector.backfill_now()
            assert result is not None
            stored = await all_runs(replica_b.store)
        finally:
            await replica_b.__aexit__(None, None, None)
        truth = await fetch_truth(sim)
    missing, extra = compare(truth, stored)
    assert not missing and not extra, f"missing {sum(missing.values())}, extra {sum(extra.values())}"
    assert took <= LEASE_S
