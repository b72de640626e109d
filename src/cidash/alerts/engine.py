"""The alert engine: keeps the ``incidents`` table true to the stored runs, and notifies each
incident's open and resolve edges, once each.

How the collector uses it, after every write that inserted runs::

    stats = await store.write_comments(batch)          # store.after_insert = hooks.after_insert
    messages = stats.after_insert or []
    await bus.publish(messages)
    await bus.publish(await engine.on_feed(messages))   # or engine.on_runs([RunOut, ...])

and every minute ``await bus.publish(await engine.tick())``: damping, silence and severity move
with time alone.

Each evaluation of a CI judges its runs since a little before the earliest run that changed
(every run of every CI on the same patch sets is looked at, so a reference result that arrives
late re-judges the failures before it), walks every rule over them (:func:`cidash.alerts.model.walk`)
and reconciles what comes out with the stored incidents, matched by overlapping time: a new
condition opens an incident (started at the run that made it true, whenever that was), a
matched one is updated (runs, counts, summary, severity), one that cleared resolves. The
reads and writes of an evaluation share one transaction under the feed lock, so two replicas
around a takeover cannot open the same incident twice, and a notification row is unique per
(incident, edge): no edge is notified twice; a killed collector's owed edges are paid by the next
evaluation of the CI (:meth:`AlertEngine.catch_up` at takeover, then every tick).

An edge notifies (webhooks, Alertmanager, dashboard toasts) unless it is *quiet*: the condition
began more than ``alert_notify_within_s`` ago (history: a backfill or an archive import), the CI
was in a declared maintenance window when it opened, or it is silenced; the notification row is
stored and shown either way. A CI's state (``state`` messages) is health's
(:func:`cidash.health.systems.systems_summary_one`), sent when one of its incidents opens or resolves.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from cidash.alerts.model import (
    ALL_PROJECTS,
    COMMENT_KINDS,
    RUN_KINDS,
    Interval,
    JudgedRun,
    damping,
    read_comment,
    severity,
    silence,
    silence_over,
    summary,
    walk,
)
from cidash.alerts.webhooks import WebhookSender
from cidash.config import AlertRuleConfig, CISystemConfig, Settings
from cidash.domain.judgement import judge_on_patchset
from cidash.domain.urls import redact_url
from cidash.domain.views import AlertOut, AlertRuleOut, FeedMessage, IncidentOut, RunOut
from cidash.errors import ConfigError
from cidash.health.systems import systems_summary_one
from cidash.store import CIRef, HistoryRun, NewAlert, Store, StoredIncident, feed, reads, to_aware_utc
from cidash.store import alerts_store as q

log = logging.getLogger(__name__)

HOUR = 3600.0
DEFAULT_RULES: tuple[AlertRuleConfig, ...] = (
    AlertRuleConfig(name="consecutive-failures", kind="consecutive_failures", count=3, severity="warning"),
    AlertRuleConfig(
        name="failure-rate", kind="failure_rate", threshold=0.5, window_s=6 * HOUR, min_runs=10, severity="warning"
    ),
    AlertRuleConfig(name="silent", kind="silent", silent_s=6 * HOUR, severity="warning"),
)
CONTEXT = timedelta(hours=12)  # runs before the earliest changed one that a walk starts with
MAX_LOOKBACK = timedelta(days=8)  # a walk never reads further back than this
PROJECTS_LOOKBACK = timedelta(days=14)  # "its projects": where it reported recently
CATCH_UP_WINDOW = timedelta(minutes=10)
MAX_REST_S = 10.0  # the deferred evaluator's longest rest between rounds


def rule_params(rule: AlertRuleConfig) -> dict[str, float | int | str | bool | None]:
    damped = damping(rule)
    params: dict[str, float | int | str | bool | None] = {
        "severity": rule.severity,
        "escalate_after_s": rule.escalate_after_s,
        "per_project": rule.per_project,
        "for_s": damped.hold_s,
        "for_runs": damped.hold_runs,
        "clear_s": damped.clear_s,
        "clear_runs": damped.clear_runs,
    }
    if rule.kind == "consecutive_failures":
        params["count"] = rule.count
    elif rule.kind in ("failure_rate", "unreadable"):
        params.update(threshold=rule.threshold, window_s=rule.window_s, min_runs=rule.min_runs)
    elif rule.kind == "silent":
        params["silent_s"] = rule.silent_s
    return params


def rule_views(rules: Sequence[AlertRuleConfig]) -> list[AlertRuleOut]:
    """The rules as the API shows them: webhook URLs without credentials, secrets never."""
    return [
        AlertRuleOut(
            name=rule.name,
            kind=rule.kind,
            ci=list(rule.ci),
            projects=list(rule.projects),
            params=rule_params(rule),
            webhooks=[redact_url(hook.url) for hook in rule.webhooks],
        )
        for rule in rules
    ]


def _applies(rule: AlertRuleConfig, ci: str) -> bool:
    return not rule.ci or ci in rule.ci


def _overlaps(stored: StoredIncident, interval: Interval, now: datetime) -> bool:
    far = datetime.max.replace(tzinfo=UTC)
    return interval.started_at <= (stored.resolved_at or far) and stored.started_at <= (interval.resolved_at or now)


def silenced(incident: StoredIncident | IncidentOut, now: datetime) -> bool:
    until = incident.silenced_until
    return incident.silenced_until_resolved or (until is not None and to_aware_utc(until) > now)


@dataclass(slots=True)
class _Out:
    """What one evaluation changed: feed entries in order, notifications to send, CIs whose state moved."""

    entries: list[feed.FeedEntry] = field(default_factory=list)
    alert_owners: list[int | None] = field(default_factory=list)
    notifications: list[tuple[AlertOut, AlertRuleConfig]] = field(default_factory=list)
    moved: dict[int, CIRef] = field(default_factory=dict)  # CIs with an edge that notified
    messages: list[FeedMessage] = field(default_factory=list)  # the entries as appended

    def add(self, entry: feed.FeedEntry, alert_id: int | None = None) -> None:
        self.entries.append(entry)
        self.alert_owners.append(alert_id)


@dataclass(slots=True)
class _Walked:
    """What one CI's evaluation walks: from `lower` on, its judged runs and its comments (read or not)."""

    lower: datetime
    runs: list[JudgedRun] = field(default_factory=list)
    comments: list[JudgedRun] = field(default_factory=list)


class AlertEngine:
    """Evaluates the alert rules into incidents; see the module docstring. One engine per
    collector process; when replicas share the collecting, pass `servers` (a list, or a callable
    read at every call: the servers this replica collects now) so that each CI is evaluated by
    one replica only."""

    def __init__(
        self,
        store: Store,
        rules: Sequence[AlertRuleConfig] | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
        servers: Sequence[str] | Callable[[], Sequence[str]] | None = None,
        notify_within_s: float = 3600.0,
        webhooks: WebhookSender | None = None,
        ci_configs: Sequence[CISystemConfig] = (),
    ) -> None:
        self.rules: tuple[AlertRuleConfig, ...] = tuple(
            rule for rule in (tuple(rules) if rules else DEFAULT_RULES) if rule.kind != "recovered"
        )
        names = [rule.name for rule in self.rules]
        if len(names) != len(set(names)):
            raise ConfigError("alert rule names must be unique")
        self._store = store
        self._clock = clock or (lambda: datetime.now(UTC))
        self._servers_of: Callable[[], Sequence[str]] | None
        if callable(servers):
            self._servers_of = servers
        elif servers is not None:
            fixed = list(servers)
            self._servers_of = lambda: fixed
        else:
            self._servers_of = None
        self.notify_within = timedelta(seconds=notify_within_s)
        self.webhooks = webhooks or WebhookSender(store)
        self._ci_configs = tuple(ci_configs)
        self._lock = asyncio.Lock()
        self._deferred: set[int] = set()  # run ids stored and not evaluated yet (see :meth:`defer`)
        self._due = asyncio.Event()
        self._held = False  # see :meth:`hold`
        self._owed: dict[str, datetime] = {}  # server -> since when a held catch-up evaluates
        self.edge_listeners: list[Callable[[Sequence[AlertOut]], None]] = []  # e.g. the Alertmanager pusher

    def _servers(self) -> list[str] | None:
        return list(self._servers_of()) if self._servers_of is not None else None

    @classmethod
    def from_settings(cls, store: Store, settings: Settings, **options: Any) -> AlertEngine:
        """The configured rules, or :data:`DEFAULT_RULES` when none are configured."""
        options.setdefault("notify_within_s", settings.alert_notify_within_s)
        options.setdefault("ci_configs", settings.ci)
        return cls(store, settings.alerts or None, **options)

    def rule_views(self) -> list[AlertRuleOut]:
        return rule_views(self.rules)

    def rule(self, name: str) -> AlertRuleConfig | None:
        return next((rule for rule in self.rules if rule.name == name), None)

    async def close(self) -> None:
        await self.webhooks.close()

    async def drain(self) -> None:
        """Wait for the webhook deliveries under way (tests, graceful shutdown)."""
        await self.webhooks.drain()

    # -- entry points --------------------------------------------------------------------------
    async def on_feed(self, messages: Sequence[FeedMessage]) -> list[FeedMessage]:
        """:meth:`on_runs` for the `run` messages of a write (what ``hooks.after_insert`` returned)."""
        runs = [RunOut.model_validate(message.data) for message in messages if message.type == "run"]
        return await self.on_runs(runs)

    def defer(self, messages: Sequence[FeedMessage]) -> None:
        """Note the runs of a committed write for :meth:`run_deferred` (the collector never waits for
        an evaluation: many writes' runs are evaluated together)."""
        ids = [int(str(message.data["id"])) for message in messages if message.type == "run"]
        if ids:
            self._deferred.update(ids)
            self._due.set()

    def hold(self) -> None:
        """Evaluate nothing (deferred runs, ticks, catch-ups are noted) until :meth:`run_deferred`'s
        `first` is done: a start-up backfill imports history in thousands of writes, and evaluating
        it as it comes slowed the import (the dashboard's start) for nothing but quiet incidents."""
        self._held = True

    async def run_deferred(
        self,
        publish: Callable[[list[FeedMessage]], Any],
        retry_s: float = 2.0,
        *,
        first: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        """Evaluate the deferred runs as they come, publishing what changed; a database that is
        away is waited for (the runs stay noted). Runs until cancelled. After a round that took
        `d` it rests ``2 d`` (at most :data:`MAX_REST_S`): a history import arrives in thousands of
        writes, and one round over many of them costs about what a round over one does. With
        `first` (and :meth:`hold`), the first round waits for it, then pays the held catch-ups."""
        if first is not None:
            await first()
        self._held = False
        for server, since in list(self._owed.items()):
            del self._owed[server]
            try:
                await publish(await self._everyone(since, [server]))
            except Exception:  # the next tick evaluates the CI again
                log.exception("server %s: evaluating the incidents of recent runs failed", server)
        loop = asyncio.get_running_loop()
        while True:
            await self._due.wait()
            self._due.clear()
            ids, self._deferred = sorted(self._deferred), set()
            began = loop.time()
            try:
                messages = await self._evaluate_runs(ids)
            except (DBAPIError, OSError) as exc:
                log.warning("incident evaluation failed, retrying in %.0f s: %s", retry_s, exc)
                self._deferred.update(ids)
                await asyncio.sleep(retry_s)
                self._due.set()
                continue
            try:
                await publish(messages)
            except Exception:  # stored: subscribers catch up from the feed with `since`
                log.exception("publishing %d incident messages failed", len(messages))
            await asyncio.sleep(min(2 * (loop.time() - began), MAX_REST_S))

    async def on_runs(self, runs: Sequence[RunOut]) -> list[FeedMessage]:
        """Evaluate the CIs these newly stored runs concern (their own, and every CI that reported on
        the same patch sets); store what changed; the messages to publish."""
        if not runs:
            return []
        return await self._evaluate_runs([run.id for run in runs])

    async def _evaluate_runs(self, ids: Sequence[int]) -> list[FeedMessage]:
        if not ids:
            return []

        async def plan(conn: AsyncConnection) -> dict[int, tuple[CIRef, datetime]]:
            found = await q.runs_by_id(conn, ids)
            results = await q.patchset_results(conn, {run.patchset_id for _, run in found.values()})
            earliest: dict[int, datetime] = {}
            for ci_id, run in found.values():
                earliest[ci_id] = min(earliest.get(ci_id, run.posted_at), run.posted_at)
                for other in results.get(run.patchset_id, ()):
                    earliest[other.ci_system_id] = min(
                        earliest.get(other.ci_system_id, other.posted_at), other.posted_at
                    )
            refs = {ref.id: ref for ref in await q.all_ci_refs(conn, self._servers())}
            return {ci_id: (refs[ci_id], at) for ci_id, at in earliest.items() if ci_id in refs}

        return await self._run(plan)

    async def catch_up(self, server: str, window: timedelta = CATCH_UP_WINDOW) -> list[FeedMessage]:
        """At takeover: evaluate every CI of `server` from `window` ago (a collector killed between
        committing runs and evaluating them owes their edges; evaluating again adds nothing twice).
        While held (:meth:`hold`), noted for the first round instead."""
        if self._held:
            self._owed.setdefault(server, self._clock() - window)
            return []
        return await self._everyone(self._clock() - window, [server])

    async def tick(self, now: datetime | None = None) -> list[FeedMessage]:
        """Evaluate every CI with time alone moving: damping, silence, severity; the messages to publish
        (none while held: the first round after it evaluates the runs, the next tick the time)."""
        if self._held:
            return []
        at = to_aware_utc(now) if now is not None else None
        servers = self._servers()
        if servers is not None and not servers:
            return []
        return await self._everyone(at or self._clock(), servers, now=at)

    async def _everyone(
        self, since: datetime, servers: list[str] | None, now: datetime | None = None
    ) -> list[FeedMessage]:
        async def plan(conn: AsyncConnection) -> dict[int, tuple[CIRef, datetime]]:
            return {ref.id: (ref, since) for ref in await q.all_ci_refs(conn, servers)}

        return await self._run(plan, now)

    # -- evaluation ----------------------------------------------------------------------------
    async def _run(self, plan: Callable[[AsyncConnection], Any], now: datetime | None = None) -> list[FeedMessage]:
        """Evaluate the CIs `plan` names, each in a transaction of its own (a collector's writes go
        in between: on SQLite a long transaction would hold its one write lock)."""
        async with self._lock:
            at = now or self._clock()
            async with self._store.engine.connect() as conn:
                targets: dict[int, tuple[CIRef, datetime]] = await plan(conn)
            messages: list[FeedMessage] = []
            moved: dict[int, CIRef] = {}
            for ci, anchor in targets.values():
                out = await self._evaluate_one(ci, min(anchor, at), now)
                messages += out.messages
                moved.update(out.moved)
                for alert, rule in out.notifications:
                    if rule.webhooks:
                        self.webhooks.send(alert, rule.webhooks)
                if out.notifications:
                    for listener in self.edge_listeners:
                        listener([alert for alert, _ in out.notifications])
                await asyncio.sleep(0)  # let the collector run between CIs
        return messages + await self._state_messages(moved.values(), at)

    async def _evaluate_one(self, ci: CIRef, anchor: datetime, now: datetime | None) -> _Out:
        rules = [rule for rule in self.rules if _applies(rule, ci.name)]
        if not rules:
            return _Out()
        at = now or self._clock()
        walked = await self._prepare(ci, rules, min(anchor, at), at)
        await asyncio.sleep(0)  # judging is CPU: let the collector run before the lock

        async def work(conn: AsyncConnection) -> _Out:  # a retry reads the stored incidents again
            out = _Out()
            await feed.lock_feed(conn)  # one evaluation at a time across replicas
            await self._evaluate(conn, ci, rules, walked, at, out)
            out.messages = await feed.append(conn, out.entries)
            await q.set_feed_ids(
                conn, [(owner, m.id) for owner, m in zip(out.alert_owners, out.messages, strict=True) if owner]
            )
            return out

        return await self._store.write(work)

    async def _state_messages(self, cis: Iterable[CIRef], now: datetime) -> list[FeedMessage]:
        """Health's state of the CIs whose incidents opened or resolved (health owns the state)."""
        entries = []
        try:
            async with self._store.engine.connect() as conn:
                for ci in cis:
                    system = await reads.systems.find_system(conn, ci.name, ci.server)
                    if system is None:
                        continue
                    found = await systems_summary_one(conn, system, self._ci_configs, now=now)
                    data: dict[str, object] = {
                        "ci": ci.name,
                        "server": ci.server,
                        "state": found.state,
                        "state_reason": found.state_reason,
                    }
                    entries.append(feed.FeedEntry("state", data, ci.id, None))
            if not entries:
                return []
            return await self._store.write(lambda conn: feed.append(conn, entries))
        except Exception:  # the incidents are stored; a state message is a convenience
            log.exception("computing the state of %d CI systems failed", len(entries))
            return []

    async def _evaluate(
        self, conn: AsyncConnection, ci: CIRef, rules: Sequence[AlertRuleConfig], walked: _Walked,
        now: datetime, out: _Out,
    ) -> None:  # fmt: skip
        """Reconcile the CI's stored incidents with what the rules say (inside the write transaction)."""
        lower = walked.lower
        stored = await q.incidents_of(conn, ci.id, lower)
        for rule in rules:
            mine = [s for s in stored if s.rule == rule.name]
            if rule.kind in RUN_KINDS:
                await self._reconcile(conn, ci, rule, walk(rule, walked.runs, now), mine, lower, now, out)
            elif rule.kind in COMMENT_KINDS:
                intervals = walk(rule, walked.comments, now)
                for interval in intervals:
                    interval.members = []  # comments, not runs: the incident's runs stay none
                await self._reconcile(conn, ci, rule, intervals, mine, lower, now, out)
            elif rule.kind == "silent":
                await self._silence(conn, ci, rule, mine, now, out)

    async def _prepare(self, ci: CIRef, rules: Sequence[AlertRuleConfig], anchor: datetime, now: datetime) -> _Walked:
        """Where the walks start and what they walk from there: read before the write transaction
        (on MySQL it holds the feed lock, which the collector's writes wait for)."""
        lower = anchor - CONTEXT
        async with self._store.engine.connect() as conn:
            firing = await q.firing_since(conn, ci.id)
            if firing is not None:
                lower = min(lower, firing - CONTEXT)
            walked = _Walked(max(lower, now - MAX_LOOKBACK))
            upper = now + timedelta(days=1)
            if any(rule.kind in RUN_KINDS for rule in rules):
                runs = await q.runs_between(conn, ci.id, walked.lower, upper)
                walked.runs = [judged for judged, _ in await judge_runs(conn, ci, runs)]
            if any(rule.kind in COMMENT_KINDS for rule in rules):
                marks = await reads.comments.comment_marks(conn, ci.id, walked.lower, upper)
                walked.comments = [
                    read_comment(c.id, c.posted_at, c.project, c.change_number, c.patchset_number, unread=c.unread)
                    for c in marks
                ]
            return walked

    async def _reconcile(
        self,
        conn: AsyncConnection,
        ci: CIRef,
        rule: AlertRuleConfig,
        computed: list[Interval],
        stored: list[StoredIncident],
        lower: datetime,
        now: datetime,
        out: _Out,
    ) -> None:
        used: set[int] = set()
        for interval in computed:
            match = next(
                (s for s in stored if s.id not in used and s.scope == interval.scope and _overlaps(s, interval, now)),
                None,
            )
            if match is None:
                await self._open(conn, ci, rule, interval, now, out)
            else:
                used.add(match.id)
                await self._update(conn, ci, rule, match, interval, now, out)
        for gone in stored:
            if gone.id not in used and gone.state == "firing" and gone.started_at >= lower + CONTEXT:
                # judged again (a late reference result), the condition never held: it is over
                ended = Interval(rule.name, rule.kind, gone.scope, gone.started_at, gone.fired_at, now)
                await self._update(conn, ci, rule, gone, ended, now, out)

    async def _silence(
        self,
        conn: AsyncConnection,
        ci: CIRef,
        rule: AlertRuleConfig,
        stored: list[StoredIncident],
        now: datetime,
        out: _Out,
    ) -> None:
        last_seen = to_aware_utc(ci.last_seen) if ci.last_seen is not None else None
        firing = [s for s in stored if s.state == "firing"]
        for incident in firing:
            if last_seen is not None and silence_over(rule, incident.started_at, last_seen):
                ended = Interval(
                    rule.name, rule.kind, incident.scope, incident.started_at, incident.fired_at, last_seen
                )
                await self._update(conn, ci, rule, incident, ended, now, out)
        if firing or last_seen is None:
            return
        projects = list(rule.projects) or await q.projects_of(conn, ci.id, now - PROJECTS_LOOKBACK)
        waiting = await q.first_waiting(conn, ci.server_id, projects, ci.id, last_seen)
        began = silence(rule, last_seen, waiting, now)
        if began is None or any(s.started_at == began for s in stored):
            return
        await self._open(conn, ci, rule, Interval(rule.name, rule.kind, ALL_PROJECTS, began, now), now, out)

    # -- writing -------------------------------------------------------------------------------------
    def _values(self, ci: CIRef, rule: AlertRuleConfig, interval: Interval, now: datetime) -> dict[str, Any]:
        ended = interval.resolved_at
        return {
            "state": "resolved" if ended is not None else "firing",
            "severity": severity(rule, interval.fired_at or now, ended or now),
            "resolved_at": ended,
            "last_run_at": interval.last_run_at,
            "summary": summary(rule, interval, now, reference="most other CIs" if ci.is_reference else None)[:1024],
            "failed": interval.failed,
            "passed": interval.passed,
            "inhibited": interval.inhibited,
            "updated_at": now,
        }

    async def _open(
        self, conn: AsyncConnection, ci: CIRef, rule: AlertRuleConfig, interval: Interval, now: datetime, out: _Out
    ) -> None:
        quiet = None
        if interval.started_at < now - self.notify_within:
            quiet = "history"
        elif await q.in_maintenance(conn, ci.id, now):
            quiet = "maintenance"
        values = self._values(ci, rule, interval, now)
        values.update(
            rule=rule.name,
            kind=rule.kind,
            scope=interval.scope,
            started_at=interval.started_at,
            fired_at=interval.fired_at or now,
            quiet=quiet,
            created_at=now,
        )
        incident_id = await q.insert_incident(conn, ci.id, values)
        await q.add_incident_runs(conn, incident_id, [run.id for run in interval.members])
        await self._changed(conn, ci, rule, incident_id, "open", now, out, edges=["open"])
        if interval.resolved_at is not None:
            await self._changed(conn, ci, rule, incident_id, "resolve", now, out, edges=["resolve"])

    async def _update(
        self,
        conn: AsyncConnection,
        ci: CIRef,
        rule: AlertRuleConfig,
        stored: StoredIncident,
        interval: Interval,
        now: datetime,
        out: _Out,
    ) -> None:
        if stored.state == "resolved":
            interval.resolved_at = stored.resolved_at  # a resolved incident stays resolved
        interval.started_at = stored.started_at
        values = self._values(ci, rule, interval, now)
        if interval.kind == "silent" or not interval.members:
            values.pop("failed"), values.pop("passed"), values.pop("inhibited"), values.pop("last_run_at")
        await q.add_incident_runs(conn, stored.id, [run.id for run in interval.members])
        before = await q.get_incident(conn, stored.id)
        if before is None:  # pragma: no cover - read in this transaction
            return
        if all(getattr(before, key) == value for key, value in values.items() if key != "updated_at"):
            return
        await q.update_incident(conn, stored.id, values)
        resolving = stored.state == "firing" and values["state"] == "resolved"
        event = "resolve" if resolving else "update"
        await self._changed(conn, ci, rule, stored.id, event, now, out, edges=["resolve"] if resolving else [])

    async def _changed(
        self,
        conn: AsyncConnection,
        ci: CIRef,
        rule: AlertRuleConfig,
        incident_id: int,
        event: str,
        now: datetime,
        out: _Out,
        *,
        edges: Sequence[str],
    ) -> None:
        """The incident message, and the notification of each edge not notified before."""
        incident = await q.get_incident(conn, incident_id)
        if incident is None:  # pragma: no cover - written in this transaction
            return
        data = {"event": event, **incident.model_dump(mode="json")}
        project = incident.scope or None
        out.add(feed.FeedEntry("incident", data, ci.id, project))
        done = await q.notified_edges(conn, [incident_id])
        for edge in edges:
            if (incident_id, edge) in done:
                continue
            quiet = incident.quiet or ("silenced" if silenced(incident, now) else None)
            what = "resolved" if edge == "resolve" else rule.kind.replace("_", " ")
            alert = NewAlert(
                rule=rule.name,
                kind=rule.kind,
                ci_system_id=ci.id,
                project=project,
                severity=incident.severity,
                message=f"{ci.name} {what}: {incident.summary}",
                created_at=now,
                run_id=None,
                muted=quiet is not None,
                incident_id=incident_id,
                edge=edge,
                quiet=quiet,
            )
            alert_id = await q.insert_alert(conn, alert)
            stored = await q.get_alert(conn, alert_id)
            if stored is None:  # pragma: no cover
                continue
            out.add(feed.FeedEntry("alert", stored.model_dump(mode="json"), ci.id, project), alert_id)
            if quiet is None:  # history imports change states by the thousand: health is asked live
                out.moved[ci.id] = ci
                out.notifications.append((stored, rule))


async def judge_runs(
    conn: AsyncConnection, ci: CIRef, runs: Sequence[HistoryRun]
) -> list[tuple[JudgedRun, str | None]]:
    """Each run of `ci` judged against the other CIs on its patch set (see
    :func:`cidash.domain.judgement.judge_on_patchset`), with the reference CI's newest result there."""
    results = await q.patchset_results(conn, {run.patchset_id for run in runs})
    references = set((await q.reference_ids(conn)).get(ci.server_id, []))
    judged = []
    for index, run in enumerate(runs):
        if index % 500 == 499:
            await asyncio.sleep(0)  # a week of a busy CI is CPU: others get the loop
        on_patchset = [(other.ci_system_id, other.result) for other in results.get(run.patchset_id, ())]
        verdict, reference = judge_on_patchset(run.cls, ci.id, on_patchset, references)
        judged.append(
            (JudgedRun(run.id, run.posted_at, run.result, run.project, run.change, run.patchset, verdict), reference)
        )
    return judged


# -- what operators do: ack, silence, maintenance (any replica; the engine needs not run here) ----------


async def _note(
    store: Store, incident_id: int, action: str, author: str, note: str | None, until: datetime | None,
    values: dict[str, Any],
) -> tuple[IncidentOut, list[FeedMessage]] | None:  # fmt: skip
    now = datetime.now(UTC)

    async def work(conn: AsyncConnection) -> tuple[IncidentOut, list[FeedMessage]] | None:
        before = await q.get_incident(conn, incident_id)
        if before is None:
            return None
        await q.update_incident(conn, incident_id, {**values, "updated_at": now})
        await q.add_note(conn, incident_id, action, author, note, until, now)
        incident = await q.get_incident(conn, incident_id)
        assert incident is not None
        ci = await q.ci_refs(conn, [(incident.server, incident.ci)])
        ci_id = ci[(incident.server, incident.ci)].id if ci else None
        data = {"event": "update", **incident.model_dump(mode="json")}
        messages = await feed.append(conn, [feed.FeedEntry("incident", data, ci_id, incident.scope or None)])
        return incident, messages

    return await store.write(work)


async def acknowledge(
    store: Store, incident_id: int, author: str, note: str | None, *, undo: bool = False
) -> tuple[IncidentOut, list[FeedMessage]] | None:
    """Ack (or unack) an incident: who, when, a note; None when there is no such incident."""
    now = datetime.now(UTC)
    values: dict[str, Any] = (
        {"acked_by": None, "acked_at": None, "ack_note": None}
        if undo
        else {"acked_by": author[:255], "acked_at": now, "ack_note": note}
    )
    return await _note(store, incident_id, "unack" if undo else "ack", author, note, None, values)


async def silence_incident(
    store: Store,
    incident_id: int,
    author: str,
    reason: str | None,
    until: datetime | None,
    *,
    undo: bool = False,
) -> tuple[IncidentOut, list[FeedMessage]] | None:
    """Silence an incident until `until`, or until it resolves when `until` is None (or lift it)."""
    values: dict[str, Any] = (
        {"silenced_until": None, "silenced_until_resolved": False, "silenced_by": None, "silence_reason": None}
        if undo
        else {
            "silenced_until": until,
            "silenced_until_resolved": until is None,
            "silenced_by": author[:255],
            "silence_reason": reason,
        }
    )
    return await _note(store, incident_id, "unsilence" if undo else "silence", author, reason, until, values)
