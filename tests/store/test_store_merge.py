"""A REST copy merged into a run first stored from the stream brings its whole identity, the
vote included (found by the chaos soak: Zuul's gate and check "Merge Failed." two seconds apart)."""

from __future__ import annotations

from datetime import timedelta

from cidash.store import Store
from tests.support.store_fixtures import T0, observed, parsed, rest_copy, stream_copy
from tests.support.stored import all_runs


async def test_same_body_comments_seconds_apart_keep_their_own_votes(store: Store) -> None:
    gate = observed("Patch Set 6: Verified-2\n\nMerge Failed.", posted_at=T0)
    check = observed("Patch Set 6: Verified-1\n\nMerge Failed.", posted_at=T0 + timedelta(seconds=2))
    # the stream delivered only the check comment (the gate one was lost with a dropped link)
    await store.write_comments([(stream_copy(check), parsed(result="MERGE_CONFLICT", vote=-1))])
    # the backfill brings both; the gate copy may pair with the stored stream run
    stats = await store.write_comments(
        [
            (rest_copy(gate, "m-gate"), parsed(result="MERGE_CONFLICT", vote=-2)),
            (rest_copy(check, "m-check"), parsed(result="MERGE_CONFLICT", vote=-1)),
        ]
    )
    assert stats.runs_inserted + stats.runs_merged == 2
    runs = await all_runs(store)
    assert sorted((run.message_id, run.vote) for run in runs) == [("m-check", -1), ("m-gate", -2)]


async def test_a_rest_copy_without_a_vote_keeps_the_streams(store: Store) -> None:
    comment = observed("Build failed.", posted_at=T0)
    await store.write_comments([(stream_copy(comment), parsed(vote=-1))])
    await store.write_comments([(rest_copy(comment, "m-1"), parsed(vote=None))])
    [run] = await all_runs(store)
    assert (run.message_id, run.vote) == ("m-1", -1)
