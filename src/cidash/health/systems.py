"""The health of CI systems as the API shows it: the overview, one system's page, its badge and
the patch sets behind its vote quality. Rows from :mod:`cidash.store.reads`, judged by
:func:`cidash.health.assess`, out as :mod:`cidash.domain.views` models.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncConnection

from cidash.config import CISystemConfig
from cidash.domain import health
from cidash.domain.health import Assessment, SystemRef
from cidash.domain.views import (
    CommentCountsOut,
    Grid,
    HealthWindow,
    SystemDetail,
    SystemSummary,
    UnreadCommentOut,
    Window,
)
from cidash.health.assess import assess
from cidash.health.cache import HealthCache
from cidash.store import reads

UNREAD_SHOWN = 10  # latest unread comments on a system's page


def _summary_fields(
    system: reads.systems.SystemRow, assessment: Assessment, window: HealthWindow, sparkline: list[float | None]
) -> dict[str, Any]:
    return {
        "id": system.id,
        "name": system.name,
        "server": system.server,
        "display_name": system.display_name,
        "owner": system.owner,
        "is_reference": system.is_reference,
        "confirmed": system.confirmed,
        "source": system.source,
        "projects": assessment.projects,
        "state": assessment.state,
        "state_reason": assessment.reason,
        "last_seen": system.last_seen,
        "health": window,
        "sparkline": sparkline,
    }


def _references(systems: Sequence[reads.systems.SystemRow]) -> list[SystemRef]:
    return [s.ref() for s in systems if s.is_reference]


async def systems_summary(
    conn: AsyncConnection,
    configs: Sequence[CISystemConfig] = (),
    *,
    window: Window = "24h",
    project: str | None = None,
    now: datetime | None = None,
    cache: HealthCache | None = None,
    q: str | None = None,
) -> list[SystemSummary]:
    """Every CI system (with `project`: those following it; with `q`: those it finds, see
    :func:`~cidash.store.reads.systems.matches_search`), its health in `window` and its state. `now`
    pins the clock (tests)."""
    systems = await reads.systems.system_rows(conn)
    refs = [s.ref(reads.systems.config_entry(configs, s)) for s in systems]
    assessed = await assess(
        conn,
        refs,
        [window],
        project=project,
        now=now,
        cache=cache,
        references=_references(systems),
        sparkline=window,
    )
    out = []
    for system in systems:
        assessment = assessed[system.id]
        if project is not None and project not in assessment.projects:
            continue
        if not reads.systems.matches_search(system, q):
            continue
        fields = _summary_fields(system, assessment, assessment.windows[window], assessment.sparkline)
        out.append(SystemSummary(**fields))
    return out


async def systems_summary_one(
    conn: AsyncConnection,
    system: reads.systems.SystemRow,
    configs: Sequence[CISystemConfig] = (),
    *,
    window: Window = "24h",
    now: datetime | None = None,
    cache: HealthCache | None = None,
) -> SystemSummary:
    """The summary of one CI system (badges): reads only its own projects' runs."""
    detail = await system_detail(conn, system, configs, now=now, cache=cache, windows=(window,))
    return SystemSummary(**detail.model_dump(exclude={"windows"}))


async def system_detail(
    conn: AsyncConnection,
    system: reads.systems.SystemRow,
    configs: Sequence[CISystemConfig] = (),
    *,
    now: datetime | None = None,
    cache: HealthCache | None = None,
    windows: Sequence[Window] | None = None,
) -> SystemDetail:
    """One CI system with every window (or `windows`); `health` and the sparkline are the 24 h ones."""
    windows = health.WINDOWS if windows is None else windows
    references = [s.ref() for s in await reads.systems.system_rows(conn, server=system.server) if s.is_reference]
    assessed = await assess(
        conn,
        [system.ref(reads.systems.config_entry(configs, system))],
        list(dict.fromkeys([*windows, "24h"])),
        now=now,
        cache=cache,
        references=references,
        sparkline="24h",
    )
    assessment = assessed[system.id]
    fields = _summary_fields(system, assessment, assessment.windows["24h"], assessment.sparkline)
    shown = [w for w in health.WINDOWS if w in assessment.windows]
    moment = now or datetime.now(UTC)
    comments = []
    for window in shown:
        counts = await reads.comments.comment_counts(
            conn, since=moment - health.WINDOW_SPANS[window], until=moment, ci_system_ids=[system.id]
        )
        counted = counts.get(system.id, reads.comments.CommentCounts())
        comments.append(
            CommentCountsOut(
                window=window,
                results=counted.results,
                starts=counted.starts,
                unread=counted.unread,
                unread_share=counted.unread_share,
            )
        )
    unread = [
        UnreadCommentOut(
            id=row.id,
            project=row.project,
            change=row.change_number,
            patchset=row.patchset_number,
            posted_at=row.posted_at,
            vote=row.vote,
            text=row.text,
            why=row.why,
            parsed_with=row.parsed_with,
        )
        for row in await reads.comments.unread_comments(conn, system.id, limit=UNREAD_SHOWN)
    ]
    return SystemDetail(**fields, windows=[assessment.windows[w] for w in shown], comments=comments, unread=unread)


CaseKind = Literal["false_negative", "false_positive"]


async def vote_cases(
    conn: AsyncConnection,
    system: reads.systems.SystemRow,
    configs: Sequence[CISystemConfig] = (),
    *,
    kind: CaseKind,
    window: Window = "7d",
    now: datetime | None = None,
    cache: HealthCache | None = None,
) -> Grid:
    """The patch sets behind a vote-quality number (`false_negative`: its -1 where the reference
    passed and the change merged; `false_positive`: its +1 where the reference failed), newest
    first, each with every CI's newest result (the first :data:`health.CASES_KEPT`)."""
    references = [s.ref() for s in await reads.systems.system_rows(conn, server=system.server) if s.is_reference]
    assessed = await assess(
        conn,
        [system.ref(reads.systems.config_entry(configs, system))],
        [window],
        now=now,
        cache=cache,
        references=references,
    )
    metrics = assessed[system.id].metrics.get(window)
    if metrics is None:
        return Grid(project=None, systems=[], rows=[])
    ids = metrics.false_negative_cases if kind == "false_negative" else metrics.false_positive_cases
    return await reads.grid.patchsets_grid(conn, ids)
