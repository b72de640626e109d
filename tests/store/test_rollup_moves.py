"""The writer keeps the rollups exact when it changes a stored run's time or latency (both engines):
a REST copy merged into a run first stored from the stream, and a latency filled in once the
patch set's creation time is known."""

from __future__ import annotations

from datetime import timedelta

from cidash.store import Store, derived_writes
from cidash.store.rollups import apply_rollups
from tests.support.rollups import rebuild, same_rollups, snapshot
from tests.support.store_fixtures import HUMAN, T0, human_parsed, observed, parsed, rest_copy, stream_copy
from tests.support.stored import all_runs


async def _assert_rollups_equal_a_recomputation(store: Store) -> None:
    incremental = await snapshot(store)
    await rebuild(store)
    recomputed = await snapshot(store)
    assert incremental[1] == recomputed[1]
    assert same_rollups(incremental[0], recomputed[0]), (incremental[0], recomputed[0])


def _keep_rollups(store: Store) -> None:
    store.after_insert = apply_rollups  # what cidash.store.derived_writes does, without the feed
    store.after_move = derived_writes.after_move


async def test_a_rest_copy_moving_a_stream_run_moves_its_rollups(store: Store) -> None:
    _keep_rollups(store)
    # REST's time is just before the hour, the stream's just after: the run changes hour,
    # latency (from the patch set's creation) and latency bucket when the REST copy arrives
    rest_time = T0.replace(hour=11) - timedelta(seconds=2, microseconds=500_000)
    original = observed(posted_at=rest_time, created_at=rest_time - timedelta(seconds=3))
    stream = stream_copy(original, delay_s=4)
    assert stream.posted_at.hour != rest_time.hour
    await store.write_comments([(stream, parsed())])
    stats = await store.write_comments([(rest_copy(original, "msg-1"), parsed())])
    assert (stats.runs_inserted, stats.runs_merged) == (0, 1)
    [run] = await all_runs(store)
    assert run.posted_at == rest_time and run.latency_s == 3.0
    await _assert_rollups_equal_a_recomputation(store)


async def test_a_latency_filled_in_later_reaches_the_rollups(store: Store) -> None:
    _keep_rollups(store)
    ci_comment = observed(created_at=None)  # the stream told nothing of the patch set's creation
    await store.write_comments([(ci_comment, parsed())])
    [run] = await all_runs(store)
    assert run.latency_s is None
    created_at = T0 - timedelta(minutes=30)
    human = observed("Looks good", author=HUMAN, created_at=created_at, posted_at=T0 + timedelta(hours=1))
    await store.write_comments([(human, human_parsed())])
    runs = await all_runs(store)
    assert [r.latency_s for r in runs] == [1800.0]
    await _assert_rollups_equal_a_recomputation(store)
