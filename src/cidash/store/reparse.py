"""Re-reading stored comments with the rules in effect (``POST /api/v1/runs/reparse``,
``cidash reparse``), through the :class:`~cidash.store.facade.Store`.

* runs (``ci_runs``): result, vote, pipeline and jobs updated where they read differently; a run
  no longer read as a result is left as it is (counted in ``not_results``);
* a CI's other comments (``ci_comments``): one now read as a result becomes a run (written by
  the Store's writer with the same keys, and removed from ``ci_comments`` in that transaction);
  a start now unread or the reverse gets its new kind and ``why``;
* then the rollups of every CI whose results changed are rebuilt, so health follows.

Each chunk of rows is one write of the Store (serialised with the collector's, with its retry
policy), its changed rows updated in a few set-based statements; `progress` hears (done, total)
after each chunk.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import astuple, dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from cidash.config import CISystemConfig
from cidash.domain.text import clip
from cidash.parsing import PARSER_VERSION, CommentKind, CommentParser
from cidash.store import schema as m
from cidash.store.bulk_io import fitted, insert_rows, update_rows
from cidash.store.comment_writer import JOB_COLUMNS, UNKNOWN_RESULT, job_values
from cidash.store.natural_keys import IN_CHUNK, chunks
from cidash.store.reads.comments import stored_observed, stored_parser
from cidash.store.reads.run_rows import job_results
from cidash.store.reads.systems import SystemRow, system_rows
from cidash.store.rollups import rebuild_rollups
from cidash.store.types import fit_int32

if TYPE_CHECKING:
    from cidash.store.facade import Store

Progress = Callable[[int, int], None]  # (rows done, rows in all)


@dataclass(slots=True)
class ReparseCounts:
    runs: int = 0  # stored runs read
    changed: int = 0  # result, vote, pipeline or jobs changed
    unchanged: int = 0
    not_results: int = 0  # no longer read as a CI result: left as they were
    comments: int = 0  # a CI's stored starts and unread comments read
    now_results: int = 0  # of those, now read as results: moved to the runs
    comments_changed: int = 0  # a start now unread, or the reverse


REPARSE_CHUNK = 500
_RUN_UPDATED = ("result", "vote", "pipeline", "parsed_with")
_JOB_ROW = ("run_id", "position", *JOB_COLUMNS)


@dataclass(slots=True)
class _Chunk:
    """What one chunk's transaction did (returned, so a retried transaction counts once)."""

    last_id: int = 0
    read: int = 0
    counts: ReparseCounts = field(default_factory=ReparseCounts)
    touched: set[int] = field(default_factory=set)  # CI systems whose results changed


def _add(total: ReparseCounts, part: ReparseCounts) -> None:
    for name in total.__dataclass_fields__:
        setattr(total, name, getattr(total, name) + getattr(part, name))


async def _count_rows(store: Store, table: sa.Table, ci_ids: Sequence[int]) -> int:
    query = sa.select(sa.func.count()).select_from(table).where(table.c.ci_system_id.in_(ci_ids))
    async with store.engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


async def reparse(
    store: Store, configs: Sequence[CISystemConfig], *, ci: str | None = None, progress: Progress | None = None
) -> ReparseCounts:
    """Re-read the stored comments of every CI (of CI `ci` only, when given); see the module
    docstring. Every stored comment's author is a known CI system, so it is treated as a CI and
    only the text and the stored vote decide."""
    counts = ReparseCounts()
    async with store.engine.connect() as conn:
        systems = {s.id: s for s in await system_rows(conn, name=ci)}
    if not systems:
        return counts
    ci_ids = sorted(systems)
    parser = stored_parser(configs, list(systems.values()))
    total = await _count_rows(store, m.runs_t, ci_ids) + await _count_rows(store, m.ci_comments_t, ci_ids)
    done = 0
    touched: set[int] = set()
    for read_chunk in (_reparse_runs, _reparse_comments):
        last_id = 0
        while True:
            chunk = await read_chunk(store, systems, parser, last_id)
            if not chunk.read:
                break
            last_id = chunk.last_id
            _add(counts, chunk.counts)
            touched |= chunk.touched
            done += chunk.read
            if progress is not None:
                progress(done, total)
    if touched:
        await store.write(lambda conn: rebuild_rollups(conn, ci_system_ids=sorted(touched)))
    return counts


async def _reparse_runs(store: Store, systems: dict[int, SystemRow], parser: CommentParser, after_id: int) -> _Chunk:
    """The next chunk of stored runs (ids above `after_id`) re-read and rewritten where they
    read differently: one transaction, serialised with the collector's writes."""
    r, j = m.runs_t, m.jobs_t
    query = (
        sa.select(
            r.c.id, r.c.ci_system_id, r.c.project, r.c.branch, r.c.change_number, r.c.patchset_number,
            r.c.result, r.c.vote, r.c.pipeline, r.c.posted_at, r.c.source, r.c.raw_comment,
        )
        .where(r.c.id > after_id, r.c.ci_system_id.in_(sorted(systems)))
        .order_by(r.c.id)
        .limit(REPARSE_CHUNK)
    )  # fmt: skip

    async def work(conn: AsyncConnection) -> _Chunk:
        rows = (await conn.execute(query)).all()
        chunk = _Chunk(rows[-1].id if rows else after_id, len(rows))
        stored_jobs = await job_results(conn, [row.id for row in rows])
        updates: list[tuple[int, tuple[Any, ...]]] = []
        new_jobs: dict[int, list[tuple[Any, ...]]] = {}
        for row in rows:
            chunk.counts.runs += 1
            parsed = parser.parse(stored_observed(systems[row.ci_system_id], row))
            if parsed.kind != CommentKind.RESULT or parsed.result is None:
                chunk.counts.not_results += 1
                continue
            result, pipeline = fitted(r, ("result", "pipeline"), (parsed.result or UNKNOWN_RESULT, parsed.pipeline))
            vote = fit_int32(parsed.vote) if parsed.vote is not None else row.vote
            pipeline = pipeline or row.pipeline
            jobs = [fitted(j, JOB_COLUMNS, job_values(job)) for job in parsed.jobs]
            same_jobs = jobs == [astuple(job) for job in stored_jobs.get(row.id, [])]  # detail too
            if (result, vote, pipeline) == (row.result, row.vote, row.pipeline) and same_jobs:
                chunk.counts.unchanged += 1
                continue
            chunk.counts.changed += 1
            if result != row.result:
                chunk.touched.add(row.ci_system_id)
            updates.append((row.id, (result, vote, pipeline, PARSER_VERSION)))
            if not same_jobs:
                new_jobs[row.id] = jobs
        await update_rows(conn, r, _RUN_UPDATED, updates)
        for part in chunks(sorted(new_jobs), IN_CHUNK):
            await conn.execute(sa.delete(j).where(j.c.run_id.in_(part)))
        job_rows = [(run_id, position, *job) for run_id, jobs in new_jobs.items() for position, job in enumerate(jobs)]
        await insert_rows(conn, j, _JOB_ROW, job_rows)
        return chunk

    return await store.write(work)


async def _reparse_comments(
    store: Store, systems: dict[int, SystemRow], parser: CommentParser, after_id: int
) -> _Chunk:
    """The next chunk of a CI's other stored comments re-read: results become runs, starts and
    unread ones change kind (:meth:`Store.promote_comments`, one transaction)."""
    noted = m.ci_comments_t
    async with store.engine.connect() as conn:
        query = (
            sa.select(noted)
            .where(noted.c.id > after_id, noted.c.ci_system_id.in_(sorted(systems)))
            .order_by(noted.c.id)
            .limit(REPARSE_CHUNK)
        )
        rows = (await conn.execute(query)).all()
    chunk = _Chunk(rows[-1].id if rows else after_id, len(rows))
    promoted = []
    rekinded: list[tuple[int, tuple[Any, ...]]] = []
    for row in rows:
        chunk.counts.comments += 1
        observed = stored_observed(systems[row.ci_system_id], row)
        parsed = parser.parse(observed)
        if parsed.kind == CommentKind.RESULT:
            promoted.append((row.id, observed, parsed))
            chunk.touched.add(row.ci_system_id)
            continue
        kind = m.CommentKindStored.START.value if parsed.kind == CommentKind.START else None
        kind = kind or m.CommentKindStored.UNREAD.value
        if kind != row.kind:
            rekinded.append((row.id, (kind, clip(parsed.why, m.REASON_LEN) or "", PARSER_VERSION)))
    chunk.counts.now_results += len(promoted)
    chunk.counts.comments_changed += len(rekinded)
    if promoted or rekinded:
        await store.promote_comments(promoted, rekinded)
    return chunk
