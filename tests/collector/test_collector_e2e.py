"""End to end against `cidash sim`, on both engines: what is stored equals the simulator's truth.

The collector runs for real (SSH stream-events with a pinned host key, REST backfill, the
APScheduler job) while the simulator streams live traffic over a pre-generated history and
faults are injected: SSH drops, dropped-output, a 429 storm, malformed lines and a restart of
the collector in the middle.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from cidash import metrics
from cidash.collector.service import ServerCollector
from cidash.service.runtime import Runtime
from cidash.sim.faults import FaultRequest
from cidash.sim.runner import RunningSim, SimOptions
from cidash.store import Store
from tests.support.sim_fixtures import client_key, compare, fetch_truth, sim_settings
from tests.support.stored import all_runs
from tests.support.wait import until

pytestmark = pytest.mark.timeout(240)


async def _settle(sim: RunningSim, collector: ServerCollector) -> None:
    """Let the simulator write out its stream and the collector store what it read, then one last
    backfill (the final word on what is still on the wire): afterwards the store must be complete."""
    async with asyncio.timeout(30):
        await sim.hub.wait_drained()
    await until(lambda: collector.ingestor.pending == 0, 30, "the ingest queue to drain")
    result = await collector.backfill_now()
    assert result is not None, collector.health.last_error


async def test_clean_run_matches_truth(migrated_db_url: str, tmp_path: Path) -> None:
    options = SimOptions(seed=11, rate=400, events=1500, history=timedelta(hours=6))
    async with RunningSim(options) as sim:
        settings = sim_settings(sim, migrated_db_url, client_key(tmp_path))
        async with Runtime(settings, migrate=False) as runtime:
            collector = runtime.collectors[0]
            await until(lambda: collector.stream.stats.connected, 20, "the stream to connect")
            await sim.done.wait()
            await _settle(sim, collector)
            assert runtime.store is not None
            stored = await all_runs(runtime.store)
            stats = collector.ingestor.stats
        truth = await fetch_truth(sim)

    missing, extra = compare(truth, stored)
    assert not missing and not extra, f"missing {sum(missing.values())}: {list(missing)[:3]}; extra {list(extra)[:3]}"
    assert len(truth) > 100  # history + live: enough to mean something
    assert stats.comments > 0, "the stream delivered comments in real time"
    assert stats.dead_lettered == 0


async def test_faults_and_restart_lose_nothing(migrated_db_url: str, tmp_path: Path) -> None:
    options = SimOptions(seed=12, rate=300, events=3000, history=timedelta(hours=3))
    async with RunningSim(options) as sim:
        settings = sim_settings(
            sim, migrated_db_url, client_key(tmp_path), backfill_interval_s=3, backfill_overlap_s=30
        )
        half = options.events // 2 if options.events else 0
        meters_before = _meters(settings.servers[0].name)

        # first collector: faults while it runs, then it is stopped in the middle of the traffic
        async with Runtime(settings, migrate=False) as runtime:
            collector = runtime.collectors[0]
            await until(lambda: collector.stream.stats.connected, 20, "the stream to connect")
            sim.faults.apply(FaultRequest(malformed_rate=0.02, truncated_rate=0.01))
            await until(lambda: sim.hub.published > 400, 30, "traffic")
            sim.faults.apply(FaultRequest(drop_ssh=True))
            await until(lambda: sim.hub.published > 800, 30, "traffic")
            sim.faults.apply(FaultRequest(dropped_output=25))
            sim.faults.apply(FaultRequest(rest_429_s=3))
            await until(lambda: sim.hub.published > half, 60, "half the traffic")
            # a starved collector may still be reconnecting at half-time
            await until(lambda: collector.stream.stats.reconnects >= 1, 30, "a reconnect after the SSH drop")
            first_dead = collector.ingestor.stats.dead_lettered
            first_reconnects = collector.stream.stats.reconnects

        # a gap with nobody listening, then a fresh collector on the same database
        await until(lambda: sim.hub.published > half + 300, 60, "traffic while no collector runs")
        sim.faults.apply(FaultRequest(malformed_rate=0.0, truncated_rate=0.0))
        async with Runtime(settings, migrate=False) as runtime:
            collector = runtime.collectors[0]
            await sim.done.wait()
            await _settle(sim, collector)
            assert runtime.store is not None
            stored = await all_runs(runtime.store)
            dead_total = await runtime.store.dead_letter_count()
        truth = await fetch_truth(sim)
        injected = dict(sim.faults.counts)
        meters = _meters(settings.servers[0].name, minus=meters_before)

    missing, extra = compare(truth, stored)
    assert not missing and not extra, f"missing {sum(missing.values())}: {list(missing)[:3]}; extra {list(extra)[:3]}"
    assert first_reconnects >= 1, "the SSH drop made the collector reconnect"
    assert injected.get("malformed", 0) + injected.get("truncated", 0) > 0
    assert first_dead > 0
    # every bad line we were sent is in the dead-letter table (some were sent while nobody listened)
    assert dead_total >= first_dead
    assert injected.get("dropped_output", 0) > 0
    # /metrics tells the same story as the store
    assert meters["runs_stored"] == len(stored)
    assert meters["dead_lettered"] == dead_total
    assert meters["reconnects"] >= first_reconnects
    assert meters["stream_events"] > 0 and meters["rest_comments"] > 0 and meters["backfills"] >= 2


def _meters(server: str, minus: dict[str, float] | None = None) -> dict[str, float]:
    """This server's Prometheus counters (process-wide, so tests compare differences)."""
    sample = metrics.REGISTRY.get_sample_value
    now = {
        "runs_stored": sample("cidash_runs_stored_total", {"server": server}) or 0.0,
        "dead_lettered": sample("cidash_dead_lettered_total", {"server": server}) or 0.0,
        "reconnects": sample("cidash_stream_reconnects_total", {"server": server}) or 0.0,
        "stream_events": sample("cidash_events_received_total", {"server": server, "source": "stream"}) or 0.0,
        "rest_comments": sample("cidash_events_received_total", {"server": server, "source": "rest"}) or 0.0,
        "backfills": sample("cidash_backfill_duration_seconds_count", {"server": server}) or 0.0,
    }
    return {key: value - (minus or {}).get(key, 0.0) for key, value in now.items()}


async def test_store_reopen_after_run_keeps_counts(migrated_db_url: str, tmp_path: Path) -> None:
    """Running a backfill again over the same window adds nothing (idempotency end to end)."""
    options = SimOptions(seed=13, rate=None, events=0, history=timedelta(hours=4))
    async with RunningSim(options) as sim:
        settings = sim_settings(sim, migrated_db_url, client_key(tmp_path), stream=False)
        async with Runtime(settings, migrate=False) as runtime:
            collector = runtime.collectors[0]
            first = await collector.backfill_now()
            again = await collector.backfill_now()
            assert runtime.store is not None
            count = await runtime.store.run_count()
        truth = await fetch_truth(sim)
    assert first is not None and again is not None
    assert again.runs_inserted == 0
    assert count == len(truth) > 0
    store = await Store.open(migrated_db_url)
    try:
        assert await store.run_count() == count
    finally:
        await store.close()
