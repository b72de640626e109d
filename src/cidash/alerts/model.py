"""The incident model, without a database: how runs are judged, when a rule's condition holds, and
how a condition becomes an incident (flap damping, severity by duration, the summary line).

An incident is one condition of one rule for one CI (and one project when the rule is scoped per
project) with a lifecycle: it opens when the condition has held long enough, stays open however
many runs join it, and resolves when the condition has been clear long enough. The alert engine
(:mod:`cidash.alerts.engine`) feeds stored runs through :func:`walk` and keeps what comes out; the demo
week test feeds the simulator's runs straight in.

Runs are judged relatively (:mod:`cidash.domain.judgement`, the one judgement the recheck burden
shares): a failure counts against a CI only when the reference CI passed the same patch set, or,
with no reference result, when most of the other CIs that reported on it passed; otherwise the
change was broken and the failure is *inhibited* (shown, never counted), or *pending* while nobody
else has judged the patch set.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cidash.config import AlertRuleConfig
from cidash.domain.judgement import RunVerdict
from cidash.domain.judgement import judge as judge  # exported: the model judges with it
from cidash.domain.spans import duration_text

RUN_KINDS = frozenset({"failure", "consecutive_failures", "failure_rate"})
COMMENT_KINDS = frozenset({"unreadable"})  # walked over the CI's comments (unread: "fail", read: "pass")
ALL_PROJECTS = ""  # the scope of a rule that is not split per project
CLEAR_RUNS = 5  # judged passes a cleared streak or rate needs before its incident resolves


@dataclass(frozen=True, slots=True)
class JudgedRun:
    id: int
    posted_at: datetime
    result: str
    project: str
    change: int
    patchset: int
    verdict: RunVerdict


@dataclass(slots=True)
class Interval:
    """One incident as the walk sees it: the condition began at `started_at` (the first run that
    made it true), fired at `fired_at` (after damping), and, when `resolved_at` is set, was clear
    from then on for the rule's clear time."""

    rule: str
    kind: str
    scope: str
    started_at: datetime
    fired_at: datetime | None = None
    resolved_at: datetime | None = None
    members: list[JudgedRun] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(run.verdict == "fail" for run in self.members)

    @property
    def passed(self) -> int:
        return sum(run.verdict == "pass" for run in self.members)

    @property
    def inhibited(self) -> int:
        return sum(run.verdict == "inhibited" for run in self.members)

    @property
    def last_run_at(self) -> datetime | None:
        return self.members[-1].posted_at if self.members else None


@dataclass(frozen=True, slots=True)
class Damping:
    """How long and over how many runs a condition must hold before its incident opens, and how long
    and over how many passes it must be clear before it resolves."""

    hold_s: float
    hold_runs: int
    clear_s: float
    clear_runs: int


def damping(rule: AlertRuleConfig) -> Damping:
    """A rule's damping: its own settings, else the kind's defaults."""
    default = DEFAULT_DAMPING.get(rule.kind, Damping(0.0, 1, 0.0, 1))
    return Damping(
        rule.for_s if rule.for_s is not None else default.hold_s,
        rule.for_runs if rule.for_runs is not None else default.hold_runs,
        rule.clear_s if rule.clear_s is not None else default.clear_s,
        rule.clear_runs if rule.clear_runs is not None else default.clear_runs,
    )


# per kind: hold the condition this long and over this many counted failures (unread comments for
# `unreadable`) before firing; be clear this long and over this many judged passes (read comments)
# before resolving. Time alone never clears: a broken CI's quiet night is no evidence it recovered.
DEFAULT_DAMPING: dict[str, Damping] = {
    "failure": Damping(0.0, 1, 0.0, 1),
    "consecutive_failures": Damping(1800.0, 1, 3600.0, CLEAR_RUNS),
    "failure_rate": Damping(3600.0, 1, 3600.0, CLEAR_RUNS),
    "silent": Damping(0.0, 1, 0.0, 1),
    "unreadable": Damping(1800.0, 1, 3600.0, CLEAR_RUNS),
}


class _Condition:
    """A rule's condition over one scope's runs, stepped in time order."""

    def step(self, run: JudgedRun) -> bool | None:
        """The condition after `run` (None: unchanged) and, when it just became true, `self.start`."""
        raise NotImplementedError

    start: datetime | None = None


class _Streak(_Condition):
    """Holds from `count` counted failures in a row until `count - 1` passes in a row (one pass
    between failures of a broken CI does not end its incident)."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.streak = 0
        self.passes = 0
        self.holding = False

    def step(self, run: JudgedRun) -> bool | None:
        if run.verdict == "pass":
            self.streak = 0
            self.passes += 1
            if self.holding and self.passes < max(1, self.count - 1):
                return None
            self.holding = False
            return False
        if run.verdict != "fail":
            return None
        self.passes = 0
        if self.holding:
            return True
        self.streak += 1
        if self.streak == 1:
            self.start = run.posted_at
        self.holding = self.streak >= self.count
        return self.holding


class _Rate(_Condition):
    def __init__(self, threshold: float, window_s: float, min_runs: int) -> None:
        self.threshold = threshold
        self.window = timedelta(seconds=window_s)
        self.min_runs = min_runs
        self.runs: deque[tuple[datetime, bool]] = deque()
        self.failed = 0

    def step(self, run: JudgedRun) -> bool | None:
        if run.verdict not in ("pass", "fail"):
            return None
        failed = run.verdict == "fail"
        self.runs.append((run.posted_at, failed))
        self.failed += failed
        # the window, or the last `min_runs` runs when it holds fewer (quiet nights)
        while len(self.runs) > self.min_runs and self.runs[0][0] <= run.posted_at - self.window:
            self.failed -= self.runs.popleft()[1]
        if len(self.runs) < self.min_runs:
            return None  # too few to say either way
        above = self.failed / len(self.runs) > self.threshold
        if above:
            self.start = next(at for at, bad in self.runs if bad)
        return above


class _Each(_Condition):
    """``failure``: holds from a counted failure until the next pass."""

    def step(self, run: JudgedRun) -> bool | None:
        if run.verdict == "fail":
            self.start = run.posted_at
            return True
        return False if run.verdict == "pass" else None


def _condition(rule: AlertRuleConfig) -> _Condition:
    if rule.kind == "consecutive_failures":
        return _Streak(rule.count)
    if rule.kind in ("failure_rate", "unreadable"):
        return _Rate(rule.threshold, rule.window_s, rule.min_runs)
    return _Each()


RECENT_RUNS = 2000


class Damper:
    """Turns a condition's true/false steps into incidents: fires once it held `hold_s` and saw
    `hold_runs` counted failures, resolves once it was clear `clear_s` and over `clear_runs` judged
    passes (a flap back before both keeps the incident open)."""

    def __init__(self, rule: AlertRuleConfig, scope: str) -> None:
        self.rule = rule
        self.scope = scope
        self.damping = damping(rule)
        self.current: Interval | None = None
        self.clear_since: datetime | None = None
        self.clear_passes = 0  # judged passes since it cleared, the one that cleared it included
        self.done: list[Interval] = []
        self.recent: deque[JudgedRun] = deque(maxlen=RECENT_RUNS)  # the runs before it began to hold

    def _advance(self, at: datetime) -> None:
        """Time passed until `at`: fire a held condition, resolve a long enough clear."""
        current = self.current
        if current is None:
            return
        if current.fired_at is None:
            if (
                self.clear_since is None
                and (at - current.started_at).total_seconds() >= self.damping.hold_s
                and current.failed >= self.damping.hold_runs
            ):
                current.fired_at = max(at, current.started_at)
            return
        if (
            self.clear_since is not None
            and self.clear_passes >= self.damping.clear_runs
            and (at - self.clear_since).total_seconds() >= self.damping.clear_s
        ):
            current.resolved_at = self.clear_since
            current.members = [run for run in current.members if run.posted_at < self.clear_since]
            self.done.append(current)
            self.current, self.clear_since = None, None

    def step(self, run: JudgedRun, holds: bool | None, start: datetime | None) -> None:
        self._advance(run.posted_at)
        current = self.current
        if holds is True:
            if current is None:
                began = start or run.posted_at
                current = self.current = Interval(self.rule.name, self.rule.kind, self.scope, began)
                current.members = [earlier for earlier in self.recent if earlier.posted_at >= began]
                self.clear_since = None
            elif self.clear_since is not None:
                self.clear_since = None
        elif holds is False and current is not None:
            if current.fired_at is None:
                self.current = None  # a flap that never fired
                return
            if self.clear_since is None:
                self.clear_since, self.clear_passes = run.posted_at, 0
        if self.clear_since is not None:
            self.clear_passes += run.verdict == "pass"
        if self.current is not None:
            self.current.members.append(run)
        else:
            self.recent.append(run)
        self._advance(run.posted_at)

    def finish(self, now: datetime) -> list[Interval]:
        """The incidents of the walk, the open one (if it fired) last."""
        self._advance(now)
        found = list(self.done)
        if self.current is not None and self.current.fired_at is not None:
            found.append(self.current)
        return found


def walk(rule: AlertRuleConfig, runs: Sequence[JudgedRun], now: datetime) -> list[Interval]:
    """The incidents of a run-based rule over one CI's judged runs (oldest first) up to `now`; of
    an ``unreadable`` rule over its comments (:func:`read_comment`)."""
    if rule.kind not in RUN_KINDS | COMMENT_KINDS:
        return []
    conditions: dict[str, _Condition] = {}
    dampers: dict[str, Damper] = {}
    for run in runs:
        if rule.projects and run.project not in rule.projects:
            continue
        scope = run.project if rule.per_project else ALL_PROJECTS
        condition = conditions.get(scope)
        if condition is None:
            condition = conditions[scope] = _condition(rule)
            dampers[scope] = Damper(rule, scope)
        holds = condition.step(run)
        dampers[scope].step(run, holds, condition.start)
    found: list[Interval] = []
    for damper in dampers.values():
        found.extend(damper.finish(now))
    return sorted(found, key=lambda interval: interval.started_at)


def silence(
    rule: AlertRuleConfig, last_seen: datetime | None, first_waiting: datetime | None, now: datetime
) -> datetime | None:
    """When a silence began (None: the CI is not silent): `first_waiting` is the creation time of
    the first patch set in its projects that other CIs answered after its last comment; silent once
    that patch set has waited ``silent_s``."""
    if last_seen is None or first_waiting is None:
        return None
    began = max(first_waiting, last_seen) + timedelta(seconds=rule.silent_s)
    return began if began <= now else None


def silence_over(rule: AlertRuleConfig, started_at: datetime, last_seen: datetime | None) -> bool:
    """Whether the silence that began at `started_at` ended: the CI commented since its patch set
    began waiting."""
    return last_seen is not None and last_seen > started_at - timedelta(seconds=rule.silent_s)


def read_comment(
    comment_id: int, posted_at: datetime, project: str, change: int, patchset: int, *, unread: bool
) -> JudgedRun:
    """One of a CI's comments as an ``unreadable`` rule walks it: an unread one (neither a result nor
    a start: its comment format changed) counts like a failure, a read one like a pass."""
    kind = "unread" if unread else "read"
    return JudgedRun(comment_id, posted_at, kind, project, change, patchset, "fail" if unread else "pass")


def severity(rule: AlertRuleConfig, fired_at: datetime, until: datetime) -> str:
    """The rule's severity, raised to critical once the incident has been open ``escalate_after_s``."""
    if rule.escalate_after_s is not None and (until - fired_at).total_seconds() >= rule.escalate_after_s:
        return "critical"
    return rule.severity


def clock_text(moment: datetime, now: datetime) -> str:
    return moment.strftime("%H:%M") if now - moment < timedelta(hours=20) else moment.strftime("%Y-%m-%d %H:%M")


def summary(rule: AlertRuleConfig, interval: Interval, now: datetime, *, reference: str | None = None) -> str:
    """The one line that says what is wrong, kept updated while the incident fires (`reference`:
    who passed where it failed; the reference CI is judged by most other CIs)."""
    reference = reference or "the reference CI"
    since = clock_text(interval.started_at, now)
    where = f" in {interval.scope}" if interval.scope else ""
    if rule.kind == "silent":
        return (
            f"silent since {since}{where}: patch sets in its projects waited {duration_text(rule.silent_s)} unanswered"
        )
    if rule.kind == "unreadable":
        return (
            f"unreadable since {since}: more than {rule.threshold:.0%} of its comments over "
            f"{duration_text(rule.window_s)} were neither a result nor a start (see its unread comments)"
        )
    judged = interval.failed + interval.passed
    text = f"failing since {since}{where}: {interval.failed} of {judged} runs failed where {reference} passed"
    if interval.inhibited:
        text += f" ({interval.inhibited} more failed with the change itself failing elsewhere)"
    if interval.resolved_at is not None:
        text += f"; clear since {clock_text(interval.resolved_at, now)}"
    return text
