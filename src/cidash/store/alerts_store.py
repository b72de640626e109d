"""SQL of the alert engine and the alerts API: incidents (their runs, notes, notifications),
maintenance windows, webhook deliveries, and the run history the rules look at. Every function
runs on a connection the caller opened (reads) or inside the caller's transaction (writes)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from cidash.config import AlertKind
from cidash.domain.results import ResultClass, result_class
from cidash.domain.text import clip, clip_required
from cidash.domain.views import AlertOut, IncidentNoteOut, IncidentOut, MaintenanceOut
from cidash.store import schema as m
from cidash.store.natural_keys import IN_CHUNK, chunks
from cidash.store.schema import (
    alerts_t,
    deliveries_t,
    incident_notes_t,
    incident_runs_t,
    incidents_t,
    maintenance_t,
)
from cidash.store.types import to_aware_utc

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
    patchset_id: int


@dataclass(frozen=True, slots=True)
class NewAlert:
    """The notification of one incident edge."""

    rule: str
    kind: AlertKind
    ci_system_id: int
    project: str | None
    severity: str
    message: str
    created_at: datetime
    run_id: int | None
    muted: bool
    incident_id: int
    edge: str
    quiet: str | None


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
    m.runs_t.c.patchset_id,
)


def _history(row: Any) -> HistoryRun:
    return HistoryRun(int(row[0]), row[1], row[2], result_class(row[2]), row[3], int(row[4]), int(row[5]), int(row[6]))


async def runs_between(conn: AsyncConnection, ci_system_id: int, lower: datetime, upper: datetime) -> list[HistoryRun]:
    """The CI's runs with ``lower <= posted_at <= upper``, oldest first."""
    runs = m.runs_t
    query = (
        sa.select(*_RUN_COLUMNS)
        .where(runs.c.ci_system_id == ci_system_id, runs.c.posted_at >= lower, runs.c.posted_at <= upper)
        .order_by(runs.c.posted_at, runs.c.id)
    )
    return [_history(row) for row in await conn.execute(query)]


async def runs_by_id(conn: AsyncConnection, run_ids: Sequence[int]) -> dict[int, tuple[int, HistoryRun]]:
    """run id -> (CI system id, run)."""
    runs = m.runs_t
    found: dict[int, tuple[int, HistoryRun]] = {}
    for part in chunks(sorted(set(run_ids)), IN_CHUNK):
        for row in await conn.execute(sa.select(runs.c.ci_system_id, *_RUN_COLUMNS).where(runs.c.id.in_(part))):
            found[int(row[1])] = (int(row[0]), _history(row[1:]))
    return found


@dataclass(frozen=True, slots=True)
class PatchsetResult:
    ci_system_id: int
    posted_at: datetime
    run_id: int
    result: str


async def patchset_results(conn: AsyncConnection, patchset_ids: Iterable[int]) -> dict[int, list[PatchsetResult]]:
    """Every CI's runs on each patch set, oldest first."""
    runs = m.runs_t
    found: dict[int, list[PatchsetResult]] = {}
    for part in chunks(sorted(set(patchset_ids)), IN_CHUNK):
        query = sa.select(runs.c.patchset_id, runs.c.ci_system_id, runs.c.posted_at, runs.c.id, runs.c.result).where(
            runs.c.patchset_id.in_(part)
        )
        for patchset_id, ci_id, posted_at, run_id, result in await conn.execute(query):
            found.setdefault(int(patchset_id), []).append(PatchsetResult(int(ci_id), posted_at, int(run_id), result))
    for results in found.values():
        results.sort(key=lambda r: (r.posted_at, r.run_id))
    return found


async def projects_of(conn: AsyncConnection, ci_system_id: int, since: datetime) -> list[str]:
    runs = m.runs_t
    query = (
        sa.select(runs.c.project)
        .where(runs.c.ci_system_id == ci_system_id, runs.c.posted_at >= since)
        .group_by(runs.c.project)
    )
    return sorted(row[0] for row in await conn.execute(query))


async def first_waiting(
    conn: AsyncConnection, server_id: int, projects: Sequence[str], ci_system_id: int, after: datetime
) -> datetime | None:
    """The creation time of the first patch set of `projects` created after `after` that other CIs
    commented on (the evidence that patch sets kept arriving while a CI stayed silent)."""
    if not projects:
        return None
    runs, patchsets = m.runs_t, m.patchsets_t
    query = (
        sa.select(sa.func.min(patchsets.c.created_at))
        .select_from(runs.join(patchsets, patchsets.c.id == runs.c.patchset_id))
        .where(
            runs.c.project.in_(list(projects)),
            runs.c.posted_at > after,
            runs.c.server_id == server_id,
            runs.c.ci_system_id != ci_system_id,
            patchsets.c.created_at > after,
        )
    )
    value = (await conn.execute(query)).scalar()
    return to_aware_utc(value) if value is not None else None


# -- incidents --------------------------------------------------------------------------------------

_INCIDENT_FIELDS = (
    "rule kind scope state severity started_at fired_at resolved_at last_run_at summary failed passed "
    "inhibited quiet acked_by acked_at ack_note silenced_until silenced_until_resolved silenced_by "
    "silence_reason updated_at"
).split()


@dataclass(slots=True)
class StoredIncident:
    id: int
    ci_system_id: int
    rule: str
    kind: str
    scope: str
    state: str
    severity: str
    started_at: datetime
    fired_at: datetime
    resolved_at: datetime | None
    summary: str
    quiet: str | None
    silenced_until: datetime | None
    silenced_until_resolved: bool


def _stored(row: Any) -> StoredIncident:
    t = incidents_t.c
    return StoredIncident(
        row[t.id], row[t.ci_system_id], row[t.rule], row[t.kind], row[t.scope], row[t.state], row[t.severity],
        to_aware_utc(row[t.started_at]), to_aware_utc(row[t.fired_at]),
        to_aware_utc(row[t.resolved_at]) if row[t.resolved_at] is not None else None,
        row[t.summary], row[t.quiet],
        to_aware_utc(row[t.silenced_until]) if row[t.silenced_until] is not None else None,
        bool(row[t.silenced_until_resolved]),
    )  # fmt: skip


async def incidents_of(conn: AsyncConnection, ci_system_id: int, since: datetime) -> list[StoredIncident]:
    """The CI's incidents still firing or resolved at or after `since`, oldest first."""
    t = incidents_t
    query = (
        sa.select(t)
        .where(t.c.ci_system_id == ci_system_id, sa.or_(t.c.resolved_at.is_(None), t.c.resolved_at >= since))
        .order_by(t.c.started_at, t.c.id)
    )
    return [_stored(row._mapping) for row in await conn.execute(query)]


async def firing_since(conn: AsyncConnection, ci_system_id: int) -> datetime | None:
    """The start of the CI's oldest firing incident."""
    t = incidents_t
    query = sa.select(sa.func.min(t.c.started_at)).where(t.c.ci_system_id == ci_system_id, t.c.state == "firing")
    value = (await conn.execute(query)).scalar()
    return to_aware_utc(value) if value is not None else None


async def insert_incident(conn: AsyncConnection, ci_system_id: int, values: dict[str, Any]) -> int:
    result = await conn.execute(sa.insert(incidents_t).values(ci_system_id=ci_system_id, **values))
    key = result.inserted_primary_key
    if key is None or key[0] is None:  # pragma: no cover - both engines report it
        raise RuntimeError("the database did not report the new incident's id")
    return int(key[0])


async def update_incident(conn: AsyncConnection, incident_id: int, values: dict[str, Any]) -> None:
    await conn.execute(sa.update(incidents_t).where(incidents_t.c.id == incident_id).values(**values))


async def add_incident_runs(conn: AsyncConnection, incident_id: int, run_ids: Iterable[int]) -> None:
    """Add runs to an incident (those it has already stay once)."""
    wanted = set(run_ids)
    if not wanted:
        return
    t = incident_runs_t
    have = {int(r[0]) for r in await conn.execute(sa.select(t.c.run_id).where(t.c.incident_id == incident_id))}
    new = sorted(wanted - have)
    if new:
        await conn.execute(sa.insert(t), [{"incident_id": incident_id, "run_id": run_id} for run_id in new])


async def incident_run_ids(conn: AsyncConnection, incident_id: int) -> list[int]:
    t = incident_runs_t
    query = sa.select(t.c.run_id).where(t.c.incident_id == incident_id).order_by(t.c.run_id)
    return [int(r[0]) for r in await conn.execute(query)]


async def notified_edges(conn: AsyncConnection, incident_ids: Sequence[int]) -> set[tuple[int, str]]:
    """(incident id, edge) of the notifications stored for these incidents."""
    found: set[tuple[int, str]] = set()
    for part in chunks(sorted(set(incident_ids)), IN_CHUNK):
        query = sa.select(alerts_t.c.incident_id, alerts_t.c.edge).where(alerts_t.c.incident_id.in_(part))
        found.update((int(i), str(e)) for i, e in await conn.execute(query))
    return found


async def opened_severities(conn: AsyncConnection, incident_ids: Sequence[int]) -> dict[int, str]:
    """incident id -> the severity its open edge was notified with (an escalation changes it since)."""
    found: dict[int, str] = {}
    for part in chunks(sorted(set(incident_ids)), IN_CHUNK):
        query = sa.select(alerts_t.c.incident_id, alerts_t.c.severity).where(
            alerts_t.c.incident_id.in_(part), alerts_t.c.edge == "open"
        )
        found.update((int(i), str(severity)) for i, severity in await conn.execute(query))
    return found


def _incident_query() -> sa.Select[Any]:
    t, ci, accounts, servers = incidents_t, m.ci_systems_t, m.accounts_t, m.servers_t
    return (
        sa.select(t, accounts.c.account_key.label("ci_name"), servers.c.name.label("server_name"))
        .join(ci, ci.c.id == t.c.ci_system_id)
        .join(accounts, accounts.c.id == ci.c.account_id)
        .join(servers, servers.c.id == ci.c.server_id)
    )


def _incident_out(row: Any) -> IncidentOut:
    data = {name: row[name] for name in _INCIDENT_FIELDS}
    data["silenced_until_resolved"] = bool(data["silenced_until_resolved"])
    return IncidentOut(id=row["id"], ci=row["ci_name"], server=row["server_name"], **data)


async def get_incident(conn: AsyncConnection, incident_id: int) -> IncidentOut | None:
    row = (await conn.execute(_incident_query().where(incidents_t.c.id == incident_id))).first()
    return _incident_out(row._mapping) if row is not None else None


async def get_incidents(conn: AsyncConnection, incident_ids: Sequence[int]) -> dict[int, IncidentOut]:
    found: dict[int, IncidentOut] = {}
    for part in chunks(sorted(set(incident_ids)), IN_CHUNK):
        for row in await conn.execute(_incident_query().where(incidents_t.c.id.in_(part))):
            out = _incident_out(row._mapping)
            found[out.id] = out
    return found


@dataclass(frozen=True, slots=True)
class IncidentCounts:
    open_at_end: int = 0  # open when the span ended (started before it, not resolved by then)
    opened: int = 0  # started within the span (resolved since or not)


async def incident_counts(
    conn: AsyncConnection, start: datetime, end: datetime, project: str | None = None
) -> dict[int, IncidentCounts]:
    """Per CI system, its incidents open at `end` and those that started in [start, end) (on
    `project` when given: that project's and the CI-wide ones). An incident's times are its
    condition's (``started_at``: the first run that made it true), not when cidash noticed."""
    t = incidents_t
    open_at_end = sa.and_(t.c.started_at < end, sa.or_(t.c.resolved_at.is_(None), t.c.resolved_at >= end))
    opened = sa.and_(t.c.started_at >= start, t.c.started_at < end)
    query = sa.select(
        t.c.ci_system_id,
        sa.func.sum(sa.case((open_at_end, 1), else_=0)),
        sa.func.sum(sa.case((opened, 1), else_=0)),
    ).where(sa.or_(open_at_end, opened))
    if project is not None:
        query = query.where(t.c.scope.in_((project, "")))
    rows = await conn.execute(query.group_by(t.c.ci_system_id))
    return {ci: IncidentCounts(int(at_end), int(new)) for ci, at_end, new in rows}


async def list_incidents(
    conn: AsyncConnection,
    *,
    state: str | None = None,
    ci: Sequence[str] = (),
    before_id: int | None = None,
    limit: int = 50,
) -> list[IncidentOut]:
    """Newest first (by id); `before_id` pages."""
    t = incidents_t
    query = _incident_query()
    if state is not None:
        query = query.where(t.c.state == state)
    if ci:
        query = query.where(m.accounts_t.c.account_key.in_(list(ci)))
    if before_id is not None:
        query = query.where(t.c.id < before_id)
    query = query.order_by(t.c.id.desc()).limit(limit)
    return [_incident_out(row._mapping) for row in await conn.execute(query)]


async def add_note(
    conn: AsyncConnection,
    incident_id: int,
    action: str,
    author: str,
    note: str | None,
    until: datetime | None,
    at: datetime,
) -> None:
    await conn.execute(
        sa.insert(incident_notes_t).values(
            incident_id=incident_id,
            action=action,
            author=clip_required(author, m.NAME_LEN, "?"),
            note=clip(note, 1024),
            until=until,
            created_at=at,
        )
    )


async def notes_of(conn: AsyncConnection, incident_id: int) -> list[IncidentNoteOut]:
    t = incident_notes_t
    query = sa.select(t.c.id, t.c.action, t.c.author, t.c.note, t.c.until, t.c.created_at).where(
        t.c.incident_id == incident_id
    )
    return [
        IncidentNoteOut(id=r[0], action=r[1], author=r[2], note=r[3], until=r[4], created_at=r[5])
        for r in await conn.execute(query.order_by(t.c.id))
    ]


# -- maintenance windows -------------------------------------------------------------------------------


async def add_maintenance(
    conn: AsyncConnection,
    ci_system_id: int,
    starts_at: datetime,
    ends_at: datetime,
    author: str,
    reason: str | None,
    at: datetime,
) -> int:
    result = await conn.execute(
        sa.insert(maintenance_t).values(
            ci_system_id=ci_system_id,
            starts_at=starts_at,
            ends_at=ends_at,
            author=clip_required(author, m.NAME_LEN, "?"),
            reason=clip(reason, 1024),
            created_at=at,
        )
    )
    key = result.inserted_primary_key
    if key is None or key[0] is None:  # pragma: no cover
        raise RuntimeError("the database did not report the new window's id")
    return int(key[0])


async def in_maintenance(conn: AsyncConnection, ci_system_id: int, at: datetime) -> bool:
    t = maintenance_t
    query = sa.select(t.c.id).where(t.c.ci_system_id == ci_system_id, t.c.starts_at <= at, t.c.ends_at > at)
    return (await conn.execute(query.limit(1))).first() is not None


async def list_maintenance(
    conn: AsyncConnection,
    *,
    ending_after: datetime | None = None,
    ci_name: str | None = None,
    window_id: int | None = None,
) -> list[MaintenanceOut]:
    """Maintenance windows, earliest first: those ending after `ending_after`, of the CI named `ci_name`,
    or the one with id `window_id`."""
    t, ci, accounts, servers = maintenance_t, m.ci_systems_t, m.accounts_t, m.servers_t
    query = (
        sa.select(
            t.c.id, accounts.c.account_key, servers.c.name, t.c.starts_at, t.c.ends_at, t.c.author, t.c.reason,
            t.c.created_at,
        )
        .join(ci, ci.c.id == t.c.ci_system_id)
        .join(accounts, accounts.c.id == ci.c.account_id)
        .join(servers, servers.c.id == ci.c.server_id)
    )  # fmt: skip
    if ending_after is not None:
        query = query.where(t.c.ends_at > ending_after)
    if ci_name is not None:
        query = query.where(accounts.c.account_key == ci_name)
    if window_id is not None:
        query = query.where(t.c.id == window_id)
    return [
        MaintenanceOut(
            id=r[0], ci=r[1], server=r[2], starts_at=r[3], ends_at=r[4], author=r[5], reason=r[6], created_at=r[7]
        )
        for r in await conn.execute(query.order_by(t.c.starts_at, t.c.id))
    ]


async def delete_maintenance(conn: AsyncConnection, window_id: int) -> None:
    await conn.execute(sa.delete(maintenance_t).where(maintenance_t.c.id == window_id))


# -- notifications (alerts) ---------------------------------------------------------------------------------


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
            incident_id=alert.incident_id,
            edge=alert.edge,
            quiet=alert.quiet,
        )
    )
    key = result.inserted_primary_key
    if key is None or key[0] is None:  # pragma: no cover - both engines report it
        raise RuntimeError("the database did not report the new alert's id")
    return int(key[0])


async def set_feed_ids(conn: AsyncConnection, pairs: Sequence[tuple[int, int]]) -> None:
    for alert_id, feed_id in pairs:
        await conn.execute(sa.update(alerts_t).where(alerts_t.c.id == alert_id).values(feed_id=feed_id))


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
            alerts.c.incident_id,
            alerts.c.edge,
            alerts.c.quiet,
            incidents_t.c.started_at,
            incidents_t.c.resolved_at,
        )
        .join(ci, ci.c.id == alerts.c.ci_system_id)
        .join(accounts, accounts.c.id == ci.c.account_id)
        .join(servers, servers.c.id == ci.c.server_id)
        .outerjoin(incidents_t, incidents_t.c.id == alerts.c.incident_id)
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
        incident_id=row[11],
        edge=row[12],
        quiet=row[13],
        started_at=row[14],
        resolved_at=row[15] if row[12] == "resolve" else None,
    )


async def get_alert(conn: AsyncConnection, alert_id: int) -> AlertOut | None:
    row = (await conn.execute(_alert_query().where(alerts_t.c.id == alert_id))).first()
    return _alert_out(row) if row is not None else None


async def list_alerts(
    conn: AsyncConnection,
    *,
    ci: Sequence[str] = (),
    kinds: Sequence[str] = (),
    incident_id: int | None = None,
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
    if incident_id is not None:
        query = query.where(alerts.c.incident_id == incident_id)
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


async def job_urls(conn: AsyncConnection, run_ids: Sequence[int]) -> dict[int, list[str | None]]:
    """Each run's job URLs in job order (its log link: :func:`cidash.domain.urls.log_url`)."""
    jobs = m.jobs_t
    found: dict[int, list[tuple[int, str | None]]] = {}
    for part in chunks(sorted(set(run_ids)), IN_CHUNK):
        query = sa.select(jobs.c.run_id, jobs.c.position, jobs.c.url).where(jobs.c.run_id.in_(part))
        for run_id, position, url in await conn.execute(query):
            found.setdefault(int(run_id), []).append((int(position), url))
    return {run_id: [url for _, url in sorted(urls)] for run_id, urls in found.items()}
