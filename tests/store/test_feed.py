"""cidash.store.feed on both engines: run messages get the ids of their rows, in order, also for
big batches and concurrent writers; the replay query pages and filters."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence
from datetime import timedelta

import orjson
import sqlalchemy as sa

from cidash.domain.comments import AccountRef
from cidash.domain.results import result_class
from cidash.domain.views import FeedMessage, RunOut
from cidash.parsing import JobResult
from cidash.store import Store, WriteStats
from cidash.store import feed as feed_module
from cidash.store.feed import FeedEntry, FeedFilter
from cidash.store.reads.run_rows import first_log_url
from cidash.store.schema import feed_t
from tests.support.store_fixtures import T0, THIRD_PARTY, ZUUL, observed, parsed


def comments(
    count: int,
    *,
    first_change: int = 1000,
    author: AccountRef = THIRD_PARTY,
    ci: str = "acme-ci",
    result: str = "FAILURE",
    project: str = "openstack/nova",
    jobs: Sequence[JobResult] | None = None,
) -> list[tuple[object, object]]:
    items = []
    for index in range(count):
        comment = observed(
            change=first_change + index,
            author=author,
            posted_at=T0 + timedelta(seconds=index),
            project=project,
            message=f"Build {result.lower()} #{first_change + index}",
        )
        kwargs = {"jobs": jobs} if jobs is not None else {}
        items.append((comment, parsed(result=result, ci=ci, **kwargs)))  # type: ignore[arg-type]
    return items


async def write(store: Store, items: list[tuple[object, object]]) -> tuple[WriteStats, list[FeedMessage]]:
    stats = await store.write_comments(items)  # type: ignore[arg-type]
    messages = stats.after_insert
    assert isinstance(messages, list)
    return stats, messages


async def feed_rows(store: Store) -> dict[int, tuple[str, dict[str, object], int | None, str | None]]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            sa.select(feed_t.c.id, feed_t.c.kind, feed_t.c.payload, feed_t.c.ci_system_id, feed_t.c.project)
        )
        return {row[0]: (row[1], orjson.loads(row[2]), row[3], row[4]) for row in rows}


def assert_increasing(ids: Sequence[int]) -> None:
    assert all(a < b for a, b in itertools.pairwise(ids)), ids


async def test_run_messages_carry_the_ids_of_their_rows(store: Store) -> None:
    store.after_insert = feed_module.append_run_messages
    stats, messages = await write(store, comments(5))
    assert len(messages) == stats.runs_inserted == 5
    rows = await feed_rows(store)
    assert sorted(rows) == [message.id for message in messages]
    assert_increasing([message.id for message in messages])
    run_ids = {run.id for run in stats.inserted}
    for message in messages:
        kind, payload, ci_system_id, project = rows[message.id]
        assert (message.type, kind) == ("run", "run")
        assert payload == message.data  # what is published is what is stored
        assert payload["id"] in run_ids
        assert ci_system_id is not None and project == "openstack/nova"
        run = RunOut.model_validate(payload)  # the contract the dashboard is built against
        assert (run.ci, run.result, run.result_class, run.change) == (
            "acme-ci",
            "FAILURE",
            "failure",
            payload["change"],
        )
        assert run.log_url == "https://logs.example/1"
    # the run ids follow the message order (one message per inserted run, same order)
    assert [message.data["id"] for message in messages] == [run.id for run in stats.inserted]

    _, more = await write(store, comments(3, first_change=2000, author=ZUUL, ci="zuul", result="SUCCESS"))
    assert min(message.id for message in more) > max(message.id for message in messages)
    assert all(message.data["result_class"] == "success" for message in more)


async def test_a_batch_of_a_thousand_runs(store: Store) -> None:
    store.after_insert = feed_module.append_run_messages
    await write(store, comments(2))  # ids do not start at 1
    started = time.perf_counter()
    _, messages = await write(store, comments(1000, first_change=5000))
    elapsed = time.perf_counter() - started
    assert len(messages) == 1000
    assert_increasing([message.id for message in messages])
    rows = await feed_rows(store)
    assert all(rows[message.id][1]["id"] == message.data["id"] for message in messages)
    assert [message.data["change"] for message in messages] == [5000 + index for index in range(1000)]
    assert elapsed < 30, f"writing 1,000 runs with their feed rows took {elapsed:.1f} s"


async def test_concurrent_writers_get_the_right_ids(migrated_db_url: str) -> None:
    """Two stores (two collector processes) writing at once: each message names its own row."""
    first = await Store.open(migrated_db_url, after_insert=feed_module.append_run_messages)
    second = await Store.open(migrated_db_url, after_insert=feed_module.append_run_messages)
    try:
        await first.write_comments([comments(1)[0]])  # type: ignore[list-item]  # create server/accounts once

        async def many(store: Store, base: int, author: AccountRef, ci: str) -> list[FeedMessage]:
            found: list[FeedMessage] = []
            for round_no in range(6):
                _, messages = await write(store, comments(40, first_change=base + 100 * round_no, author=author, ci=ci))
                found.extend(messages)
            return found

        a, b = await asyncio.gather(many(first, 10_000, THIRD_PARTY, "acme-ci"), many(second, 20_000, ZUUL, "zuul"))
        rows = await feed_rows(first)
        for message in a + b:
            assert rows[message.id][1] == message.data
        assert len({message.id for message in a + b}) == len(a) + len(b) == 480
    finally:
        await first.close()
        await second.close()


async def test_replay_query_pages_and_filters(store: Store) -> None:
    store.after_insert = feed_module.append_run_messages
    _, acme = await write(store, comments(4, project="openstack/nova"))
    _, zuul = await write(
        store, comments(3, first_change=3000, author=ZUUL, ci="zuul", result="SUCCESS", project="x/y")
    )
    async with store.engine.begin() as conn:
        ci_id = (await feed_rows(store))[acme[0].id][2]
        state = await feed_module.append(
            conn, [FeedEntry("state", {"ci": "acme-ci", "state": "failing", "state_reason": "r"}, ci_id, None)]
        )
    everything = acme + zuul + state
    async with store.engine.connect() as conn:
        assert await feed_module.newest_id(conn) == state[0].id
        page = await feed_module.read_since(conn, 0, limit=3)
        assert [row.id for row in page] == [m.id for m in everything[:3]]
        rest = await feed_module.read_since(conn, page[-1].id, limit=100)
        assert [row.id for row in page + rest] == [m.id for m in everything]
        assert orjson.loads(rest[-1].message_text()) == {"type": "state", "id": state[0].id, "data": state[0].data}

        since = acme[1].id
        by_ci = await feed_module.messages_since(conn, since, FeedFilter.of(ci=["zuul"]))
        assert [m.id for m in by_ci] == [m.id for m in zuul]
        by_kind = await feed_module.messages_since(conn, 0, FeedFilter.of(kinds=["state", "bogus"]))
        assert [m.id for m in by_kind] == [state[0].id]
        # a projects filter keeps messages without a project (the state change)
        by_project = await feed_module.messages_since(conn, since, FeedFilter.of(projects=["openstack/nova"]))
        assert [m.id for m in by_project] == [m.id for m in acme[2:]] + [state[0].id]
        both = await feed_module.messages_since(conn, 0, FeedFilter.of(kinds=["run"], ci=["acme-ci", "nobody"]))
        assert [m.id for m in both] == [m.id for m in acme]
    flt = FeedFilter.of(kinds=["run"], projects=["x/y"])
    assert [m.id for m in everything if flt.matches_message(m)] == [m.id for m in zuul]


def test_result_classes_and_log_urls() -> None:
    assert [result_class(r) for r in ("SUCCESS", "FAILURE", "POST_FAILURE", "NODE_FAILURE", "SKIPPED", "WEIRD")] == [
        "success",
        "failure",
        "failure",
        "infra",
        "other",
        "other",
    ]
    jobs = [
        JobResult("a", "javascript:alert(1)", "FAILURE", None),
        JobResult("b", None, "FAILURE", None),
        JobResult("c", "ftp://x/y", "FAILURE", None),
        JobResult("d", "https://logs.example/ok", "FAILURE", None),
    ]
    assert first_log_url(jobs) == "https://logs.example/ok"
    assert first_log_url(jobs[:3]) is None
    assert first_log_url([JobResult("e", "http://\tevil", "SUCCESS", None)]) is None
