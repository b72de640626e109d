"""Alerts: rules evaluated on newly stored runs (and on a timer for silence), stored in ``alerts``
with a feed message each, state changes of the CI systems, and signed webhook deliveries.

How the collector uses it, after every write that inserted runs::

    stats = await store.write_comments(batch)          # store.after_insert = hooks.after_insert
    messages = stats.after_insert or []
    await bus.publish(messages)
    await bus.publish(await engine.on_feed(messages))   # or engine.on_runs([RunOut, ...])

and every minute or so ``await bus.publish(await engine.tick())`` (silence is time-based).

The rules look at the database, not at in-memory counters, so a restart, a late REST copy of an
older run or a replayed batch gives the same answers; the ``alerts`` table is the memory that
keeps a condition from alerting twice:

* ``failure``: once per failed run (test failure or infra error); with
  ``only_when_reference_passed``, only when the newest reference-CI result on the same patch set
  is SUCCESS; a reference success that arrives after the failure fires it then.
* ``consecutive_failures``: once per streak (a success ends the streak); ``other`` results
  (SKIPPED, unknown words) neither extend nor end it.
* ``failure_rate``: failures / (successes + failures) over ``window_s`` above ``threshold`` with at
  least ``min_runs``; again only after the rate fell back to the threshold or a window passed.
* ``silent`` (:meth:`AlertEngine.tick`): the CI's last comment (``ci_systems.last_seen``) is
  older than ``silent_s`` and a patch set of its projects (the rule's, else those it reported on
  in the last 14 days) created after that comment has waited ``silent_s`` (other CIs reported on
  it); once per silence.
* ``recovered``: the first success after the CI's newest failing/silent alert.

Only runs posted within ``max_age_s`` (default a day) of now can fire alerts: a history import
does not page anyone. A CI's state (``failing`` after consecutive_failures/failure_rate,
``silent``, ``healthy`` after recovered) changes with those alerts; each change is a ``state``
feed message right after its alert. A new alert of a rule whose previous alert for that CI was
muted stays muted (no webhook, no toast) until the condition cleared (a recovered alert; for
``failure``, a success).

On MySQL/MariaDB the alert rows are inserted under the feed lock (:func:`cidash.store.feed.lock_feed`),
so alert ids, like feed ids, increase in commit order.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from cidash.config import AlertRuleConfig, Settings
from cidash.errors import ConfigError
from cidash.store import alerts_store as q
from cidash.store import feed
from cidash.store.alerts_store import CIRef, HistoryRun, NewAlert, PastAlert
from cidash.store.engine import writer_engine
from cidash.store.types import to_aware_utc
from cidash.store.writer import Store
from cidash.urls import redact_url
from cidash.views import AlertOut, AlertRuleOut, FeedMessage, RunOut, State
from cidash.webhooks import WebhookSender

log = logging.getLogger(__name__)

HOUR = 3600.0
DEFAULT_RULES: tuple[AlertRuleConfig, ...] = (
    AlertRuleConfig(name="consecutive-failures", kind="consecutive_failures", count=3, severity="warning"),
    AlertRuleConfig(
        name="failure-rate", kind="failure_rate", threshold=0.5, window_s=6 * HOUR, min_runs=10, severity="critical"
    ),
    AlertRuleConfig(name="silent", kind="silent", silent_s=6 * HOUR, severity="warning"),
    AlertRuleConfig(name="recovered", kind="recovered", severity="info"),
)
FAILING_KINDS = frozenset({"consecutive_failures", "failure_rate"})
PROBLEM_KINDS = FAILING_KINDS | {"silent"}
STATE_KINDS = PROBLEM_KINDS | {"recovered"}
FAILED = frozenset({"failure", "infra"})
CATCH_UP_WINDOW = timedelta(minutes=10)  # at takeover: runs stored this recently are evaluated again
PROJECTS_LOOKBACK = timedelta(days=14)  # "its projects": where it reported recently
SILENCE_LOOKBACK = timedelta(days=7)  # how far back a silence is looked for patch sets
REFERENCE_LOOKBACK = timedelta(days=14)  # how old a reference result on the patch set may be
_NEW = 10**15  # order keys of alerts made in this evaluation sort after every stored id
_MYSQL_RETRYABLE = {1205, 1213}


def state_of(kind: str) -> State:
    if kind in FAILING_KINDS:
        return "failing"
    if kind == "silent":
        return "silent"
    return "healthy"


def rule_params(rule: AlertRuleConfig) -> dict[str, float | int | str | bool | None]:
    params: dict[str, float | int | str | bool | None] = {"severity": rule.severity}
    if rule.kind == "failure":
        params["only_when_reference_passed"] = rule.only_when_reference_passed
    elif rule.kind == "consecutive_failures":
        params["count"] = rule.count
    elif rule.kind == "failure_rate":
        params.update(threshold=rule.threshold, window_s=rule.window_s, min_runs=rule.min_runs)
    elif rule.kind == "silent":
        params["silent_s"] = rule.silent_s
    return params


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds >= 2 * 86400:
        return f"{seconds // 86400} d {seconds % 86400 // 3600} h"
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def _where(run: HistoryRun) -> str:
    return f"{run.project} {run.change},{run.patchset}"


def _applies(rule: AlertRuleConfig, ci: str) -> bool:
    return not rule.ci or ci in rule.ci


def _in_scope(rule: AlertRuleConfig, run: HistoryRun) -> bool:
    return not rule.projects or run.project in rule.projects


@dataclass(slots=True)
class _Last:
    """The newest alert of a rule for a CI, stored or made in this evaluation."""

    order: int
    kind: str
    at: datetime
    created_at: datetime
    muted: bool
    stored: bool

    @classmethod
    def of(cls, alert: PastAlert) -> _Last:
        return cls(alert.id, alert.kind, alert.at, alert.created_at, alert.muted, True)


@dataclass(slots=True)
class _Pending:
    alert: NewAlert
    rule: AlertRuleConfig
    ci: CIRef
    state: tuple[State, str] | None = None


@dataclass(slots=True)
class _Context:
    """One CI's alert memory during an evaluation."""

    ci: CIRef
    last: dict[str, _Last]
    counter: int = 0
    last_success_at: datetime | None = None

    @classmethod
    def of(cls, ci: CIRef, stored: dict[str, PastAlert]) -> _Context:
        return cls(ci, {rule: _Last.of(alert) for rule, alert in stored.items()})

    def newest(self, kinds: frozenset[str]) -> _Last | None:
        found = [last for last in self.last.values() if last.kind in kinds]
        return max(found, key=lambda last: last.order) if found else None

    @property
    def state(self) -> State:
        newest = self.newest(STATE_KINDS)
        return state_of(newest.kind) if newest is not None else "unknown"

    def record(self, rule: AlertRuleConfig, at: datetime, now: datetime, muted: bool) -> None:
        self.counter += 1
        self.last[rule.name] = _Last(_NEW + self.counter, rule.kind, at, now, muted, False)


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


class AlertEngine:
    """Evaluates the alert rules; see the module docstring. One engine per collector process;
    when replicas share the collecting, pass `servers` (a list, or a callable read at every call:
    the servers this replica collects now) so that each CI is evaluated by one replica only."""

    def __init__(
        self,
        store: Store,
        rules: Sequence[AlertRuleConfig] | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
        servers: Sequence[str] | Callable[[], Sequence[str]] | None = None,
        max_age_s: float = 86400.0,
        webhooks: WebhookSender | None = None,
    ) -> None:
        self.rules: tuple[AlertRuleConfig, ...] = tuple(rules) if rules else DEFAULT_RULES
        names = [rule.name for rule in self.rules]
        if len(names) != len(set(names)):
            raise ConfigError("alert rule names must be unique")
        self._store = store
        self._writes = writer_engine(store.engine)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._servers_of: Callable[[], Sequence[str]] | None
        if callable(servers):
            self._servers_of = servers
        elif servers is not None:
            fixed = list(servers)
            self._servers_of = lambda: fixed
        else:
            self._servers_of = None
        self._max_age = timedelta(seconds=max_age_s)
        self.webhooks = webhooks or WebhookSender(store)
        self._lock = asyncio.Lock()

    def _servers(self) -> list[str] | None:
        return list(self._servers_of()) if self._servers_of is not None else None

    @classmethod
    def from_settings(cls, store: Store, settings: Settings, **options: Any) -> AlertEngine:
        """The configured rules, or :data:`DEFAULT_RULES` when none are configured."""
        return cls(store, settings.alerts or None, **options)

    def rule_views(self) -> list[AlertRuleOut]:
        return rule_views(self.rules)

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

    async def on_runs(self, runs: Sequence[RunOut]) -> list[FeedMessage]:
        """Evaluate the rules on newly stored runs; store the alerts (and state changes) with their
        feed rows in one transaction; start their webhook deliveries; the messages to publish."""
        if not runs:
            return []
        async with self._lock:
            now = self._clock()
            servers = self._servers()
            pending: list[_Pending] = []
            async with self._store.engine.connect() as conn:
                refs = await q.ci_refs(conn, {(run.server, run.ci) for run in runs})
                if servers is not None:
                    refs = {key: ref for key, ref in refs.items() if ref.server in servers}
                by_ci: dict[int, list[RunOut]] = {}
                for run in runs:
                    ref = refs.get((run.server, run.ci))
                    if ref is None:
                        continue
                    by_ci.setdefault(ref.id, []).append(run)
                contexts = await self._contexts(conn, [ref for ref in refs.values() if ref.id in by_ci])
                fired: set[tuple[str, int]] = set()
                for ci_id, ci_runs in by_ci.items():
                    await self._evaluate(conn, contexts[ci_id], ci_runs, now, pending, fired)
                await self._reference_pass(conn, runs, refs, contexts, now, pending, fired)
            return await self._commit(pending)

    async def catch_up(self, server: str, window: timedelta = CATCH_UP_WINDOW) -> list[FeedMessage]:
        """Evaluate again the runs of `server` stored in the last `window`. A collector killed
        between committing runs and evaluating them owes their alerts; the replica that takes
        over pays them. Runs that were evaluated already alert nothing twice."""
        since = self._clock() - window
        async with self._store.engine.connect() as conn:
            messages = await feed.run_messages_created_since(conn, since)
        return await self.on_feed([m for m in messages if m.data.get("server") == server])

    async def tick(self, now: datetime | None = None) -> list[FeedMessage]:
        """Time-based rules (silent); the messages to publish."""
        rules = [rule for rule in self.rules if rule.kind == "silent"]
        if not rules:
            return []
        async with self._lock:
            now = to_aware_utc(now) if now is not None else self._clock()
            pending: list[_Pending] = []
            async with self._store.engine.connect() as conn:
                servers = self._servers()
                if servers is not None and not servers:
                    return []
                cis = await q.all_ci_refs(conn, servers)
                contexts = await self._contexts(conn, cis)
                for ci in cis:
                    await self._silence(conn, contexts[ci.id], [r for r in rules if _applies(r, ci.name)], now, pending)
            return await self._commit(pending)

    async def mute(self, alert_id: int, muted: bool) -> AlertOut | None:
        """Mute or unmute an alert; the alert as stored now, None when there is no such alert."""
        async with self._writes.begin() as conn:
            found = await q.set_muted(conn, alert_id, muted)
        if not found:
            return None
        async with self._store.engine.connect() as conn:
            return await q.get_alert(conn, alert_id)

    # -- evaluation ----------------------------------------------------------------------------
    async def _contexts(self, conn: AsyncConnection, cis: Sequence[CIRef]) -> dict[int, _Context]:
        stored = await q.latest_alerts(conn, [ci.id for ci in cis])
        return {ci.id: _Context.of(ci, stored.get(ci.id, {})) for ci in cis}

    def _fire(
        self,
        ctx: _Context,
        rule: AlertRuleConfig,
        message: str,
        now: datetime,
        pending: list[_Pending],
        *,
        run: HistoryRun | None = None,
        at: datetime | None = None,
        muted: bool | None = None,
    ) -> None:
        if muted is None:
            muted = rule.kind not in ("recovered", "silent") and self._mute_goes_on(ctx, rule) is not None
        before = ctx.state
        ctx.record(rule, at or (run.posted_at if run is not None else now), now, muted)
        alert = NewAlert(
            rule=rule.name,
            kind=rule.kind,
            ci_system_id=ctx.ci.id,
            project=run.project if run is not None else None,
            severity=rule.severity,
            message=message,
            created_at=now,
            run_id=run.id if run is not None else None,
            muted=muted,
        )
        item = _Pending(alert, rule, ctx.ci)
        if rule.kind in STATE_KINDS and ctx.state != before:
            item.state = (ctx.state, message)
        pending.append(item)

    def _mute_goes_on(self, ctx: _Context, rule: AlertRuleConfig) -> _Last | None:
        """The previous alert of `rule` when it is muted and no recovered alert came since."""
        previous = ctx.last.get(rule.name)
        if previous is None or not previous.muted:
            return None
        recovered = ctx.newest(frozenset({"recovered"}))
        return previous if recovered is None or recovered.order < previous.order else None

    async def _failure_muted(
        self, conn: AsyncConnection, ctx: _Context, rule: AlertRuleConfig, run: HistoryRun
    ) -> bool:
        """A `failure` alert stays muted while the CI had no success since the muted one."""
        previous = self._mute_goes_on(ctx, rule)
        if previous is None:
            return False
        if ctx.last_success_at is not None and previous.at < ctx.last_success_at < run.posted_at:
            return False
        return not await q.success_between(conn, ctx.ci.id, previous.at, run.posted_at, rule.projects or None)

    async def _evaluate(
        self,
        conn: AsyncConnection,
        ctx: _Context,
        batch: Sequence[RunOut],
        now: datetime,
        pending: list[_Pending],
        fired: set[tuple[str, int]],
    ) -> None:
        rules = [rule for rule in self.rules if _applies(rule, ctx.ci.name) and rule.kind != "silent"]
        fresh_after = now - self._max_age
        fresh = [run for run in batch if to_aware_utc(run.posted_at) >= fresh_after]
        if not rules or not fresh:
            return
        evaluate = {run.id for run in fresh}
        first = min(to_aware_utc(run.posted_at) for run in fresh)
        last = max(to_aware_utc(run.posted_at) for run in fresh)
        lower = first
        for rule in rules:
            if rule.kind == "failure_rate":
                window = timedelta(seconds=rule.window_s)
                lower = min(lower, first - window)
                previous = ctx.last.get(rule.name)
                if previous is not None and previous.at > first - window:
                    # whether the rate fell back since that alert needs full windows after it
                    lower = min(lower, previous.at - window)
        history = await q.runs_between(conn, ctx.ci.id, lower, last)
        if not any(run.id in evaluate for run in history):
            return

        trackers: list[_Tracker] = []
        for rule in rules:
            if rule.kind == "consecutive_failures":
                before = await q.runs_before(conn, ctx.ci.id, lower, rule.count, rule.projects or None)
                trackers.append(_Streak(rule, before, history))
            elif rule.kind == "failure_rate":
                trackers.append(_Rate(rule, lower))
            elif rule.kind == "failure":
                trackers.append(_Failure(rule))
            else:
                trackers.append(_Recovered(rule))

        failures = [run for run in history if run.id in evaluate and run.cls in FAILED]
        stored_alerts: set[tuple[str, int]] = set()
        reference: dict[tuple[int, int, int], str] = {}
        failure_rules = [rule for rule in rules if rule.kind == "failure"]
        if failure_rules and failures:
            stored_alerts = await q.alerted_runs(conn, ctx.ci.id, [run.id for run in failures], now - 2 * self._max_age)
            if any(rule.only_when_reference_passed for rule in failure_rules):
                ids = [ci_id for ci_id in (await q.reference_ids(conn)).get(ctx.ci.server_id, []) if ci_id != ctx.ci.id]
                keys = {(ctx.ci.server_id, run.change, run.patchset) for run in failures}
                reference = await q.reference_results(conn, ids, keys, first - REFERENCE_LOOKBACK)

        env = _Env(self, conn, ctx, now, pending, fired | stored_alerts, reference)
        for run in history:
            new = run.id in evaluate
            for tracker in trackers:
                await tracker.step(env, run, new)
            if run.cls == "success" and (ctx.last_success_at is None or run.posted_at > ctx.last_success_at):
                ctx.last_success_at = run.posted_at
        fired.update(env.fired)

    async def _reference_pass(
        self,
        conn: AsyncConnection,
        runs: Sequence[RunOut],
        refs: dict[tuple[str, str], CIRef],
        contexts: dict[int, _Context],
        now: datetime,
        pending: list[_Pending],
        fired: set[tuple[str, int]],
    ) -> None:
        """A reference CI's new success fires the `only_when_reference_passed` failure alerts of the
        failures other CIs posted on that patch set before it arrived."""
        rules = [rule for rule in self.rules if rule.kind == "failure" and rule.only_when_reference_passed]
        if not rules:
            return
        fresh_after = now - self._max_age
        successes: dict[int, set[tuple[str, int, int]]] = {}
        for run in runs:
            ref = refs.get((run.server, run.ci))
            if ref is None or not ref.is_reference or run.result_class != "success":
                continue
            successes.setdefault(ref.server_id, set()).add((run.project, run.change, run.patchset))
        for server_id, patchsets in successes.items():
            others = await q.runs_on_patchsets(conn, server_id, patchsets, fresh_after)
            candidates = [item for item in others if item.run.cls in FAILED]
            if not candidates:
                continue
            keys = {(server_id, item.run.change, item.run.patchset) for item in candidates}
            reference = await q.reference_results(
                conn, (await q.reference_ids(conn)).get(server_id, []), keys, fresh_after - REFERENCE_LOOKBACK
            )
            for item in sorted(candidates, key=lambda found: (found.run.posted_at, found.run.id)):
                if reference.get((server_id, item.run.change, item.run.patchset)) != "SUCCESS":
                    continue
                ctx = contexts.get(item.ci_system_id)
                if ctx is None:
                    ci = await q.ci_ref_by_id(conn, item.ci_system_id)
                    if ci is None or ci.is_reference:
                        continue
                    ctx = (await self._contexts(conn, [ci]))[ci.id]
                    contexts[ci.id] = ctx
                if ctx.ci.is_reference:
                    continue
                stored = await q.alerted_runs(conn, ctx.ci.id, [item.run.id], now - 2 * self._max_age)
                for rule in rules:
                    key = (rule.name, item.run.id)
                    if (
                        not _applies(rule, ctx.ci.name)
                        or not _in_scope(rule, item.run)
                        or key in fired
                        or key in stored
                    ):
                        continue
                    fired.add(key)
                    muted = await self._failure_muted(conn, ctx, rule, item.run)
                    message = _failure_message(ctx.ci, item.run, True)
                    self._fire(ctx, rule, message, now, pending, run=item.run, muted=muted)

    async def _silence(
        self,
        conn: AsyncConnection,
        ctx: _Context,
        rules: Sequence[AlertRuleConfig],
        now: datetime,
        pending: list[_Pending],
    ) -> None:
        ci = ctx.ci
        if not rules or ci.last_seen is None:
            return
        last_seen = to_aware_utc(ci.last_seen)
        own_projects: list[str] | None = None
        for rule in rules:
            previous = ctx.last.get(rule.name)
            if previous is not None and previous.created_at >= last_seen:
                continue  # this silence was reported already
            cut = now - timedelta(seconds=rule.silent_s)
            if last_seen > cut:
                continue
            projects = list(rule.projects)
            if not projects:
                if own_projects is None:
                    own_projects = await q.projects_of(conn, ci.id, now - PROJECTS_LOOKBACK)
                projects = own_projects
            after = max(last_seen, cut - SILENCE_LOOKBACK)
            waiting = await q.waiting_patchsets(conn, ci.server_id, projects, ci.id, after, cut)
            if not waiting:
                continue
            count = f"{waiting}+" if waiting >= 100 else str(waiting)
            plural = "s" if waiting != 1 else ""
            message = (
                f"{ci.name} has not commented for {_duration((now - last_seen).total_seconds())} although "
                f"{count} patch set{plural} waited at least {_duration(rule.silent_s)} in its projects"
            )
            self._fire(ctx, rule, message, now, pending, at=now)

    # -- storing ---------------------------------------------------------------------------------
    async def _commit(self, pending: list[_Pending]) -> list[FeedMessage]:
        if not pending:
            return []
        for attempt in (1, 2, 3):
            try:
                async with self._writes.begin() as conn:
                    messages, outs = await self._insert(conn, pending)
                break
            except DBAPIError as exc:
                code = getattr(exc.orig, "args", (None,))[0] if exc.orig is not None else None
                if attempt == 3 or code not in _MYSQL_RETRYABLE:
                    raise
                log.warning("alert write conflicted (MySQL error %s); retrying", code)
        for item, out in zip(pending, outs, strict=True):
            if not out.muted and item.rule.webhooks:
                self.webhooks.send(out, item.rule.webhooks)
        return messages

    async def _insert(self, conn: AsyncConnection, pending: list[_Pending]) -> tuple[list[FeedMessage], list[AlertOut]]:
        await feed.lock_feed(conn)  # alert ids in commit order, like feed ids
        outs: list[AlertOut] = []
        entries: list[feed.FeedEntry] = []
        owners: list[int | None] = []
        for item in pending:
            alert_id = await q.insert_alert(conn, item.alert)
            out = AlertOut(
                id=alert_id,
                rule=item.alert.rule,
                kind=item.alert.kind,  # type: ignore[arg-type]
                ci=item.ci.name,
                server=item.ci.server,
                project=item.alert.project,
                severity=item.alert.severity,  # type: ignore[arg-type]
                message=item.alert.message,
                created_at=item.alert.created_at,
                run_id=item.alert.run_id,
                muted=item.alert.muted,
            )
            outs.append(out)
            entries.append(feed.FeedEntry("alert", out.model_dump(mode="json"), item.ci.id, out.project))
            owners.append(alert_id)
            if item.state is not None:
                state, reason = item.state
                data: dict[str, object] = {
                    "ci": item.ci.name,
                    "server": item.ci.server,
                    "state": state,
                    "state_reason": reason,
                }
                entries.append(feed.FeedEntry("state", data, item.ci.id, None))
                owners.append(None)
        messages = await feed.append(conn, entries)
        await q.set_feed_ids(
            conn,
            [
                (alert_id, message.id)
                for alert_id, message in zip(owners, messages, strict=True)
                if alert_id is not None
            ],
        )
        return messages, outs


# -- the rules, as trackers stepping through a CI's runs in time order ----------------------------------


@dataclass(slots=True)
class _Env:
    engine: AlertEngine
    conn: AsyncConnection
    ctx: _Context
    now: datetime
    pending: list[_Pending]
    seen: set[tuple[str, int]]  # (rule, run id) alerted before or earlier in this call
    reference: dict[tuple[int, int, int], str]
    fired: set[tuple[str, int]] = field(default_factory=set)

    def fire(self, rule: AlertRuleConfig, run: HistoryRun, message: str, muted: bool | None = None) -> None:
        self.fired.add((rule.name, run.id))
        self.engine._fire(self.ctx, rule, message, self.now, self.pending, run=run, muted=muted)


class _Tracker:
    rule: AlertRuleConfig

    async def step(self, env: _Env, run: HistoryRun, new: bool) -> None:
        raise NotImplementedError


def _failure_message(ci: CIRef, run: HistoryRun, reference_passed: bool) -> str:
    tail = " although the reference CI passed it" if reference_passed else ""
    return f"{ci.name} reported {run.result} on {_where(run)}{tail}"


class _Failure(_Tracker):
    def __init__(self, rule: AlertRuleConfig) -> None:
        self.rule = rule

    async def step(self, env: _Env, run: HistoryRun, new: bool) -> None:
        rule = self.rule
        if not new or run.cls not in FAILED or not _in_scope(rule, run):
            return
        if (rule.name, run.id) in env.seen or (rule.name, run.id) in env.fired:
            return
        if rule.only_when_reference_passed:
            if env.ctx.ci.is_reference:
                return
            if env.reference.get((env.ctx.ci.server_id, run.change, run.patchset)) != "SUCCESS":
                return  # not (yet) passed by the reference: a later reference success fires it
        muted = await env.engine._failure_muted(env.conn, env.ctx, rule, run)
        env.fire(rule, run, _failure_message(env.ctx.ci, run, rule.only_when_reference_passed), muted)


class _Streak(_Tracker):
    """consecutive_failures: fires once per streak of at least `count` failures."""

    def __init__(self, rule: AlertRuleConfig, before: list[HistoryRun], history: list[HistoryRun]) -> None:
        self.rule = rule
        self.streak = 0
        # whether the run before the current streak is known (a success, or the start of history)
        self.bounded = len(before) < rule.count
        self.start: datetime | None = None  # first failure of the current streak when bounded
        self.alerted = False  # fired during this walk for the current streak
        self.first_at = before[0].posted_at if before else (history[0].posted_at if history else None)
        for run in before:
            self._count(run)

    def _count(self, run: HistoryRun) -> None:
        if run.cls == "success":
            self.streak, self.bounded, self.start, self.alerted = 0, True, None, False
        elif run.cls in FAILED:
            if self.streak == 0 and self.bounded:
                self.start = run.posted_at
            self.streak += 1

    async def _alerted_before(self, env: _Env) -> bool:
        if self.alerted:
            return True
        previous = env.ctx.last.get(self.rule.name)
        if previous is None:
            return False
        if self.bounded:
            return self.start is not None and previous.at >= self.start
        # the streak started before the runs looked at: all of those are failures
        if self.first_at is None or previous.at >= self.first_at:
            return True
        return not await q.success_between(
            env.conn, env.ctx.ci.id, previous.at, self.first_at, self.rule.projects or None
        )

    async def step(self, env: _Env, run: HistoryRun, new: bool) -> None:
        if not _in_scope(self.rule, run):
            return
        self._count(run)
        if not new or run.cls not in FAILED or self.streak < self.rule.count:
            return
        if await self._alerted_before(env):
            self.alerted = True
            return
        self.alerted = True
        env.fire(
            self.rule, run, f"{env.ctx.ci.name}: {self.streak} failures in a row (last: {run.result} on {_where(run)})"
        )


class _Rate(_Tracker):
    """failure_rate over a sliding window; fires again only after the rate fell back or a window passed."""

    def __init__(self, rule: AlertRuleConfig, lower: datetime) -> None:
        self.rule = rule
        self.window = timedelta(seconds=rule.window_s)
        self.full_from = lower + self.window  # windows ending here or later are complete
        self.runs: deque[tuple[datetime, bool]] = deque()
        self.failed = 0
        self.cleared = False

    async def step(self, env: _Env, run: HistoryRun, new: bool) -> None:
        rule = self.rule
        if not _in_scope(rule, run) or run.cls == "other":
            return
        failed = run.cls in FAILED
        self.runs.append((run.posted_at, failed))
        self.failed += failed
        while self.runs and self.runs[0][0] <= run.posted_at - self.window:
            self.failed -= self.runs.popleft()[1]
        total = len(self.runs)
        sampled = total >= rule.min_runs
        above = sampled and self.failed / total > rule.threshold
        previous = env.ctx.last.get(rule.name)
        if not above:
            if sampled and run.posted_at >= self.full_from and previous is not None and run.posted_at > previous.at:
                self.cleared = True  # fell back to the threshold since the last alert
            return
        if not new:
            return
        if previous is not None and not self.cleared and previous.at > run.posted_at - self.window:
            return
        self.cleared = False
        env.fire(
            rule,
            run,
            f"{env.ctx.ci.name}: {self.failed} of {total} runs failed ({self.failed / total:.0%}) "
            f"in the last {_duration(rule.window_s)} (above {rule.threshold:.0%})",
        )


class _Recovered(_Tracker):
    def __init__(self, rule: AlertRuleConfig) -> None:
        self.rule = rule

    async def step(self, env: _Env, run: HistoryRun, new: bool) -> None:
        if not new or run.cls != "success" or not _in_scope(self.rule, run):
            return
        ctx = env.ctx
        problem = ctx.newest(PROBLEM_KINDS)
        if problem is None or run.posted_at <= problem.at:
            return
        recovered = ctx.newest(frozenset({"recovered"}))
        if recovered is not None and recovered.order > problem.order:
            return
        what = {"silent": "silence", "failure_rate": "high failure rate"}.get(problem.kind, "failures")
        env.fire(self.rule, run, f"{ctx.ci.name} recovered after {what}: {run.result} on {_where(run)}")
