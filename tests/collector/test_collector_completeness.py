"""The collector writes down its stream sessions and backfill passes, against `cidash sim` on both
engines: an SSH cut (and a few seconds of refused reconnects) leaves a gap, the backfill that
follows the reconnect covers it, and a stop closes the session ("collector stopped")."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cidash.collector.completeness import STOPPED, CompletenessRecorder
from cidash.domain.views import ServerCollection
from cidash.service.runtime import Runtime
from cidash.sim.faults import FaultRequest
from cidash.sim.runner import RunningSim, SimOptions
from cidash.store import Store
from cidash.store.collection import collection
from tests.support.sim_fixtures import client_key, sim_server, sim_settings
from tests.support.wait import until, until_awaited

pytestmark = pytest.mark.timeout(240)


async def _timelines(store: Store, since: datetime) -> list[ServerCollection]:
    now = datetime.now(UTC)
    async with store.engine.connect() as conn:
        return await collection(conn, since, now + timedelta(seconds=1), now)


async def _timeline(store: Store, since: datetime) -> ServerCollection:
    (server,) = await _timelines(store, since)
    return server


async def _until(
    store: Store, since: datetime, check: Callable[[ServerCollection], bool], what: str, limit_s: float = 60
) -> ServerCollection:
    """Read the (one) server's timeline until `check` holds for it; that timeline."""

    async def checked() -> ServerCollection | None:
        timelines = await _timelines(store, since)  # none until the first record names the server
        return timelines[0] if timelines and check(timelines[0]) else None

    return await until_awaited(checked, limit_s, what, 0.2)


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
            await until(lambda: collector.stream.stats.connected, 20, "the stream to connect")
            # the session and the start's pass are in the store, and nothing is missing
            first_records = await _until(
                store, began, lambda t: len(t.sessions) == 1 and t.summary.passes_ok >= 1, "the first records"
            )
            assert first_records.connected and first_records.gaps == []

            sim.faults.apply(FaultRequest(drop_ssh=True, refuse_ssh_s=3))
            await until(lambda: collector.stream.stats.reconnects >= 1, 60, "the reconnect")
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


async def test_a_one_off_cli_backfill_covers_an_old_gap(migrated_db_url: str, tmp_path: Path) -> None:
    """`cidash backfill --since 4h` is a pass like the collector's: an hour nobody collected, three
    hours ago, becomes covered by it."""
    options = SimOptions(seed=22, rate=None, events=0, history=timedelta(hours=2))
    now = datetime.now(UTC)
    async with RunningSim(options) as sim:
        server = sim_server(sim, client_key(tmp_path))
        config = tmp_path / "cidash.toml"
        config.write_text(
            f'database_url = "{migrated_db_url}"\n[[servers]]\nname = "{server.name}"\nssh_host = "127.0.0.1"\n'
            f'ssh_port = {sim.ssh_port}\nssh_user = "cidash"\nssh_key = "{server.ssh_key}"\n'
            f'host_key_fingerprint = "{sim.host_key_fingerprint}"\nhttp_url = "{sim.http_url}"\n'
            f'http_user = "{sim.options.http_user}"\nhttp_password = "{sim.options.http_password}"\n'
        )
        store = await Store.open(migrated_db_url)
        try:
            before = await store.open_stream_session(server.name, now - timedelta(hours=3))
            await store.close_stream_session(before, now - timedelta(hours=2), "ConnectionError")
            after = await store.open_stream_session(server.name, now - timedelta(hours=1))
            await store.close_stream_session(after, now - timedelta(minutes=30), "collector stopped")
            (gap, _) = (await _timeline(store, now - timedelta(hours=4))).gaps
            assert gap.state == "uncovered"
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                "from cidash.cli import main; main()",
                "--config",
                str(config),
                "backfill",
                "--since",
                "4h",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            output, _ = await asyncio.wait_for(process.communicate(), 120)
            assert process.returncode == 0, output.decode()
            timeline = await _timeline(store, now - timedelta(hours=4))
        finally:
            await store.close()
    (cli_pass,) = timeline.passes
    gap, still_open = timeline.gaps
    assert cli_pass.outcome == "ok" and cli_pass.changes > 0 and cli_pass.runs_new > 0
    assert (gap.state, gap.covered_by) == ("covered", cli_pass.id)
    assert still_open.state == "open"  # since the last session: a backfill does not make a stream


async def test_the_heartbeat_moves_last_seen_while_connected(store: Store) -> None:
    """The recorder's heartbeat keeps the open session's last_seen_at current (what a killed
    process's session is closed at); it stops beating once disconnected."""
    began = datetime.now(UTC)
    recorder = CompletenessRecorder(store, "review", heartbeat_s=0.1)
    recorder.start()
    try:
        recorder.connected()
        first = await _until(store, began, lambda t: len(t.sessions) == 1, "the session")
        beaten = await _until(
            store,
            began,
            lambda t: t.sessions[0].last_seen_at > first.sessions[0].last_seen_at + timedelta(seconds=0.2),
            "two heartbeats",
        )
        assert beaten.connected and beaten.sessions[0].disconnected_at is None
        recorder.disconnected("ConnectionError: reset")
        closed = await _until(store, began, lambda t: t.sessions[0].disconnected_at is not None, "the close")
        await asyncio.sleep(0.3)  # three beats' time: none of them may move a closed session
        (session,) = (await _timeline(store, began)).sessions
        assert session == closed.sessions[0] and session.reason == "ConnectionError: reset"
    finally:
        await recorder.stop()
