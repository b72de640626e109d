"""SQL of the alert engine and the alerts API: alerts, webhook deliveries, and the run history
the rules look at. Every function runs on a connection the caller opened (reads) or inside the
caller's transaction (writes)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from cidash.store import models as m
from cidash.store.bulk import IN_CHUNK, chunks
from cidash.store.feed import CLASSIFIED_RESULTS
from cidash.store.models_live import alerts_t, deliveries_t
from cidash.store.rollups import ResultClass, result_class
from cidash.store.text import clip, clip_required
from cidash.views import AlertOut

ERROR_LEN = 1024


@dataclass(frozen=True, slots=True)
class CIRef:
    id: int
    server_id: int
    server: str
    name: str  # account key
    is_reference: bool
    last_seen: datetime | None


@dataclass(frozen=True, slots=True)
class HistoryRun:
    """What the rules need of a stored run."""

    id: int
    posted_at: datetime
    result: str
    cls: ResultClass
    project: str
    change: int
    patchset: int


@dataclass(frozen=True, slots=True)
class PastAlert:
    id: int
    rule: str
    kind: str
    muted: bool
    created_at: datetime
    run_id: int | None
    run_posted_at: datetime | None

    @property
    def at(self) -> datetime:
        """When the condition it reported held: its run's time, else its creation time."""
        return self.run_posted_at or self.created_at


@dataclass(frozen=True, slots=True)
class NewAlert:
    rule: str
    kind: str
    ci_system_id: int
    project: str | None
    severity: str
    message: str
    created_at: datetime
    run_id: int | None
    muted: bool


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    id: int
    alert_id: int
    url: str
    attempt: int
    status_code: int | None
    error: str | None
    ok: bool
    created_at: datetime


def _ci_query() -> sa.Select[Any]:
    ci, accounts, servers = m.ci_systems_t, m.accounts_t, m.servers_t
    return (
        sa.select(ci.c.id, ci.c.server_id, servers.c.name, accounts.c.account_key, ci.c.is_reference, ci.c.last_seen)
        .join(accounts, accounts.c.id == ci.c.account_id)
        .join(servers, servers.c.id == ci.c.server_id)
    )


def _ci_ref(row: Any) -> CIRef:
    return CIRef(int(row[0]), int(row[1]), row[2], row[3], bool(row[4]), row[5])


async def ci_refs(conn: AsyncConnection, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], CIRef]:
    """CI systems by (server name, account key)."""
    wanted = set(keys)
    if not wanted:
        return {}
    names = sorted({name for _, name in wanted})
    found: dict[tuple[str, str], CIRef] = {}
    for part in chunks(names, IN_CHUNK):
        for row in await conn.execute(_ci_query().where(m.accounts_t.c.account_key.in_(part))):
            ref = _ci_ref(row)
            if (ref.server, ref.name) in wanted:
                found[(ref.server, ref.name)] = ref
    return found


async def all_ci_refs(conn: AsyncConnection, servers: Sequence[str] | None = None) -> list[CIRef]:
    query = _ci_query()
    if servers is not None:
        query = query.where(m.servers_t.c.name.in_(list(servers)))
    return [_ci_ref(row) for row in await conn.execute(query.order_by(m.ci_systems_t.c.id))]


async def ci_ref_by_id(conn: AsyncConnection, ci_system_id: int) -> CIRef | None:
    row = (await conn.execute(_ci_query().where(m.ci_systems_t.c.id == ci_system_id))).first()
    return _ci_ref(row) if row is not None else None


async def reference_ids(conn: AsyncConnection) -> dict[int, list[int]]:
    """Reference CI system ids by server id."""
    table = m.ci_systems_t
    found: dict[int, list[int]] = {}
    for ci_id, server_id in await conn.execute(
        sa.select(table.c.id, table.c.server_id).where(table.c.is_reference.is_(True))
    ):
        found.setdefault(int(server_id), []).append(int(ci_id))
    return found


# -- run history ---------------------------------------------------------------------------------

_RUN_COLUMNS = (
    m.runs_t.c.id,
    m.runs_t.c.posted_at,
    m.runs_t.c.result,
    m.runs_t.c.project,
    m.runs_t.c.change_number,
    m.runs_t.c.patchset_number,
)


def _history(row: Any) -> HistoryRun:
    return HistoryRun(int(row[0]), row[1], row[2], result_class(row[2]), row[3], int(row[4]), int(row[5]))


def _scoped(query: sa.Select[Any], projects: Sequence[str] | None) -> sa.Select[Any]:
    return query.where(m.runs_t.c.project.in_(list(projects))) if projects else query


async def runs_between(conn: AsyncConnection, ci_system_id: int, lower: datetime, upper: datetime) -> list[HistoryRun]:
    """The CI's runs with ``lower <= posted_at <= upper``, oldest first."""
    runs = m.runs_t
    query = (
        sa.select(*_RUN_COLUMNS)
        .where(runs.c.ci_system_id == ci_system_id, runs.c.posted_at >= lower, runs.c.posted_at <= upper)
        .order_by(runs.c.posted_at, runs.c.id)
    )
    return [_history(row) for row in await conn.execute(query)]


async def runs_before(
    conn: AsyncConnection, ci_system_id: int, before: datetime, limit: int, projects: Sequence[str] | None = None
) -> list[HistoryRun]:
    """The CI's last `limit` runs posted before `before` (in `projects` when given) whose result is
    not of class "other" (those neither extend nor end a streak), oldest first."""
    runs = m.runs_t
    query = sa.select(*_RUN_COLUMNS).where(
        runs.c.ci_system_id == ci_system_id,
        runs.c.posted_at < before,
        runs.c.result.in_(sorted(CLASSIFIED_RESULTS)),
    )
    query = _scoped(query, projects).order_by(runs.c.posted_at.desc(), runs.c.id.desc()).limit(limit)
    return [_history(row) for row in reversed((await conn.execute(query)).all())]


async def success_between(
    conn: AsyncConnection, ci_system_id: int, after: datetime, before: datetime, projects: Sequence[str] | None
) -> bool:
    """Whether the CI posted a success with ``after < posted_at < before``."""
    runs = m.runs_t
    query = sa.select(runs.c.id).where(
        runs.c.ci_system_id == ci_system_id,
        runs.c.posted_at > after,
        runs.c.posted_at < before,
        runs.c.result == "SUCCESS",
    )
    return (await conn.execute(_scoped(query, projects).limit(1))).first() is not None


async def reference_results(
    conn: AsyncConnection, reference_ids: Sequence[int], patchsets: Iterable[tuple[int, int, int]], since: datetime
) -> dict[tuple[int, int, int], str]:
    """The newest result of a reference CI on each (server id, change, patch set), among its runs
    posted after `since`."""
    wanted = set(patchsets)
    if not wanted or not reference_ids:
        return {}
    runs = m.runs_t
    newest: dict[tuple[int, int, int], tuple[datetime, int, str]] = {}
    changes = sorted({change for _, change, _ in wanted})
    for part in chunks(changes, IN_CHUNK):
        query = sa.select(
            runs.c.server_id, runs.c.change_number, runs.c.patchset_number, runs.c.posted_at, runs.c.id, runs.c.result
        ).where(
            runs.c.ci_system_id.in_(list(reference_ids)),
            runs.c.posted_at >= since,
            runs.c.change_number.in_(part),
        )
        for server_id, change, patchset, posted_at, run_id, result in await conn.execute(query):
            key = (int(server_id), int(change), int(patchset))
            if key in wanted and (key not in newest or (posted_at, run_id) > newest[key][:2]):
                newest[key] = (posted_at, int(run_id), result)
    return {key: value[2] for key, value in newest.items()}


@dataclass(frozen=True, slots=True)
class PatchsetRun:
    ci_system_id: int
    run: HistoryRun


async def runs_on_patchsets(
    conn: AsyncConnection, server_id: int, patchsets: Iterable[tuple[str, int, int]], since: datetime
) -> list[PatchsetRun]:
    """Every CI's runs on the given (project, change, patch set) of a server posted after `since`."""
    runs = m.runs_t
    found: list[PatchsetRun] = []
    by_project: dict[str, set[tuple[int, int]]] = {}
    for project, change, patchset in patchsets:
        by_project.setdefault(project, set()).add((change, patchset))
    for project, keys in by_project.items():
        changes = sorted({change for change, _ in keys})
        for part in chunks(changes, IN_CHUNK):
            query = sa.select(runs.c.ci_system_id, *_RUN_COLUMNS).where(
                runs.c.project == project,
                runs.c.posted_at >= since,
                runs.c.server_id == server_id,
                runs.c.change_number.in_(part),
            )
            for row in await conn.execute(query):
                run = _history(row[1:])
                if (run.change, run.patchset) in keys:
                    found.append(PatchsetRun(int(row[0]), run))
    return found


async def projects_of(conn: AsyncConnection, ci_system_id: int, since: datetime) -> list[str]:
    runs = m.runs_t
    query = (
        sa.select(runs.c.project)
        .where(runs.c.ci_system_id == ci_system_id, runs.c.posted_at >= since)
        .group_by(runs.c.project)
    )
    return sorted(row[0] for row in await conn.execute(query))


async def waiting_patchsets(
    conn: AsyncConnection,
    server_id: int,
    projects: Sequence[str],
    ci_system_id: int,
    after: datetime,
    cut: datetime,
    limit: int = 100,
) -> int:
    """How many patch sets of `projects` created in ``(after, cut]`` other CIs commented on (the
    evidence that patch sets kept arriving while a CI stayed silent), up to `limit`."""
    if not projects or cut <= after:
        return 0
    runs, patchsets = m.runs_t, m.patchsets_t
    query = (
        sa.select(runs.c.patchset_id)
        .join(patchsets, patchsets.c.id == runs.c.patchset_id)
        .where(
            runs.c.project.in_(list(projects)),
            runs.c.posted_at > after,
            runs.c.server_id == server_id,
            runs.c.ci_system_id != ci_system_id,
            patchsets.c.created_at > after,
            patchsets.c.created_at <= cut,
        )
        .distinct()
        .limit(limit)
    )
    return len((await conn.execute(query)).all())


# -- alerts -----------------------------------------------------------------------------------------


def _past_alerts() -> sa.Select[Any]:
    """The columns of :func:`_past`: alerts with the posted time of the run that fired them."""
    alerts, runs = alerts_t, m.runs_t
    columns = (alerts.c.id, alerts.c.rule, alerts.c.kind, alerts.c.muted, alerts.c.created_at, alerts.c.run_id)
    return sa.select(*columns, runs.c.posted_at).outerjoin(runs, runs.c.id == alerts.c.run_id)


def _past(row: Any) -> PastAlert:
    return PastAlert(int(row[0]), row[1], row[2], bool(row[3]), row[4], row[5], row[6])


async def latest_alerts(conn: AsyncConnection, ci_system_ids: Sequence[int]) -> dict[int, dict[str, PastAlert]]:
    """The newest alert of every rule for each CI system: ci id -> rule -> alert."""
    found: dict[int, dict[str, PastAlert]] = {}
    alerts = alerts_t
    for part in chunks(sorted(set(ci_system_ids)), IN_CHUNK):
        newest = (
            sa.select(sa.func.max(alerts.c.id))
            .where(alerts.c.ci_system_id.in_(part))
            .group_by(alerts.c.ci_system_id, alerts.c.rule)
        )
        query = _past_alerts().add_columns(alerts.c.ci_system_id).where(alerts.c.id.in_(newest))
        for row in await conn.execute(query):
            found.setdefault(int(row[7]), {})[row[1]] = _past(row)
    return found


async def latest_alert_of_kinds(conn: AsyncConnection, ci_system_id: int, kinds: Sequence[str]) -> PastAlert | None:
    alerts = alerts_t
    query = (
        _past_alerts()
        .where(alerts.c.ci_system_id == ci_system_id, alerts.c.kind.in_(list(kinds)))
        .order_by(alerts.c.id.desc())
        .limit(1)
    )
    row = (await conn.execute(query)).first()
    return _past(row) if row is not None else None


async def alerted_runs(
    conn: AsyncConnection, ci_system_id: int, run_ids: Sequence[int], since: datetime
) -> set[tuple[str, int]]:
    """(rule, run id) of the CI's alerts created after `since` about any of `run_ids`."""
    found: set[tuple[str, int]] = set()
    alerts = alerts_t
    for part in chunks(sorted(set(run_ids)), IN_CHUNK):
        query = sa.select(alerts.c.rule, alerts.c.run_id).where(
            alerts.c.ci_system_id == ci_system_id, alerts.c.created_at >= since, alerts.c.run_id.in_(part)
        )
        found.update((rule, int(run_id)) for rule, run_id in await conn.execute(query))
    return found


async def insert_alert(conn: AsyncConnection, alert: NewAlert) -> int:
    result = await conn.execute(
        sa.insert(alerts_t).values(
            rule=clip_required(alert.rule, 128, "rule"),
            kind=alert.kind,
            ci_system_id=alert.ci_system_id,
            project=clip(alert.project, m.NAME_LEN),
            severity=alert.severity,
            message=alert.message,
            created_at=alert.created_at,
            run_id=alert.run_id,
            muted=alert.muted,
        )
    )
    key = result.inserted_primary_key
    if key is None or key[0] is None:  # pragma: no cover - both engines report it
        raise RuntimeError("the database did not report the new alert's id")
    return int(key[0])


async def set_feed_ids(conn: AsyncConnection, pairs: Sequence[tuple[int, int]]) -> None:
    for alert_id, feed_id in pairs:
        await conn.execute(sa.update(alerts_t).where(alerts_t.c.id == alert_id).values(feed_id=feed_id))


async def set_muted(conn: AsyncConnection, alert_id: int, muted: bool) -> bool:
    result = await conn.execute(sa.update(alerts_t).where(alerts_t.c.id == alert_id).values(muted=muted))
    return (result.rowcount or 0) > 0


def _alert_query() -> sa.Select[Any]:
    alerts, ci, accounts, servers = alerts_t, m.ci_systems_t, m.accounts_t, m.servers_t
    return (
        sa.select(
            alerts.c.id,
            alerts.c.rule,
            alerts.c.kind,
            accounts.c.account_key,
            servers.c.name,
            alerts.c.project,
            alerts.c.severity,
            alerts.c.message,
            alerts.c.created_at,
            alerts.c.run_id,
            alerts.c.muted,
        )
        .join(ci, ci.c.id == alerts.c.ci_system_id)
        .join(accounts, accounts.c.id == ci.c.account_id)
        .join(servers, servers.c.id == ci.c.server_id)
    )


def _alert_out(row: Any) -> AlertOut:
    return AlertOut(
        id=row[0],
        rule=row[1],
        kind=row[2],
        ci=row[3],
        server=row[4],
        project=row[5],
        severity=row[6],
        message=row[7],
        created_at=row[8],
        run_id=row[9],
        muted=bool(row[10]),
    )


async def get_alert(conn: AsyncConnection, alert_id: int) -> AlertOut | None:
    row = (await conn.execute(_alert_query().where(alerts_t.c.id == alert_id))).first()
    return _alert_out(row) if row is not None else None


async def list_alerts(
    conn: AsyncConnection,
    *,
    ci: Sequence[str] = (),
    kinds: Sequence[str] = (),
    start: datetime | None = None,
    end: datetime | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[AlertOut]:
    """Newest first; `before_id` pages (``id < before_id``); times filter ``created_at`` (end exclusive)."""
    alerts = alerts_t
    query = _alert_query()
    if ci:
        query = query.where(m.accounts_t.c.account_key.in_(list(ci)))
    if kinds:
        query = query.where(alerts.c.kind.in_(list(kinds)))
    if start is not None:
        query = query.where(alerts.c.created_at >= start)
    if end is not None:
        query = query.where(alerts.c.created_at < end)
    if before_id is not None:
        query = query.where(alerts.c.id < before_id)
    query = query.order_by(alerts.c.id.desc()).limit(limit)
    return [_alert_out(row) for row in await conn.execute(query)]


# -- webhook deliveries -------------------------------------------------------------------------------


async def record_delivery(
    conn: AsyncConnection,
    *,
    alert_id: int,
    url: str,
    attempt: int,
    status_code: int | None,
    error: str | None,
    ok: bool,
    created_at: datetime,
) -> None:
    await conn.execute(
        sa.insert(deliveries_t).values(
            alert_id=alert_id,
            url=clip_required(url, m.URL_LEN, "?"),
            attempt=attempt,
            status_code=status_code,
            error=clip(error, ERROR_LEN),
            ok=ok,
            created_at=created_at,
        )
    )


async def deliveries(conn: AsyncConnection, alert_id: int | None = None) -> list[DeliveryRow]:
    table = deliveries_t
    query = sa.select(
        table.c.id,
        table.c.alert_id,
        table.c.url,
        table.c.attempt,
        table.c.status_code,
        table.c.error,
        table.c.ok,
        table.c.created_at,
    ).order_by(table.c.id)
    if alert_id is not None:
        query = query.where(table.c.alert_id == alert_id)
    return [
        DeliveryRow(int(r[0]), int(r[1]), r[2], int(r[3]), r[4], r[5], bool(r[6]), r[7])
        for r in await conn.execute(query)
    ]
