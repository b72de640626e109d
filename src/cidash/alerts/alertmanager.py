"""Pushing incidents to a Prometheus Alertmanager (``POST <url>/api/v2/alerts``), so that operators
get e-mail, chat and paging from the routes they already run.

Every incident that notifies (not quiet, not silenced) is one Alertmanager alert: labels
``alertname`` (the rule), ``ci``, ``server``, ``project`` (its scope, empty for the CI as a whole),
``rule``, ``severity``; annotation ``summary``; ``generatorURL`` its dashboard page; ``startsAt``
the incident's start. While it fires it is re-sent every ``resend_s`` with ``endsAt`` four resends
ahead (so an Alertmanager whose cidash went away resolves it on its own); once resolved it is sent
with ``endsAt`` = its resolution, for as long as it resolved recently. A severity that escalates
changes the labels, so the old label set is ended, at every push while the incident is due: the old
severity is the one its open edge was notified with (stored), not what this process pushed before,
so a replica that restarted or took over ends the stale label set too. Only severity changes, and
only once (to critical): the open edge's and the current one are every label set an incident had.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa

from cidash.alerts.engine import silenced
from cidash.config import AlertmanagerConfig
from cidash.domain.views import AlertOut, IncidentOut
from cidash.store import Store, alerts_store, incidents_t

log = logging.getLogger(__name__)

RESOLVED_KEPT = timedelta(minutes=15)  # resolved incidents are re-sent (ended) this long


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def labels(incident: IncidentOut) -> dict[str, str]:
    return {
        "alertname": incident.rule,
        "ci": incident.ci,
        "server": incident.server,
        "project": incident.scope,
        "rule": incident.rule,
        "severity": incident.severity,
    }


class AlertmanagerPusher:
    """Sends the notifying incidents to one Alertmanager; :meth:`push` once, :meth:`run` forever."""

    def __init__(
        self,
        store: Store,
        config: AlertmanagerConfig,
        *,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._store = store
        self.config = config
        self._http = http or httpx.AsyncClient(timeout=10.0, follow_redirects=False)
        self._own_http = http is None
        self._clock = clock or (lambda: datetime.now(UTC))
        self._wake = asyncio.Event()
        self.pushes = 0

    def on_edges(self, alerts: Sequence[AlertOut]) -> None:
        """An engine edge listener: push soon, not at the next resend."""
        if alerts:
            self._wake.set()

    async def close(self) -> None:
        if self._own_http:
            await self._http.aclose()

    def payload(
        self, incidents: Sequence[IncidentOut], opened: Mapping[int, str], now: datetime
    ) -> list[dict[str, Any]]:
        """The alerts to post: each incident, and the label set it opened with ended when its severity
        escalated since (`opened`: incident id -> the severity of its open edge)."""
        ahead = now + timedelta(seconds=4 * self.config.resend_s)
        items = []
        for incident in incidents:
            current = labels(incident)
            severity = opened.get(incident.id, incident.severity)
            if severity != incident.severity:  # escalated: end the old label set
                previous = {**current, "severity": severity}
                ended = incident.resolved_at or now
                items.append({"labels": previous, "startsAt": _time(incident.started_at), "endsAt": _time(ended)})
            ends = incident.resolved_at if incident.resolved_at is not None else ahead
            items.append(
                {
                    "labels": current,
                    "annotations": {"summary": f"{incident.ci}: {incident.summary}"},
                    "generatorURL": f"{self.config.dashboard_url}/#/incidents/{incident.id}",
                    "startsAt": _time(incident.started_at),
                    "endsAt": _time(ends),
                }
            )
        return items

    async def due(self, now: datetime) -> tuple[list[IncidentOut], dict[int, str]]:
        """The incidents to send now (firing and notifying, or resolved recently after notifying) and
        the severities their open edges were notified with."""
        t = incidents_t
        async with self._store.engine.connect() as conn:
            query = sa.select(t.c.id).where(
                t.c.quiet.is_(None),
                sa.or_(t.c.state == "firing", t.c.resolved_at >= now - RESOLVED_KEPT),
            )
            ids = [int(row[0]) for row in await conn.execute(query)]
            found = await alerts_store.get_incidents(conn, ids)
            opened = await alerts_store.opened_severities(conn, ids)
        wanted = []
        for incident in found.values():
            if silenced(incident, now) and incident.state == "firing":
                continue
            wanted.append(incident)
        return sorted(wanted, key=lambda incident: incident.id), opened

    async def push(self) -> int:
        """One push of what is due; the number of alerts sent (0 when nothing was due)."""
        now = self._clock()
        incidents, opened = await self.due(now)
        items = self.payload(incidents, opened, now)
        if not items:
            return 0
        response = await self._http.post(f"{self.config.url}/api/v2/alerts", json=items)
        if response.status_code >= 300:
            raise RuntimeError(f"Alertmanager {self.config.url} answered HTTP {response.status_code}")
        self.pushes += 1
        return len(items)

    async def run(self) -> None:
        """Push every ``resend_s`` and soon after every edge; failures are logged and retried."""
        while True:
            try:
                await self.push()
            except (httpx.HTTPError, RuntimeError, OSError) as exc:
                log.warning("pushing incidents to Alertmanager failed: %s", exc)
            except Exception:
                log.exception("pushing incidents to Alertmanager failed")
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.config.resend_s)
            except TimeoutError:
                pass
