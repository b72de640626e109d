"""Which CI each stored human recheck comment was aimed at (the recheck burden).

A CI-specific recheck (``recheck-acme``, ``acme: recheck``) is aimed at the CI it names: its
account key, or that key without a ``-ci`` suffix (:func:`cidash.parsing.rechecks.names_of`), on the same
server. A plain ``recheck`` is aimed at every CI whose latest result on that patch set before the
comment was a failure (a test failure or an infra error); one before any failure is aimed at
nobody. Attribution is done here, when reading, because a CI's result may be stored after the
recheck that answered it (a backfill bringing what the stream missed).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from cidash.domain.results import FAILED_CLASSES, result_class
from cidash.parsing.rechecks import names_of
from cidash.store import schema as m
from cidash.store.reads.health import posted_in


@dataclass(frozen=True, slots=True)
class Attribution:
    recheck_id: int
    ci_system_id: int
    posted_at: datetime
    plain: bool  # a plain recheck attributed through the CI's failure; False: the CI was named


async def attribute(
    conn: AsyncConnection,
    start: datetime,
    end: datetime,
    ci_ids: Sequence[int],
    *,
    project: str | None = None,
    projects: Sequence[str] | None = None,
) -> list[Attribution]:
    """The rechecks posted in [start, end] aimed at each of `ci_ids` (module docstring)."""
    if not ci_ids:
        return []
    wanted = set(ci_ids)
    rc, r, later = m.rechecks_t, m.runs_t, m.runs_t.alias("later")
    window = posted_in(rc, start, end, project, projects)
    found: list[Attribution] = []

    systems, accounts = m.ci_systems_t, m.accounts_t
    by_name: dict[tuple[int, str], list[int]] = {}
    query = (
        sa.select(systems.c.id, systems.c.server_id, accounts.c.account_key)
        .join(accounts, accounts.c.id == systems.c.account_id)
        .where(systems.c.id.in_(sorted(wanted)))
    )
    for ci_id, server_id, key in await conn.execute(query):
        for name in names_of(key):
            by_name.setdefault((server_id, name), []).append(ci_id)
    aimed = sa.select(rc.c.id, rc.c.server_id, rc.c.aimed_at, rc.c.posted_at).where(rc.c.aimed_at.is_not(None), *window)
    for recheck_id, server_id, aimed_at, posted_at in await conn.execute(aimed):
        for ci_id in by_name.get((server_id, aimed_at.lower()), ()):
            found.append(Attribution(recheck_id, ci_id, posted_at, plain=False))

    # each CI's latest run on the patch set before the plain recheck: no run of it in between
    newer_before = (
        sa.select(sa.literal(1))
        .where(
            later.c.patchset_id == r.c.patchset_id,
            later.c.ci_system_id == r.c.ci_system_id,
            later.c.posted_at > r.c.posted_at,
            later.c.posted_at < rc.c.posted_at,
        )
        .exists()
    )
    plain = (
        sa.select(rc.c.id, r.c.ci_system_id, r.c.result, rc.c.posted_at)
        .join(r, sa.and_(r.c.patchset_id == rc.c.patchset_id, r.c.posted_at < rc.c.posted_at))
        .where(rc.c.aimed_at.is_(None), r.c.ci_system_id.in_(sorted(wanted)), ~newer_before, *window)
    )
    for recheck_id, ci_id, result, posted_at in await conn.execute(plain):
        if result_class(result) in FAILED_CLASSES:
            found.append(Attribution(recheck_id, ci_id, posted_at, plain=True))
    # two runs of one CI at the same instant would attribute a plain recheck twice
    return list({(item.recheck_id, item.ci_system_id): item for item in found}.values())


async def recheck_counts(
    conn: AsyncConnection,
    start: datetime,
    end: datetime,
    ci_ids: Sequence[int],
    *,
    project: str | None = None,
    projects: Sequence[str] | None = None,
) -> Counter[int]:
    """How many recheck comments posted in [start, end] were aimed at each CI."""
    found = await attribute(conn, start, end, ci_ids, project=project, projects=projects)
    return Counter(item.ci_system_id for item in found)


@dataclass(frozen=True, slots=True)
class RecheckCase:
    """One recheck comment aimed at a CI, as the cases list shows it."""

    id: int
    posted_at: datetime
    author: str
    project: str
    branch: str
    change_number: int
    patchset_number: int
    text: str
    aimed: Literal["named", "plain"]  # "named" (a CI-specific form) or "plain" (after its failure)


async def recheck_cases(
    conn: AsyncConnection,
    ci_id: int,
    start: datetime,
    end: datetime,
    *,
    project: str | None = None,
    limit: int = 100,
) -> tuple[int, list[RecheckCase]]:
    """The count and the newest `limit` rechecks in [start, end] aimed at one CI."""
    attributed = await attribute(conn, start, end, [ci_id], project=project)
    if not attributed:
        return 0, []
    found = {item.recheck_id: item.plain for item in attributed}
    rc, accounts = m.rechecks_t, m.accounts_t
    attributed.sort(key=lambda item: (item.posted_at, item.recheck_id), reverse=True)
    newest = [item.recheck_id for item in attributed[:limit]]
    query = (
        sa.select(
            rc.c.id,
            rc.c.posted_at,
            sa.func.coalesce(accounts.c.name, accounts.c.username, accounts.c.account_key),
            rc.c.project,
            rc.c.branch,
            rc.c.change_number,
            rc.c.patchset_number,
            rc.c.text,
        )
        .join(accounts, accounts.c.id == rc.c.author_id)
        .where(rc.c.id.in_(newest))
        .order_by(rc.c.posted_at.desc(), rc.c.id.desc())
    )
    cases = [
        RecheckCase(row_id, posted_at, author, project_name, branch, change, patchset, text, _how(found[row_id]))
        for row_id, posted_at, author, project_name, branch, change, patchset, text in await conn.execute(query)
    ]
    return len(found), cases


def _how(plain: bool) -> Literal["named", "plain"]:
    return "plain" if plain else "named"
