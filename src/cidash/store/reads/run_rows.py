"""A stored run as the API shows it: the one :class:`~cidash.domain.views.RunOut` builder
(:func:`run_out`), for a row of ``ci_runs`` (the run reads) and for a run just inserted (the
feed's ``run`` message), and :func:`job_results`, a runs' stored jobs in the order they were posted
(the run reads and re-parsing)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from cidash.domain.results import result_class
from cidash.domain.urls import log_url
from cidash.domain.views import JobOut, RunOut
from cidash.parsing import JobResult
from cidash.store import schema as m
from cidash.store.natural_keys import IN_CHUNK, chunks


class RunFields(Protocol):
    """What a run's view is made of: a ``ci_runs`` row or an :class:`~cidash.store.InsertedRun`."""

    @property
    def id(self) -> int: ...
    @property
    def project(self) -> str: ...
    @property
    def branch(self) -> str: ...
    @property
    def change_number(self) -> int: ...
    @property
    def patchset_number(self) -> int: ...
    @property
    def result(self) -> str: ...
    @property
    def vote(self) -> int | None: ...
    @property
    def pipeline(self) -> str | None: ...
    @property
    def posted_at(self) -> datetime: ...
    @property
    def latency_s(self) -> float | None: ...
    @property
    def message_id(self) -> str | None: ...
    @property
    def source(self) -> str: ...


def first_log_url(jobs: Iterable[JobResult]) -> str | None:
    """The run's one-click log link (see :func:`~cidash.domain.urls.log_url`)."""
    return log_url(job.url for job in jobs)


def run_out(run: RunFields, *, server: str, ci: str, jobs: Sequence[JobResult], comment: str | None = None) -> RunOut:
    """The public view of a run of CI `ci` on `server` with its `jobs` (`comment`: the raw text,
    on single-run views only)."""
    return RunOut(
        id=run.id,
        server=server,
        ci=ci,
        project=run.project,
        branch=run.branch,
        change=run.change_number,
        patchset=run.patchset_number,
        result=run.result,
        result_class=result_class(run.result),
        vote=run.vote,
        pipeline=run.pipeline,
        posted_at=run.posted_at,
        latency_s=run.latency_s,
        message_id=run.message_id,
        source=run.source,
        log_url=first_log_url(jobs),
        jobs=[JobOut(name=j.name, url=j.url, result=j.result, duration_s=j.duration_s, voting=j.voting) for j in jobs],
        comment=comment,
    )


async def job_results(conn: AsyncConnection, run_ids: Sequence[int]) -> dict[int, list[JobResult]]:
    """The stored jobs of these runs, by run id, each run's in the order they were posted."""
    table = m.jobs_t
    found: dict[int, list[JobResult]] = {}
    for part in chunks(sorted(set(run_ids)), IN_CHUNK):
        query = (
            sa.select(
                table.c.run_id,
                table.c.name,
                table.c.url,
                table.c.result,
                table.c.duration_s,
                table.c.voting,
                table.c.detail,
            )
            .where(table.c.run_id.in_(part))
            .order_by(table.c.run_id, table.c.position)
        )
        for job in await conn.execute(query):
            found.setdefault(job.run_id, []).append(
                JobResult(job.name, job.url, job.result, job.duration_s, bool(job.voting), job.detail)
            )
    return found
