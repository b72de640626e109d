"""The collector writes down its stream sessions and backfill passes, against `cidash sim` on both
engines: an SSH cut (and a few seconds of refused reconnects) leaves a gap, the backfill that
follows the reconnect covers it, and a stop closes the session ("collector stopped")."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cidash.collector.completeness import STOPPED
from cidash.domain.views import ServerCollection
from cidash.service.runtime import Runtime
from cidash.sim.faults import FaultRequest
from cidash.sim.runner import RunningSim, SimOptions
from cidash.store import Store
from cidash.store.collection import collection
from tests.support.sim_fixtures import client_key, sim_settings, wait_for

pytestmark = pytest.mark.timeout(240)


async def _timeline(store: Store, since: datetime) -> ServerCollection:
    now = datetime.now(UTC)
    async with store.engine.connect() as conn:
        (server,) = await collection(conn, since, now + timedelta(seconds=1), now)
    return server


async def _until(
    store: Store, since: datetime, check: Callable[[ServerCollection], bool], what: str, limit_s: float = 60
) -> ServerCollection:
    """Read the timeline until `check` holds for it; that timeline."""
    deadline = asyncio.get_running_loop().time() + limit_s
    while True:
        timeline = await _timeline(store, since)
        if check(timeline):
            return timeline
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {limit_s} s waiting for {what}: {timeline!r}")
        await asyncio.sleep(0.2)


async def test_ssh_cut_leaves_a_gap_the_next_backfill_covers(migrated_db_url: str, tmp_path: Path) -> None:
    options = SimOptions(seed=21, rate=200, events=None, history=timedelta(hours=1))
    began = datetime.now(UTC)
    async with RunningSim(options) as sim:
        # no scheduled pass in the test's time: the passes are the start's and the reconnect's
        settings = sim_settings(sim, migrated_db_url, client_key(tmp_path), backfill_interval_s=3600)
        async with Runtime(settings, migrate=False) as runtime:
            collector = runtime.collectors[0]
            store = runtime.store
            assert store is not None
            await wait_for(lambda: collector.stream.stats.connected, 20, "the stream to connect")
            # the session and the start's pass are in the store, and nothing is missing
            first_records = await _until(
                store, began, lambda t: len(t.sessions) == 1 and t.summary.passes_ok >= 1, "the first records"
            )
            assert first_records.connected and first_records.gaps == []

            sim.faults.apply(FaultRequest(drop_ssh=True, refuse_ssh_s=3))
            await wait_for(lambda: collector.stream.stats.reconnects >= 1, 60, "the reconnect")
            timeline = await _until(
                store,
                began,
                lambda t: len(t.gaps) == 1 and t.gaps[0].state == "covered" and t.connected,
                "the gap to be covered by the reconnect's backfill",
            )
        (gap,) = timeline.gaps
        first, second = timeline.sessions
        assert gap.start == first.disconnected_at and gap.end == second.connected_at
        assert gap.end is not None and (gap.end - gap.start).total_seconds() >= 2.5  # the refused reconnects
        assert first.reason and first.reason != STOPPED  # the stream's error
        covering = next(p for p in timeline.passes if p.id == gap.covered_by)
        assert covering.outcome == "ok" and covering.since is not None and covering.until is not None
        assert covering.since <= gap.start and covering.until >= gap.end and covering.finished_at >= gap.end
        assert timeline.summary.completeness == 1.0 and timeline.summary.uncovered_gaps == 0

        # stopped: the session is closed as such, and from then on the gap is open
        after = await Store.open(migrated_db_url)
        try:
            stopped = await _timeline(after, began)
        finally:
            await after.close()
    assert stopped.sessions[-1].reason == STOPPED
    assert not stopped.connected and stopped.gaps[-1].state == "open"
