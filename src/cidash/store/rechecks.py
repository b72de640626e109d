"""Which CI each stored human recheck comment was aimed at (the recheck burden).

A CI-specific recheck (``recheck-acme``, ``acme: recheck``) is aimed at the CI it names: its
account key, or that key without a ``-ci`` suffix (:func:`cidash.parsing.rechecks.names_of`), on the same
server, whatever its results. A plain ``recheck`` is aimed at a CI whose latest result on that patch
set before the comment was a failure (a test failure or an infra error) only when that failure was
the CI's and not the change's: judged as the incidents judge a failure
(:func:`cidash.domain.judgement.judge_on_patchset`, over every CI's newest result on the patch set),
it is counted (``fail``), not inhibited (the reference CI, or most others, failed too) nor pending
(nobody else has reported there yet). So a plain recheck after a change broke every CI is aimed at
none of them, and one before any failure at nobody. Attribution is done here, when reading,
because a CI's result may be stored after the recheck that answered it (a backfill bringing what
the stream missed).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from cidash.domain.judgement import judge_on_patchset
from cidash.domain.results import FAILED_CLASSES, result_class
from cidash.parsing.rechecks import names_of
from cidash.store import schema as m
from cidash.store.alerts_store import patchset_results, reference_ids
from cidash.store.reads.health import posted_in


@dataclass(frozen=True, slots=True)
class Attribution:
    recheck_id: int
    ci_system_id: int
    posted_at: datetime
    plain: bool  # a plain recheck attributed through the CI's own failure; False: the CI was named


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
    wanted = sorted(set(ci_ids))
    window = posted_in(m.rechecks_t, start, end, project, projects)
    found = await _named(conn, wanted, window) + await _plain(conn, wanted, window)
    # two runs of one CI at the same instant would attribute a plain recheck twice
    return list({(item.recheck_id, item.ci_system_id): item for item in found}.values())


async def _named(conn: AsyncConnection, ci_ids: list[int], window: list[sa.ColumnElement[bool]]) -> list[Attribution]:
    """The CI-specific rechecks in the window, each aimed at the CI it names."""
    rc, systems, accounts = m.rechecks_t, m.ci_systems_t, m.accounts_t
    by_name: dict[tuple[int, str], list[int]] = {}
    query = (
        sa.select(systems.c.id, systems.c.server_id, accounts.c.account_key)
        .join(accounts, accounts.c.id == systems.c.account_id)
        .where(systems.c.id.in_(ci_ids))
    )
    for ci_id, server_id, key in await conn.execute(query):
        for name in names_of(key):
            by_name.setdefault((server_id, name), []).append(ci_id)
    aimed = sa.select(rc.c.id, rc.c.server_id, rc.c.aimed_at, rc.c.posted_at).where(rc.c.aimed_at.is_not(None), *window)
    return [
        Attribution(recheck_id, ci_id, posted_at, plain=False)
        for recheck_id, server_id, aimed_at, posted_at in await conn.execute(aimed)
        for ci_id in by_name.get((server_id, aimed_at.lower()), ())
    ]


async def _plain(conn: AsyncConnection, ci_ids: list[int], window: list[sa.ColumnElement[bool]]) -> list[Attribution]:
    """The plain rechecks in the window, each aimed at the CIs whose latest result before it was a
    failure of their own (module docstring)."""
    rc, r, later = m.rechecks_t, m.runs_t, m.runs_t.alias("later")
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
    latest = (
        sa.select(rc.c.id, rc.c.server_id, rc.c.patchset_id, r.c.ci_system_id, r.c.result, rc.c.posted_at)
        .join(r, sa.and_(r.c.patchset_id == rc.c.patchset_id, r.c.posted_at < rc.c.posted_at))
        .where(rc.c.aimed_at.is_(None), r.c.ci_system_id.in_(ci_ids), ~newer_before, *window)
    )
    failed = [row for row in await conn.execute(latest) if result_class(row[4]) in FAILED_CLASSES]
    if not failed:
        return []
    on_patchset = await patchset_results(conn, {patchset_id for _, _, patchset_id, _, _, _ in failed})
    references = await reference_ids(conn)
    found = []
    for recheck_id, server_id, patchset_id, ci_id, result, posted_at in failed:
        results = [(other.ci_system_id, other.result) for other in on_patchset.get(patchset_id, ())]
        verdict, _ = judge_on_patchset(result_class(result), ci_id, results, references.get(server_id, ()))
        if verdict == "fail":
            found.append(Attribution(recheck_id, ci_id, posted_at, plain=True))
    return found


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
    aimed: Literal["named", "plain"]  # "named" (a CI-specific form) or "plain" (after its own failure)


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
