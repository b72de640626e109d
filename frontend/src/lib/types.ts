// Mirrors src/cidash/api/schemas.py (the /api/v1 contract). Datetimes arrive as ISO strings,
// rates are fractions in [0, 1], durations and latencies are seconds.

export type State = 'healthy' | 'degraded' | 'failing' | 'silent' | 'unknown';
export type Window = '1h' | '24h' | '7d' | '30d';
export type FeedKind = 'run' | 'alert' | 'state' | 'incident';
export type ResultClass = 'success' | 'failure' | 'infra' | 'other';

export const WINDOWS: readonly Window[] = ['1h', '24h', '7d', '30d'];
export const STATES: readonly State[] = ['healthy', 'degraded', 'failing', 'silent', 'unknown'];

export interface JobOut {
  name: string;
  url: string | null;
  result: string;
  duration_s: number | null;
  voting: boolean;
}

export interface RunOut {
  id: number;
  server: string;
  ci: string;
  project: string;
  branch: string;
  change: number;
  patchset: number;
  result: string;
  result_class: ResultClass;
  vote: number | null;
  pipeline: string | null;
  posted_at: string;
  latency_s: number | null;
  message_id: string | null;
  source: string;
  log_url: string | null;
  jobs: JobOut[];
  comment?: string | null;
}

export interface RunPage {
  items: RunOut[];
  next_cursor: string | null;
}

export type CaseKind = 'false_negative' | 'false_positive';

/** Its votes against the reference CI's on the same patch sets (GET /api/v1/measures: vote_quality). */
export interface VoteQuality {
  both_passed: number;
  failed_reference_passed: number;
  passed_reference_failed: number;
  both_failed: number;
  negatives: number;
  positives: number;
  false_negatives: number;
  false_negative_share: number | null;
  false_positive_share: number | null;
}

export interface HealthWindow {
  window: Window;
  runs: number;
  success_rate: number | null;
  failure_rate: number | null;
  infra_error_rate: number | null;
  latency_p50_s: number | null;
  latency_p95_s: number | null;
  coverage: number | null;
  /** Patch sets it should have answered in the window (the rule: GET /api/v1/measures). */
  eligible: number;
  /** ... of which it posted a result on. */
  covered: number;
  agreement: number | null;
  disagreements: number;
  flakiness: number | null;
  /** Of the patch sets it failed, the share it passed after a recheck there. */
  recheck_recovery: number | null;
  failed_patchsets: number;
  recovered: number;
  /** Human recheck comments aimed at it in the window (named, or plain after a failure of its own). */
  rechecks: number;
  rechecks_per_100_runs: number | null;
  /** Time to first answer after the upload (queue latency). */
  queue_p50_s: number | null;
  queue_p95_s: number | null;
  vote_quality: VoteQuality | null;
  /** 30 d: coverage, agreement and flakiness are still being computed in the background (null until then). */
  metrics_pending: boolean;
}

export interface SystemSummary {
  id: number;
  name: string;
  server: string;
  display_name: string;
  owner: string | null;
  is_reference: boolean;
  confirmed: boolean;
  source: 'config' | 'group' | 'detected';
  projects: string[];
  state: State;
  state_reason: string;
  last_seen: string | null;
  health: HealthWindow;
  sparkline: (number | null)[];
}

/** A CI's comments in one window by what they became. */
export interface CommentCounts {
  window: Window;
  results: number;
  starts: number;
  unread: number;
  unread_share: number | null;
}

export interface UnreadComment {
  id: number;
  project: string;
  change: number;
  patchset: number;
  posted_at: string;
  vote: number | null;
  text: string;
  why: string;
  parsed_with: string;
}

export interface SystemDetail extends SystemSummary {
  windows: HealthWindow[];
  comments: CommentCounts[];
  unread: UnreadComment[];
}

/** POST /explain: a candidate rule for one CI (keys of its [[ci]] entry). */
export interface CandidateRule {
  success_pattern?: string | null;
  failure_pattern?: string | null;
  result_regex?: string | null;
  job_regex?: string | null;
  start_regex?: string | null;
}

export interface Verdict {
  kind: 'result' | 'start' | 'notice' | 'other';
  result: string | null;
  vote: number | null;
  pipeline: string | null;
  jobs: JobOut[];
  why: string;
}

export interface ExplainedComment {
  id: number;
  stored_as: 'result' | 'start' | 'unread';
  change: number;
  patchset: number;
  posted_at: string;
  text: string;
  now: Verdict;
  candidate: Verdict | null;
  changed: boolean;
}

export interface ReadCounts {
  results: number;
  starts: number;
  unread: number;
}

export interface ExplainOut {
  ci: string;
  server: string;
  text: { now: Verdict; candidate: Verdict | null } | null;
  comments: ExplainedComment[];
  now: ReadCounts;
  candidate: ReadCounts | null;
  changed: number;
  toml: string | null;
}

export interface ReparseOut {
  runs: number;
  changed: number;
  unchanged: number;
  not_results: number;
  comments: number;
  now_results: number;
  comments_changed: number;
}

export interface ReparseProgress {
  running: boolean;
  ci: string | null;
  done: number;
  total: number;
  started_at: string | null;
  finished_at: string | null;
  counts: ReparseOut | null;
  error: string | null;
}

export interface SeriesPoint {
  t: string;
  runs: number;
  successes: number;
  failures: number;
  infra_errors: number;
  success_rate: number | null;
  latency_p50_s: number | null;
  latency_p95_s: number | null;
}

export interface JobBreakdown {
  name: string;
  runs: number;
  failures: number;
  infra_errors: number;
  failure_rate: number;
  last_failure_at: string | null;
  last_failure_url: string | null;
}

export interface GridCell {
  run_id: number;
  result: string;
  result_class: ResultClass;
  vote: number | null;
  posted_at: string;
  log_url: string | null;
  runs: number;
}

export interface GridRow {
  server: string;
  change: number;
  patchset: number;
  project: string;
  branch: string;
  subject: string | null;
  url: string | null;
  created_at: string | null;
  cells: Record<string, GridCell>;
}

export interface Grid {
  project: string | null;
  systems: string[];
  rows: GridRow[];
}

export interface ChangeView {
  server: string;
  change: number;
  project: string;
  branch: string;
  subject: string | null;
  url: string | null;
  status: string | null;
  systems: string[];
  patchsets: GridRow[];
}

export type Severity = 'info' | 'warning' | 'critical';

export interface AlertOut {
  id: number;
  rule: string;
  kind: 'failure' | 'consecutive_failures' | 'failure_rate' | 'silent' | 'unreadable' | 'recovered';
  ci: string;
  server: string;
  project: string | null;
  severity: Severity;
  message: string;
  created_at: string;
  run_id: number | null;
  muted: boolean;
  incident_id?: number | null;
  edge?: 'open' | 'resolve' | null;
  quiet?: string | null;
  started_at?: string | null;
  resolved_at?: string | null;
}

export interface IncidentOut {
  id: number;
  ci: string;
  server: string;
  rule: string;
  kind: string;
  scope: string;
  state: 'firing' | 'resolved';
  severity: Severity;
  started_at: string;
  fired_at: string;
  resolved_at: string | null;
  last_run_at: string | null;
  summary: string;
  failed: number;
  passed: number;
  inhibited: number;
  quiet: string | null;
  acked_by: string | null;
  acked_at: string | null;
  ack_note: string | null;
  silenced_until: string | null;
  silenced_until_resolved: boolean;
  silenced_by: string | null;
  silence_reason: string | null;
  updated_at: string;
}

export interface IncidentPage {
  items: IncidentOut[];
  next_cursor: string | null;
}

export interface TimelineRun {
  id: number;
  posted_at: string;
  project: string;
  change: number;
  patchset: number;
  result: string;
  verdict: 'pass' | 'fail' | 'inhibited' | 'pending' | 'other';
  reference_result: string | null;
  log_url: string | null;
}

export interface IncidentNote {
  id: number;
  action: 'ack' | 'unack' | 'silence' | 'unsilence';
  author: string;
  note: string | null;
  until: string | null;
  created_at: string;
}

/** A maintenance window declared for a CI: incidents that open inside it notify no one. */
export interface MaintenanceOut {
  id: number;
  ci: string;
  server: string;
  starts_at: string;
  ends_at: string;
  author: string;
  reason: string | null;
  created_at: string;
}

export interface IncidentDetail {
  incident: IncidentOut;
  runs: TimelineRun[];
  notifications: AlertOut[];
  notes: IncidentNote[];
}

export interface AlertPage {
  items: AlertOut[];
  next_cursor: string | null;
}

export interface AlertRuleOut {
  name: string;
  kind: string;
  ci: string[];
  projects: string[];
  params: Record<string, number | string | boolean | null>;
  webhooks: string[];
}

export interface StateChange {
  ci: string;
  state: State;
  state_reason: string;
}

/** A feed message as the websocket delivers it (`data` is checked by whoever consumes it). */
export interface FeedMessage {
  type: FeedKind;
  id: number;
  data: unknown;
}

/** One CI's numbers over one week of the report card. */
export interface ReportNumbers {
  runs: number;
  success_rate: number | null;
  infra_error_rate: number | null;
  coverage: number | null;
  eligible: number;
  covered: number;
  agreement: number | null;
  false_negative_share: number | null;
  false_negatives: number;
  negatives: number;
  latency_p50_s: number | null;
  latency_p95_s: number | null;
  queue_p50_s: number | null;
  recheck_recovery: number | null;
  /** Human recheck comments aimed at it in the week, and per 100 of its runs. */
  rechecks: number;
  rechecks_per_100_runs: number | null;
  /** Its incidents open at the week's end, and those that started in the week. */
  incidents_open: number;
  incidents_opened: number;
}

/** A human's recheck comment aimed at a CI. */
export interface RecheckOut {
  id: number;
  posted_at: string;
  author: string;
  project: string;
  branch: string;
  change: number;
  patchset: number;
  text: string;
  /** It named the CI, or it was a plain recheck after a failure of the CI's own (not the change's). */
  aimed: 'named' | 'plain';
}

export interface RecheckCases {
  window: Window;
  total: number;
  rechecks: RecheckOut[];
}

export interface ReportRow {
  name: string;
  server: string;
  display_name: string;
  is_reference: boolean;
  state: State;
  state_reason: string;
  week: ReportNumbers;
  previous: ReportNumbers;
  sparkline: (number | null)[];
  /** Measure -> dashboard address ("#/runs?...") of the runs behind it. */
  links: Record<string, string>;
}

export interface ReportCard {
  start: string;
  end: string;
  previous_start: string;
  project: string | null;
  rows: ReportRow[];
}

// ---- Collector completeness (GET /api/v1/collection) ------------------------------------------

export interface StreamSessionOut {
  id: number;
  connected_at: string;
  last_seen_at: string;
  /** null: connected now. */
  disconnected_at: string | null;
  reason: string | null;
}

export type PassOutcome = 'ok' | 'failed' | 'stalled';

export interface BackfillPassOut {
  id: number;
  started_at: string;
  finished_at: string;
  since: string | null;
  until: string | null;
  changes: number;
  comments: number;
  runs_new: number;
  outcome: PassOutcome;
  error: string | null;
}

export type GapState = 'covered' | 'uncovered' | 'open';

export interface CollectionGap {
  start: string;
  /** null: still open. */
  end: string | null;
  state: GapState;
  covered_by: number | null;
  /** Backfill passes read the gap from its start up to here (null: not yet). */
  read_until: string | null;
}

export interface CollectionSummary {
  observed_from: string | null;
  observed_to: string;
  connected_s: number;
  covered_s: number;
  uncovered_s: number;
  open_s: number;
  completeness: number | null;
  uncovered_gaps: number;
  open_gap: boolean;
  passes_ok: number;
  passes_failed: number;
  passes_stalled: number;
}

export interface ServerCollection {
  server: string;
  connected: boolean;
  sessions: StreamSessionOut[];
  gaps: CollectionGap[];
  passes: BackfillPassOut[];
  summary: CollectionSummary;
  truncated: boolean;
}

export interface CollectionOut {
  window_from: string;
  window_to: string;
  servers: ServerCollection[];
}
