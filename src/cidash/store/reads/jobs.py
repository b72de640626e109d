"""Per CI system, its jobs: :func:`job_breakdown` (runs, test failures, infra errors and the
latest failure of each job name in a window)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from cidash.domain.results import INFRA_ERRORS, TEST_FAILURES
from cidash.domain.views import JobBreakdown
from cidash.store import schema as m
from cidash.store.reads.systems import SystemRow
from cidash.store.types import to_aware_utc, utc_param


async def job_breakdown(
    conn: AsyncConnection, system: SystemRow, *, since: datetime, until: datetime | None = None
) -> list[JobBreakdown]:
    """Per job name of the CI's runs posted since `since`: runs, test failures, infra errors and
    the latest failure (most failures first)."""
    r, j = m.runs_t, m.jobs_t
    failed = j.c.result.in_(sorted(TEST_FAILURES))
    infra = j.c.result.in_(sorted(INFRA_ERRORS))
    window = [r.c.ci_system_id == system.id, r.c.posted_at >= utc_param(since)]
    if until is not None:
        window.append(r.c.posted_at < utc_param(until))
    query = (
        sa.select(
            j.c.name,
            sa.func.count(),
            sa.func.sum(sa.case((failed, 1), else_=0)),
            sa.func.sum(sa.case((infra, 1), else_=0)),
        )
        .select_from(r.join(j, j.c.run_id == r.c.id))
        .where(*window)
        .group_by(j.c.name)
    )
    totals = [(name, int(n), int(f or 0), int(i or 0)) for name, n, f, i in await conn.execute(query)]
    ranked = (
        sa.select(
            j.c.name.label("name"),
            j.c.url.label("url"),
            r.c.posted_at.label("posted_at"),
            sa.func.row_number()
            .over(partition_by=j.c.name, order_by=(r.c.posted_at.desc(), r.c.id.desc(), j.c.position))
            .label("rn"),
        )
        .select_from(r.join(j, j.c.run_id == r.c.id))
        .where(*window, failed)
        .subquery("f")
    )
    last: dict[str, tuple[datetime, str | None]] = {}
    for name, url, posted_at in await conn.execute(
        sa.select(ranked.c.name, ranked.c.url, ranked.c.posted_at).where(ranked.c.rn == 1)
    ):
        last[name] = (to_aware_utc(posted_at), url)
    out = [
        JobBreakdown(
            name=name,
            runs=n,
            failures=f,
            infra_errors=i,
            failure_rate=f / n if n else 0.0,
            last_failure_at=last[name][0] if name in last else None,
            last_failure_url=last[name][1] if name in last else None,
        )
        for name, n, f, i in totals
    ]
    out.sort(key=lambda b: (-b.failures, -b.failure_rate, b.name))
    return out
