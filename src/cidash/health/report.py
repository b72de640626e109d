"""The weekly report card: every CI's numbers over the last complete week and the week before.

A week ends at midnight UTC (by default the last one, so the card does not move during a day and
its numbers are cached); its numbers come from :func:`cidash.health.assess` pinned at the end of
each week, exactly as the overview computes its 7 d window. Rows are sorted worst first (state,
then success rate), and every number links to the dashboard's list of the runs behind it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncConnection

from cidash.config import CISystemConfig
from cidash.domain.views import HealthWindow, ReportCard, ReportNumbers, ReportRow
from cidash.health.assess import assess
from cidash.health.cache import HealthCache
from cidash.store import alerts_store, reads

WEEK = timedelta(days=7)
STATE_ORDER = {"failing": 0, "silent": 1, "degraded": 2, "unknown": 3, "healthy": 4}
"""Worst first."""


def week_end(now: datetime) -> datetime:
    """The end of the last complete report week at `now`: that day's midnight UTC."""
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def runs_link(
    system: reads.systems.SystemRow, start: datetime, end: datetime, project: str | None, **extra: str
) -> str:
    """The dashboard's runs page filtered to this CI (and project) over [start, end)."""
    params = {"ci": system.name, "from": _iso(start), "to": _iso(end), **extra}
    if project is not None:
        params["project"] = project
    return "#/runs?" + urlencode(sorted(params.items()))


def _links(system: reads.systems.SystemRow, start: datetime, end: datetime, project: str | None) -> dict[str, str]:
    every = runs_link(system, start, end, project)
    return {
        "runs": every,
        "success": runs_link(system, start, end, project, result="success"),
        "infra": runs_link(system, start, end, project, result="infra"),
        "failures": runs_link(system, start, end, project, result="failure"),
        "latency": every,
        "recovery": runs_link(system, start, end, project, result="failure"),
        "coverage": "#/grid?" + urlencode({"project": project}) if project else every,
        "agreement": "#/cases/" + system.name + "?" + urlencode({"kind": "false_positive", "window": "7d"}),
        "false_negative": "#/cases/" + system.name + "?" + urlencode({"kind": "false_negative", "window": "7d"}),
        "incidents": "#/incidents?" + urlencode({"ci": system.name}),
        "rechecks": "#/rechecks/" + system.name + "?" + urlencode(_span(start, end, project)),
    }


def _span(start: datetime, end: datetime, project: str | None) -> list[tuple[str, str]]:
    return [("from", _iso(start)), ("to", _iso(end))] + ([("project", project)] if project is not None else [])


def _numbers(window: HealthWindow | None, incidents: alerts_store.IncidentCounts, is_reference: bool) -> ReportNumbers:
    """A week's numbers (the reference CI has no vote quality: it is what the others are judged by)."""
    quality = window.vote_quality if window is not None and not is_reference else None
    return ReportNumbers(
        runs=window.runs if window is not None else 0,
        success_rate=window.success_rate if window is not None else None,
        infra_error_rate=window.infra_error_rate if window is not None else None,
        coverage=window.coverage if window is not None else None,
        eligible=window.eligible if window is not None else 0,
        covered=window.covered if window is not None else 0,
        agreement=window.agreement if window is not None else None,
        false_negative_share=quality.false_negative_share if quality is not None else None,
        false_negatives=quality.false_negatives if quality is not None else 0,
        negatives=quality.negatives if quality is not None else 0,
        latency_p50_s=window.latency_p50_s if window is not None else None,
        latency_p95_s=window.latency_p95_s if window is not None else None,
        queue_p50_s=window.queue_p50_s if window is not None else None,
        recheck_recovery=window.recheck_recovery if window is not None else None,
        rechecks=window.rechecks if window is not None else 0,
        rechecks_per_100_runs=window.rechecks_per_100_runs if window is not None else None,
        incidents_open=incidents.open_at_end,
        incidents_opened=incidents.opened,
    )


def _worst_first(row: ReportRow) -> tuple[int, float, str]:
    success = row.week.success_rate
    return (STATE_ORDER.get(row.state, 5), success if success is not None else 2.0, row.name)


async def report_card(
    conn: AsyncConnection,
    configs: Sequence[CISystemConfig] = (),
    *,
    end: datetime | None = None,
    project: str | None = None,
    cache: HealthCache | None = None,
) -> ReportCard:
    """The week ending at `end` (default :func:`week_end` of now) and the week before, for every
    CI system (with `project`: those following it, counted on it)."""
    end = end or week_end(datetime.now(UTC))
    start, previous_start = end - WEEK, end - 2 * WEEK
    systems = await reads.systems.system_rows(conn)
    refs = [s.ref(reads.systems.config_entry(configs, s)) for s in systems]
    references = [s.ref() for s in systems if s.is_reference]
    week = await assess(conn, refs, ["7d"], project=project, now=end, cache=cache, references=references)
    now = datetime.now(UTC)
    # a week ending tomorrow holds today so far: its states are today's, not tomorrow midnight's
    current = week
    if end > now:
        current = await assess(conn, refs, ["24h"], project=project, cache=cache, references=references)
    before = await assess(conn, refs, ["7d"], project=project, now=start, cache=cache, references=references)
    # 14 daily buckets, the last one the week's last day (a moment before midnight)
    sparks = await reads.health.sparklines(conn, "7d", end - timedelta(microseconds=1), project=project)
    incidents = await alerts_store.incident_counts(conn, start, end, project)
    previous_incidents = await alerts_store.incident_counts(conn, previous_start, start, project)
    none = alerts_store.IncidentCounts()
    rows = []
    for system in systems:
        assessed = week[system.id]
        if project is not None and project not in assessed.projects:
            continue
        state = current[system.id]
        rows.append(
            ReportRow(
                name=system.name,
                server=system.server,
                display_name=system.display_name,
                is_reference=system.is_reference,
                state=state.state,
                state_reason=state.reason,
                week=_numbers(assessed.windows.get("7d"), incidents.get(system.id, none), system.is_reference),
                previous=_numbers(
                    before[system.id].windows.get("7d"), previous_incidents.get(system.id, none), system.is_reference
                ),
                sparkline=sparks.get(system.id, [None] * 14),
                links=_links(system, start, end, project),
            )
        )
    rows.sort(key=_worst_first)
    return ReportCard(start=start, end=end, previous_start=previous_start, project=project, rows=rows)
