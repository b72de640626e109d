"""Read models: the JSON shapes of `/api/v1`, shared by the store queries, the API, the dashboard and the CLI.

Times are ISO 8601 UTC strings; rates are fractions in [0, 1]; durations and latencies are seconds.
A CI system is addressed by its `name` (the Gerrit account key: username, else email or name).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from cidash.config import AlertKind
from cidash.domain.results import ResultClass

State = Literal["healthy", "degraded", "failing", "silent", "unknown"]
Window = Literal["1h", "24h", "7d", "30d"]
FeedKind = Literal["run", "alert", "state", "incident"]


class JobOut(BaseModel):
    name: str
    url: str | None
    result: str
    duration_s: int | None
    voting: bool


class RunOut(BaseModel):
    id: int
    server: str
    ci: str  # CI system name
    project: str
    branch: str
    change: int
    patchset: int
    result: str
    result_class: ResultClass
    vote: int | None
    pipeline: str | None
    posted_at: datetime
    latency_s: float | None
    message_id: str | None
    source: str
    log_url: str | None  # first job URL (http/https only), for one-click logs
    jobs: list[JobOut] = Field(default_factory=list)
    comment: str | None = None  # raw comment text, only on single-run views


class RunPage(BaseModel):
    items: list[RunOut]
    next_cursor: str | None  # opaque; pass back as ?cursor= ; None when this is the last page


class VoteQuality(BaseModel):
    """Its votes against the reference CI's on the same patch sets (the rule: GET /api/v1/measures)."""

    both_passed: int
    failed_reference_passed: int  # its -1 where the reference passed
    passed_reference_failed: int  # its +1 where the reference failed
    both_failed: int
    negatives: int  # patch sets where its latest result was a test failure (-1)
    positives: int  # ... a success (+1)
    false_negatives: int  # -1 where the reference passed and the change merged
    false_negative_share: float | None  # false_negatives / negatives
    false_positive_share: float | None  # passed_reference_failed / positives


class HealthWindow(BaseModel):
    window: Window
    runs: int
    success_rate: float | None
    failure_rate: float | None  # test failures
    infra_error_rate: float | None
    latency_p50_s: float | None
    latency_p95_s: float | None
    coverage: float | None  # covered / eligible (the rule: GET /api/v1/measures)
    eligible: int = 0  # patch sets it should have answered in the window
    covered: int = 0  # ... of which it posted a result on
    agreement: float | None  # share of patchsets shared with the reference CI where both agree
    disagreements: int  # fails where the reference passed, or the reverse
    flakiness: float | None  # share of rechecked patchsets with differing results
    recheck_recovery: float | None = None  # share of its failed patch sets that passed after a rerun there
    failed_patchsets: int = 0
    recovered: int = 0
    rechecks: int = 0  # human recheck comments aimed at it (GET /api/v1/measures)
    rechecks_per_100_runs: float | None = None  # rechecks * 100 / runs
    queue_p50_s: float | None = None  # time to first answer after the upload (GET /api/v1/measures)
    queue_p95_s: float | None = None
    vote_quality: VoteQuality | None = None  # null for the reference CI's own comparison and while pending
    metrics_pending: bool = False  # 30 d: coverage, agreement and flakiness still being computed (null until then)


class RecheckOut(BaseModel):
    """A human's recheck comment aimed at a CI (``GET /api/v1/systems/{name}/rechecks``)."""

    id: int
    posted_at: datetime
    author: str
    project: str
    branch: str
    change: int
    patchset: int
    text: str  # the comment without Gerrit's "Patch Set N:" line, clipped
    aimed: Literal["named", "plain"]  # it named the CI, or a plain recheck after a failure of the CI's own


class RecheckCases(BaseModel):
    window: Window
    total: int  # every recheck aimed at the CI in the window (`rechecks` of its health window)
    rechecks: list[RecheckOut]  # the newest of them


class SystemSummary(BaseModel):
    id: int
    name: str
    server: str
    display_name: str
    owner: str | None
    is_reference: bool
    confirmed: bool
    source: Literal["config", "group", "detected"]
    projects: list[str]
    state: State
    state_reason: str
    last_seen: datetime | None
    health: HealthWindow  # the window asked for (default 24h)
    sparkline: list[float | None]  # success rate per bucket, oldest first (24 hourly or 14 daily buckets)


class CommentCountsOut(BaseModel):
    """A CI's comments in one window by what they became (see cidash.store.reads.comments)."""

    window: Window
    results: int  # read as a result: one run each
    starts: int  # "Starting check jobs.", a vote taken back to start again
    unread: int  # neither: the parser could not read them
    unread_share: float | None  # unread / all of them; None without any comment


class UnreadCommentOut(BaseModel):
    id: int
    project: str
    change: int
    patchset: int
    posted_at: datetime
    vote: int | None
    text: str  # the comment as Gerrit sent it
    why: str  # why it was not read as a result or a start
    parsed_with: str  # parser version that read it


class SystemDetail(SystemSummary):
    windows: list[HealthWindow]
    comments: list[CommentCountsOut] = Field(default_factory=list)  # one per window, like `windows`
    unread: list[UnreadCommentOut] = Field(default_factory=list)  # the latest unread comments, newest first


class SystemPatch(BaseModel):
    display_name: str | None = None
    owner: str | None = None
    confirmed: bool | None = None
    is_reference: bool | None = None


class SeriesPoint(BaseModel):
    t: datetime  # bucket start
    runs: int
    successes: int
    failures: int
    infra_errors: int
    success_rate: float | None
    latency_p50_s: float | None
    latency_p95_s: float | None


class JobBreakdown(BaseModel):
    name: str
    runs: int
    failures: int
    infra_errors: int
    failure_rate: float
    last_failure_at: datetime | None
    last_failure_url: str | None


class GridCell(BaseModel):
    run_id: int
    result: str
    result_class: ResultClass
    vote: int | None
    posted_at: datetime
    log_url: str | None
    runs: int  # how many results this CI posted on the patchset (rechecks)


class GridRow(BaseModel):
    server: str
    change: int
    patchset: int
    project: str
    branch: str
    subject: str | None
    url: str | None
    created_at: datetime | None
    cells: dict[str, GridCell]  # CI name -> newest result on that patchset


class Grid(BaseModel):
    project: str | None
    systems: list[str]  # column order: reference CI first, then by name
    rows: list[GridRow]  # newest patchset first


class ChangeView(BaseModel):
    server: str
    change: int
    project: str
    branch: str
    subject: str | None
    url: str | None
    status: str | None
    systems: list[str]
    patchsets: list[GridRow]


SeverityName = Literal["info", "warning", "critical"]


class AlertOut(BaseModel):
    """A notification: one edge (open, resolve) of one incident; `muted` when it notified no one
    (`quiet` says why: history, silenced, maintenance)."""

    id: int  # monotonically increasing
    rule: str
    kind: AlertKind
    ci: str
    server: str
    project: str | None
    severity: SeverityName
    message: str
    created_at: datetime
    run_id: int | None
    muted: bool
    incident_id: int | None = None
    edge: Literal["open", "resolve"] | None = None
    quiet: str | None = None
    started_at: datetime | None = None  # the incident's, so that a receiver needs nothing else
    resolved_at: datetime | None = None


class IncidentOut(BaseModel):
    id: int
    ci: str
    server: str
    rule: str
    kind: AlertKind
    scope: str  # project, or "" for the CI as a whole
    state: Literal["firing", "resolved"]
    severity: SeverityName
    started_at: datetime  # the first run that made the condition true
    fired_at: datetime  # when it held long enough to open
    resolved_at: datetime | None
    last_run_at: datetime | None
    summary: str
    failed: int
    passed: int
    inhibited: int
    quiet: str | None  # why it notifies no one: history (began before the notify span), maintenance
    acked_by: str | None
    acked_at: datetime | None
    ack_note: str | None
    silenced_until: datetime | None
    silenced_until_resolved: bool
    silenced_by: str | None
    silence_reason: str | None
    updated_at: datetime


class IncidentPage(BaseModel):
    items: list[IncidentOut]
    next_cursor: str | None


class IncidentNoteOut(BaseModel):
    id: int
    action: Literal["ack", "unack", "silence", "unsilence"]
    author: str
    note: str | None
    until: datetime | None
    created_at: datetime


class TimelineRun(BaseModel):
    """A run of the incident beside the reference CI's result on the same patch set."""

    id: int
    posted_at: datetime
    project: str
    change: int
    patchset: int
    result: str
    verdict: Literal["pass", "fail", "inhibited", "pending", "other"]
    reference_result: str | None
    log_url: str | None


class IncidentDetail(BaseModel):
    incident: IncidentOut
    runs: list[TimelineRun]
    notifications: list[AlertOut]
    notes: list[IncidentNoteOut]


class AckIn(BaseModel):
    model_config = {"extra": "forbid"}
    author: str = Field(min_length=1, max_length=255)
    note: str | None = Field(default=None, max_length=1024)


class SilenceIn(BaseModel):
    """Silence until `until`, or until the incident resolves when `until` is omitted."""

    model_config = {"extra": "forbid"}
    author: str = Field(min_length=1, max_length=255)
    reason: str = Field(min_length=1, max_length=1024)
    until: datetime | None = None


class MaintenanceIn(BaseModel):
    model_config = {"extra": "forbid"}
    ci: str = Field(min_length=1)
    server: str | None = None
    starts_at: datetime
    ends_at: datetime
    author: str = Field(min_length=1, max_length=255)
    reason: str | None = Field(default=None, max_length=1024)


class MaintenanceOut(BaseModel):
    id: int
    ci: str
    server: str
    starts_at: datetime
    ends_at: datetime
    author: str
    reason: str | None
    created_at: datetime


class AlertPage(BaseModel):
    items: list[AlertOut]
    next_cursor: str | None


class AlertRuleOut(BaseModel):
    name: str
    kind: str
    ci: list[str]
    projects: list[str]
    params: dict[str, float | int | str | bool | None]
    webhooks: list[str]  # URLs with any credentials removed


class FeedMessage(BaseModel):
    """What websocket and SSE subscribers receive; `id` orders the feed and resumes it (`since`)."""

    type: FeedKind
    id: int
    data: dict[str, object]


class ServerStatus(BaseModel):
    name: str
    stream_connected: bool
    last_backfill_at: datetime | None
    last_error: str | None
    fatal: str | None
    backfill_stalled: bool = False  # the last backfill pass was cut at its deadline


class Readiness(BaseModel):
    ready: bool
    database: bool
    servers: list[ServerStatus]


class ReadinessWords(BaseModel):
    """``/readyz`` for a caller without the read token when one is set: no URL, no error text."""

    status: Literal["ready", "not ready"]
    database: Literal["up", "down"]
    collectors: Literal["ok", "degraded", "failed", "none"]  # none: this replica collects nothing

    @classmethod
    def of(cls, full: Readiness) -> ReadinessWords:
        servers = full.servers
        collectors: Literal["ok", "degraded", "failed", "none"] = "ok"
        if not servers:
            collectors = "none"
        elif any(server.fatal is not None for server in servers):
            collectors = "failed"
        elif any(
            server.last_error is not None or not server.stream_connected or server.backfill_stalled
            for server in servers
        ):
            collectors = "degraded"
        status: Literal["ready", "not ready"] = "ready" if full.ready else "not ready"
        return cls(status=status, database="up" if full.database else "down", collectors=collectors)


class ErrorOut(BaseModel):
    detail: str


class CandidateRule(BaseModel):
    """Parsing rules to try for one CI (config keys of its ``[[ci]]`` entry; see cidash.parsing).
    `success_pattern`/`failure_pattern` are one more pair beside the CI's configured ones."""

    model_config = {"extra": "forbid"}

    success_pattern: str | None = Field(default=None, max_length=2000)
    failure_pattern: str | None = Field(default=None, max_length=2000)
    result_regex: str | None = Field(default=None, max_length=2000)
    job_regex: str | None = Field(default=None, max_length=2000)
    start_regex: str | None = Field(default=None, max_length=2000)


class ExplainIn(BaseModel):
    """``POST /api/v1/explain``: how `ci`'s comments read now and under `rule`."""

    model_config = {"extra": "forbid"}

    ci: str = Field(min_length=1, max_length=255)  # the CI system's name (account key)
    server: str | None = Field(default=None, max_length=255)
    text: str | None = Field(default=None, max_length=100_000)  # one comment text to read as the CI's
    rule: CandidateRule | None = None
    limit: int = Field(default=50, ge=0, le=500)  # how many of its latest stored comments to re-read


class Verdict(BaseModel):
    kind: Literal["result", "start", "notice", "other"]
    result: str | None
    vote: int | None
    pipeline: str | None
    jobs: list[JobOut]
    why: str


class ExplainedText(BaseModel):
    now: Verdict
    candidate: Verdict | None  # None without a rule


class ExplainedComment(BaseModel):
    id: int
    stored_as: Literal["result", "start", "unread"]
    change: int
    patchset: int
    posted_at: datetime
    text: str
    now: Verdict
    candidate: Verdict | None
    changed: bool  # the candidate reads it differently (kind, result, vote or jobs)


class ReadCounts(BaseModel):
    results: int
    starts: int
    unread: int  # kind "other": what nothing read


class ExplainOut(BaseModel):
    ci: str
    server: str
    text: ExplainedText | None
    comments: list[ExplainedComment]  # newest first
    now: ReadCounts
    candidate: ReadCounts | None
    changed: int
    toml: str | None  # the CI's [[ci]] entry with the rule, to paste into cidash.toml


class ReportNumbers(BaseModel):
    """One CI's numbers over one week of the report card."""

    runs: int
    success_rate: float | None
    infra_error_rate: float | None
    coverage: float | None
    eligible: int
    covered: int
    agreement: float | None
    false_negative_share: float | None  # its -1s where the reference passed and the change merged
    false_negatives: int
    negatives: int
    latency_p50_s: float | None
    latency_p95_s: float | None
    queue_p50_s: float | None  # time to first answer after the upload
    recheck_recovery: float | None  # its failed patch sets that passed after a recheck
    rechecks: int  # human recheck comments aimed at it (GET /api/v1/measures)
    rechecks_per_100_runs: float | None
    incidents_open: int  # its incidents open at the week's end
    incidents_opened: int  # its incidents that started in the week (resolved since or not)


class ReportRow(BaseModel):
    name: str
    server: str
    display_name: str
    is_reference: bool
    state: State
    state_reason: str
    week: ReportNumbers
    previous: ReportNumbers  # the week before, for the arrows
    sparkline: list[float | None]  # success rate per day over both weeks, oldest first (14 values)
    links: dict[str, str]  # measure -> dashboard address (a fragment, "#/runs?...") of the runs behind it


class ReportCard(BaseModel):
    start: datetime  # the week: [start, end)
    end: datetime
    previous_start: datetime  # the week before: [previous_start, start)
    project: str | None
    rows: list[ReportRow]  # worst first: state, then success rate


class StreamSessionOut(BaseModel):
    """One stream-events connection of a Gerrit server."""

    id: int
    connected_at: datetime
    last_seen_at: datetime  # the collector's last heartbeat while connected
    disconnected_at: datetime | None  # None: connected now
    reason: str | None  # why it ended: the stream's error, "collector stopped", "process ended ..."


class BackfillPassOut(BaseModel):
    """One REST backfill pass: it read what was posted from `since` until `until` (its query's start)."""

    id: int
    started_at: datetime
    finished_at: datetime
    since: datetime | None  # None when the pass failed before it knew its range
    until: datetime | None
    changes: int
    comments: int
    runs_new: int
    outcome: Literal["ok", "failed", "stalled"]  # stalled: cut at backfill_deadline_s
    error: str | None


class CollectionGap(BaseModel):
    """Time without a connected stream; covered once completed backfill passes read all of it."""

    start: datetime
    end: datetime | None  # None: still open (no stream since `start`)
    state: Literal["covered", "uncovered", "open"]
    covered_by: int | None  # the pass (id in `passes`) that completed the cover
    read_until: datetime | None  # backfill passes read the gap from its start to here (None: not yet)


class CollectionSummary(BaseModel):
    observed_from: datetime | None  # the window's start, or the server's first session when later
    observed_to: datetime  # the window's end, or now
    connected_s: float
    covered_s: float
    uncovered_s: float
    open_s: float
    completeness: float | None  # (connected + covered) / observed; None when nothing was observed
    uncovered_gaps: int
    open_gap: bool
    passes_ok: int  # passes that finished in the window, by outcome
    passes_failed: int
    passes_stalled: int


class ServerCollection(BaseModel):
    server: str
    connected: bool  # its last session is connected (with a recent heartbeat)
    sessions: list[StreamSessionOut]  # oldest first
    gaps: list[CollectionGap]
    passes: list[BackfillPassOut]  # finished in the window, and any a listed gap names
    summary: CollectionSummary
    truncated: bool  # more than 500 sessions, gaps or passes: only the latest are listed


class CollectionOut(BaseModel):
    window_from: datetime
    window_to: datetime
    servers: list[ServerCollection]
