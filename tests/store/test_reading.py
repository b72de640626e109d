"""Per CI and window: how many comments became results, starts or nothing (``ci_comments``,
:mod:`cidash.store.reads.comments`), on both engines, and how ``/api/v1/systems/{name}`` shows them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa

from cidash.api import create_app
from cidash.config import ApiConfig, CISystemConfig, Settings
from cidash.parsing import CommentKind, CommentParser, ParsedComment
from cidash.store import Store
from cidash.store import schema as m
from cidash.store.reads.comments import CommentCounts, comment_counts, unread_comments
from tests.support.store_fixtures import HUMAN, T0, observed, parsed, rest_copy, stream_copy

UNREAD_TEXT = "Patch Set 1:\n\nWe could not read this. Contact ci@acme.example"


def unread_parsed() -> ParsedComment:
    return ParsedComment(CommentKind.OTHER, True, "acme-ci", None, None, None, (), "listed in config; no report")


async def _ci_id(store: Store, name: str) -> int:
    systems, accounts = m.ci_systems_t, m.accounts_t
    query = sa.select(systems.c.id).join(accounts, accounts.c.id == systems.c.account_id)
    async with store.engine.connect() as conn:
        return int((await conn.execute(query.where(accounts.c.account_key == name))).scalar_one())


async def test_counts_results_starts_and_unread_once_each(store: Store) -> None:
    result = observed(posted_at=T0)
    start = observed("Patch Set 1:\n\nStarting check jobs.", posted_at=T0 - timedelta(minutes=40))
    unread = rest_copy(observed(UNREAD_TEXT, posted_at=T0 - timedelta(minutes=5)), "m-unread")
    human = observed("Looks good", author=HUMAN, posted_at=T0)
    stats = await store.write_comments(
        [
            (result, parsed()),
            (start, parsed(CommentKind.START)),
            (stream_copy(unread), unread_parsed()),  # the stream's copy first ...
            (human, ParsedComment(CommentKind.OTHER, False, None, None, None, None)),
        ]
    )
    assert (stats.runs_inserted, stats.noted_inserted) == (1, 2)
    again = await store.write_comments([(unread, unread_parsed()), (stream_copy(start), parsed(CommentKind.START))])
    assert (again.noted_inserted, again.noted_merged, again.noted_duplicate) == (0, 1, 1)  # ... REST's copy merges
    ci = await _ci_id(store, "acme-ci")
    async with store.engine.connect() as conn:
        whole = await comment_counts(conn, since=T0 - timedelta(hours=1), until=T0 + timedelta(seconds=1))
        recent = await comment_counts(conn, since=T0 - timedelta(minutes=10), until=T0 + timedelta(seconds=1))
        before = await comment_counts(conn, since=T0 - timedelta(hours=1), until=T0, ci_system_ids=[ci])
        none = await comment_counts(conn, since=T0 - timedelta(hours=1), ci_system_ids=[])
        latest = await unread_comments(conn, ci)
        stored = (await conn.execute(sa.select(m.ci_comments_t.c.message_id, m.ci_comments_t.c.kind))).all()
    assert whole == {ci: CommentCounts(results=1, starts=1, unread=1)}  # the human is nobody's comment
    assert recent == {ci: CommentCounts(results=1, starts=0, unread=1)}
    assert before == {ci: CommentCounts(results=0, starts=1, unread=1)}  # `until` is exclusive
    assert none == {}
    assert whole[ci].unread_share == 1 / 3 and CommentCounts().unread_share is None
    assert sorted(stored, key=str) == sorted([(None, "start"), ("m-unread", "unread")], key=str)
    [shown] = latest
    assert (shown.text, shown.why, shown.posted_at) == (UNREAD_TEXT, "listed in config; no report", unread.posted_at)


async def test_system_page_shows_counts_and_latest_unread(store: Store, tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    config = [CISystemConfig(account="acme-ci")]
    parser = CommentParser(config)
    comments = [
        observed(
            "Build failed.\n\n- job https://logs.example/1 : FAILURE in 1m 00s", posted_at=now - timedelta(minutes=3)
        ),
        observed("Starting check jobs.", posted_at=now - timedelta(minutes=10)),
        observed("I am confused (two days ago)", posted_at=now - timedelta(days=2)),
        observed("I am confused", posted_at=now - timedelta(minutes=2)),
    ]
    await store.write_comments([(comment, parser.parse(comment)) for comment in comments])
    settings = Settings(database_url=str(store.engine.url), ci=config, api=ApiConfig())
    app = create_app(settings, store, frontend_dir=tmp_path / "none")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cidash.test") as client:
        body = (await client.get("/api/v1/systems/acme-ci")).json()
    counts = {row["window"]: (row["results"], row["starts"], row["unread"]) for row in body["comments"]}
    assert counts == {"1h": (1, 1, 1), "24h": (1, 1, 1), "7d": (1, 1, 2), "30d": (1, 1, 2)}
    assert body["comments"][0]["unread_share"] == 1 / 3
    assert [row["text"] for row in body["unread"]] == ["I am confused", "I am confused (two days ago)"]
    assert body["unread"][0]["why"] == parser.parse(comments[3]).why
    assert body["unread"][0]["change"] == 1000


async def test_a_comment_read_once_as_unread_and_once_as_result_counts_once_as_the_run(store: Store) -> None:
    # the stream's copy lost its vote (no header, no approvals): unread; REST's copy has the
    # header, so the vote decides: a result. Either order, one run and nothing unread.
    parser = CommentParser([CISystemConfig(account="acme-ci")])
    for change, order in ((11, ("stream", "rest")), (12, ("rest", "stream"))):
        rest = rest_copy(observed("Patch Set 1: Verified+1\n\nThanks, all good.", change=change), f"m-{change}")
        copies = {"stream": stream_copy(rest, header=False), "rest": rest}
        for name in order:
            comment = copies[name]
            await store.write_comments([(comment, parser.parse(comment))])
    ci = await _ci_id(store, "acme-ci")
    async with store.engine.connect() as conn:
        counts = await comment_counts(conn, since=T0 - timedelta(hours=1), until=T0 + timedelta(hours=1))
    assert counts == {ci: CommentCounts(results=2, starts=0, unread=0)}
    assert await store.run_count() == 2
