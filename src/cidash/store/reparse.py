"""Re-reading stored comments with the rules in effect (``POST /api/v1/runs/reparse``,
``cidash reparse``), through the :class:`~cidash.store.facade.Store`.

* runs (``ci_runs``): result, vote, pipeline and jobs updated where they read differently; a run
  no longer read as a result is left as it is (counted in ``not_results``);
* a CI's other comments (``ci_comments``): one now read as a result becomes a run (written by
  the Store's writer with the same keys, and removed from ``ci_comments`` in that transaction);
  a start now unread or the reverse gets its new kind and ``why``;
* then the rollups of every CI whose results changed are rebuilt, so health follows.

Each chunk of rows is its own transaction; `progress` hears (done, total) after each chunk.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import astuple, dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from cidash.config import CISystemConfig
from cidash.domain.text import clip
from cidash.parsing import PARSER_VERSION, CommentKind, JobResult
from cidash.store import schema as m
from cidash.store.comment_writer import UNKNOWN_RESULT
from cidash.store.engine import writer_engine
from cidash.store.queries import stored_observed, stored_parser, system_rows
from cidash.store.reader import job_results
from cidash.store.rollups import rebuild_rollups

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
_INT32 = 2**31 - 1
_JOB_COLUMNS = ("name", "url", "result", "duration_s", "voting", "detail")


def _int32(value: int | None) -> int | None:
    return value if value is None or -_INT32 <= value <= _INT32 else None


def _stored_job(job: JobResult) -> tuple[Any, ...]:
    """A parsed job as the writer stores it (clipped to the columns)."""
    return (
        clip(job.name, m.NAME_LEN) or "",
        clip(job.url, m.URL_LEN),
        clip(job.result, m.RESULT_LEN) or UNKNOWN_RESULT,
        _int32(job.duration_s),
        bool(job.voting),
        clip(job.detail, m.DETAIL_LEN),
    )


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
    r, j = m.runs_t, m.jobs_t
    writes = writer_engine(store.engine)
    last_id = 0
    while True:
        async with writes.begin() as conn:
            query = (
                sa.select(
                    r.c.id,
                    r.c.ci_system_id,
                    r.c.project,
                    r.c.branch,
                    r.c.change_number,
                    r.c.patchset_number,
                    r.c.result,
                    r.c.vote,
                    r.c.pipeline,
                    r.c.posted_at,
                    r.c.source,
                    r.c.raw_comment,
                )
                .where(r.c.id > last_id, r.c.ci_system_id.in_(ci_ids))
                .order_by(r.c.id)
                .limit(REPARSE_CHUNK)
            )
            rows = (await conn.execute(query)).all()
            if not rows:
                break
            last_id = rows[-1].id
            stored_jobs = await job_results(conn, [row.id for row in rows])
            for row in rows:
                counts.runs += 1
                parsed_comment = parser.parse(stored_observed(systems[row.ci_system_id], row))
                if parsed_comment.kind != CommentKind.RESULT or parsed_comment.result is None:
                    counts.not_results += 1
                    continue
                result = clip(parsed_comment.result, m.RESULT_LEN) or UNKNOWN_RESULT
                vote = _int32(parsed_comment.vote) if parsed_comment.vote is not None else row.vote
                pipeline = clip(parsed_comment.pipeline, m.PIPELINE_LEN) or row.pipeline
                jobs = [_stored_job(job) for job in parsed_comment.jobs]
                same_jobs = jobs == [astuple(job) for job in stored_jobs.get(row.id, [])]  # detail too
                if (result, vote, pipeline) == (row.result, row.vote, row.pipeline) and same_jobs:
                    counts.unchanged += 1
                    continue
                counts.changed += 1
                if result != row.result:
                    touched.add(row.ci_system_id)
                await conn.execute(
                    sa.update(r)
                    .where(r.c.id == row.id)
                    .values(result=result, vote=vote, pipeline=pipeline, parsed_with=PARSER_VERSION)
                )
                if not same_jobs:
                    await conn.execute(sa.delete(j).where(j.c.run_id == row.id))
                    if jobs:
                        await conn.execute(
                            sa.insert(j),
                            [
                                {"run_id": row.id, "position": position, **dict(zip(_JOB_COLUMNS, job, strict=True))}
                                for position, job in enumerate(jobs)
                            ],
                        )
        done += len(rows)
        if progress is not None:
            progress(done, total)

    noted = m.ci_comments_t
    last_id = 0
    while True:
        async with store.engine.connect() as conn:
            query = (
                sa.select(noted)
                .where(noted.c.id > last_id, noted.c.ci_system_id.in_(ci_ids))
                .order_by(noted.c.id)
                .limit(REPARSE_CHUNK)
            )
            rows = (await conn.execute(query)).all()
        if not rows:
            break
        last_id = rows[-1].id
        promoted = []
        rekinded: list[tuple[int, tuple[Any, ...]]] = []
        for row in rows:
            counts.comments += 1
            observed = stored_observed(systems[row.ci_system_id], row)
            parsed_comment = parser.parse(observed)
            if parsed_comment.kind == CommentKind.RESULT:
                promoted.append((row.id, observed, parsed_comment))
                touched.add(row.ci_system_id)
                continue
            kind = m.CommentKindStored.START.value if parsed_comment.kind == CommentKind.START else None
            kind = kind or m.CommentKindStored.UNREAD.value
            if kind != row.kind:
                rekinded.append((row.id, (kind, clip(parsed_comment.why, m.REASON_LEN) or "", PARSER_VERSION)))
        counts.now_results += len(promoted)
        counts.comments_changed += len(rekinded)
        if promoted or rekinded:
            await store.promote_comments(promoted, rekinded)
        done += len(rows)
        if progress is not None:
            progress(done, total)
    if touched:
        async with writes.begin() as conn:
            await rebuild_rollups(conn, ci_system_ids=sorted(touched))
    return counts
