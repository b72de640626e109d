"""`cidash ingest FILE.jsonl` (collector.ingest_file) on both engines, and the stream normaliser it
relies on: every line journaled or dead-lettered with its reason, every CI result comment stored
once, in batches that overlap the reading on MySQL/MariaDB."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson
import sqlalchemy as sa

from cidash.collector.ingest_file import ingest_file
from cidash.config import CISystemConfig, Settings
from cidash.domain.comments import AccountRef, Source
from cidash.gerrit.events import MAX_LINE_BYTES, StreamEvent
from cidash.gerrit.normalize import comment_from_event
from cidash.parsing import CommentKind, CommentParser
from cidash.sim.world import World
from cidash.store import Store
from cidash.store import schema as m
from tests.support.stored import all_runs

CI = [CISystemConfig(account="zuul", reference=True)]
BAD_LINES = [
    b"this is not json",
    b'["an", "array"]',
    b'{"no": "type"}',
    b'{"type":"comment-added","comment":"no change, no patch set"}',
    b"{" + b" " * MAX_LINE_BYTES + b"}",
]


def _archive(path: Path, events: int) -> list[bytes]:
    world = World(5, start=datetime(2026, 11, 1, tzinfo=UTC))
    lines: list[bytes] = []
    while len(lines) < events:
        lines.extend(event.to_line().rstrip(b"\n") for event in world.next_activity())
    mixed = lines[:100] + BAD_LINES + lines[100:]
    path.write_bytes(b"\n".join(mixed) + b"\n")
    return lines


def _expected_runs(lines: list[bytes]) -> Counter[tuple[int, int, str, str, datetime, tuple[str, ...]]]:
    parser = CommentParser(CI)
    found: Counter[tuple[int, int, str, str, datetime, tuple[str, ...]]] = Counter()
    for line in lines:
        comment = comment_from_event(StreamEvent.from_json(line), "review", Source.ARCHIVE)
        if comment is None:
            continue
        result = parser.parse(comment)
        if result.kind is CommentKind.RESULT:
            key = (comment.change_number, comment.patchset.number, comment.author.key, str(result.result))
            found[(*key, comment.posted_at, tuple(job.name for job in result.jobs))] += 1
    return found


async def test_ingest_file_journals_every_line_and_stores_every_run_once(migrated_db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    lines = _archive(path, 1500)
    settings = Settings(database_url=migrated_db_url, ci=CI)
    stats = await ingest_file(settings, path, "review", batch_size=200, migrate=False)
    again = await ingest_file(settings, path, "review", batch_size=200, migrate=False)

    assert stats.lines == len(lines) + len(BAD_LINES) - 1  # the oversized line is reported, not split
    assert stats.dead_lettered == len(BAD_LINES) == again.dead_lettered
    assert stats.by_reason == {
        "not-json": 1,
        "not-an-object": 1,
        "no-type": 1,
        "unusable-comment-added": 1,
        "too-long": 1,
    }
    expected = _expected_runs(lines)
    assert stats.runs_inserted == sum(expected.values()) > 100
    assert (again.runs_inserted, again.runs_duplicate) == (0, stats.runs_inserted)

    async with await Store.open(migrated_db_url) as store:
        runs = await all_runs(store, "review")
        async with store.engine.connect() as conn:
            journaled = (await conn.execute(sa.select(sa.func.count()).select_from(m.journal_t))).scalar_one()
            types = Counter(row[0] for row in await conn.execute(sa.select(m.journal_t.c.event_type)))
    stored = Counter(
        (run.change_number, run.patchset_number, run.author, run.result, run.posted_at, tuple(j.name for j in run.jobs))
        for run in runs
    )
    assert stored == expected
    usable = len(lines) + 1  # the unusable comment-added is journaled and dead-lettered
    assert journaled == 2 * usable
    assert types["ref-updated"] == 2 * sum(b'"type":"ref-updated"' in line for line in lines) > 0


def _event(**changes: object) -> StreamEvent:
    value = {
        "author": {"name": "Zuul", "username": "zuul"},
        "approvals": [
            {"type": "Verified", "description": "Verified", "value": "-1", "oldValue": "0"},
            {"type": "Code-Review", "value": 2},
            {"description": "Workflow", "value": "x"},
            "junk",
        ],
        "comment": "Patch Set 2: Verified-1\n\nBuild failed.",
        "patchSet": {"number": "2", "createdOn": 1700000000, "kind": "REWORK", "revision": "ab" * 20},
        "change": {"project": "p", "branch": "main", "id": "I1", "number": "42", "status": "NEW", "url": "u"},
        "project": "p",
        "type": "comment-added",
        "eventCreatedOn": "1700000060",
    }
    value.update(changes)
    return StreamEvent.from_json(orjson.dumps({k: v for k, v in value.items() if v is not None}))


def test_stream_comments_are_read_tolerantly() -> None:
    comment = comment_from_event(_event(), "review")
    assert comment is not None
    assert (comment.change_number, comment.patchset.number, comment.project, comment.branch) == (42, 2, "p", "main")
    assert comment.posted_at == datetime.fromtimestamp(1700000060, UTC)
    assert comment.patchset.created_at == datetime.fromtimestamp(1700000000, UTC)
    assert comment.approvals == {"Verified": -1, "Code-Review": 2}
    assert comment.changed_labels == frozenset({"Verified"})
    assert comment.author == AccountRef(username="zuul", name="Zuul")
    webhook = comment_from_event(_event(project={"name": "w"}), "review")
    assert webhook is not None and webhook.project == "w"
    inside_change = comment_from_event(_event(project=None), "review")
    assert inside_change is not None and inside_change.project == "p"
    anonymous = comment_from_event(_event(author=None), "review")
    assert anonymous is not None and anonymous.author == AccountRef()
    odd_author = comment_from_event(_event(author={"name": ["not", "a", "name"], "username": "x"}), "review")
    assert odd_author is not None and odd_author.author == AccountRef(username="x")
    for missing in ({"change": None}, {"patchSet": None}, {"eventCreatedOn": None}, {"comment": 3}):
        assert comment_from_event(_event(**missing), "review") is None
    assert comment_from_event(_event(type="patchset-created"), "review") is None


def test_the_account_cache_tells_typed_ids_apart() -> None:
    """1, 1.0 and True are equal dict keys, but only 1 is an account id."""
    ids = [comment_from_event(_event(author={"_account_id": v, "name": "n"}), "r") for v in (1, 1.0, True, "1")]
    assert [c.author.account_id if c else None for c in ids] == [1, None, None, 1]
