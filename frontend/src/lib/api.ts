// The /api/v1 client: typed fetch wrappers with timeouts, cancellation and clear errors.
// `reachable` listeners drive the "API unreachable" banner.

import { loadToken } from './prefs';
import type {
  AlertPage,
  AlertRuleOut,
  CandidateRule,
  CollectionOut,
  CaseKind,
  ChangeView,
  ExplainOut,
  Grid,
  RecheckCases,
  IncidentDetail,
  IncidentOut,
  IncidentPage,
  JobBreakdown,
  MaintenanceOut,
  ReparseOut,
  ReparseProgress,
  ReportCard,
  RunOut,
  RunPage,
  SeriesPoint,
  SystemDetail,
  SystemSummary,
  Window,
} from './types';

export type ApiErrorKind = 'network' | 'timeout' | 'http' | 'parse' | 'aborted';

export class ApiError extends Error {
  readonly kind: ApiErrorKind;
  readonly status: number | null;
  readonly path: string;

  constructor(kind: ApiErrorKind, path: string, message: string, status: number | null = null) {
    super(message);
    this.name = 'ApiError';
    this.kind = kind;
    this.status = status;
    this.path = path;
  }

  /** The API (or the proxy in front of it) cannot be reached: show the banner, not a page error. */
  get unreachable(): boolean {
    return (
      this.kind === 'network' ||
      this.kind === 'timeout' ||
      (this.kind === 'http' && (this.status === 502 || this.status === 503 || this.status === 504))
    );
  }

  /** 401/403 on a read: the server wants a (valid) read token. */
  get needsToken(): boolean {
    return this.kind === 'http' && (this.status === 401 || this.status === 403);
  }

  get notFound(): boolean {
    return this.kind === 'http' && this.status === 404;
  }
}

export function isAbort(e: unknown): boolean {
  return e instanceof ApiError ? e.kind === 'aborted' : e instanceof DOMException && e.name === 'AbortError';
}

export type Query = Record<string, string | number | boolean | null | undefined>;

export function buildQuery(q: Query | undefined): string {
  if (!q) return '';
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) {
    if (v === null || v === undefined || v === '') continue;
    qs.set(k, String(v));
  }
  const s = qs.toString();
  return s ? `?${s}` : '';
}

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export interface ApiOptions {
  /** Prefix of every path; relative by default so the app works at `/` and under a prefix. */
  base?: string;
  fetch?: FetchLike;
  timeoutMs?: number;
  /** The read token to send, read at every request (it may be entered while the app runs). */
  token?: () => string | null;
}

export type ReachabilityListener = (reachable: boolean, error: ApiError | null) => void;
export type TokenListener = (needed: boolean) => void;

const enc = encodeURIComponent;
/** A write (a re-read of every stored comment) may take minutes; its progress is polled apart. */
const WRITE_TIMEOUT_MS = 10 * 60_000;

export class ApiClient {
  private readonly base: string;
  private readonly fetchImpl: FetchLike;
  private readonly timeoutMs: number;
  private readonly token: () => string | null;
  private readonly listeners = new Set<ReachabilityListener>();
  private readonly tokenListeners = new Set<TokenListener>();
  private lastReachable: boolean | null = null;

  constructor(opts: ApiOptions = {}) {
    this.base = (opts.base ?? 'api/v1').replace(/\/+$/, '');
    this.fetchImpl = opts.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.timeoutMs = opts.timeoutMs ?? 15000;
    this.token = opts.token ?? (() => null);
  }

  /** Called with true when the server refused a read for want of a valid token, false once one passes. */
  onTokenNeeded(cb: TokenListener): () => void {
    this.tokenListeners.add(cb);
    return () => this.tokenListeners.delete(cb);
  }

  private reportToken(needed: boolean): void {
    for (const cb of this.tokenListeners) cb(needed);
  }

  private headers(): Record<string, string> {
    const token = this.token();
    return token ? { Accept: 'application/json', Authorization: `Bearer ${token}` } : { Accept: 'application/json' };
  }

  onReachability(cb: ReachabilityListener): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  private report(reachable: boolean, error: ApiError | null): void {
    if (reachable === this.lastReachable && reachable) return;
    this.lastReachable = reachable;
    for (const cb of this.listeners) cb(reachable, error);
  }

  url(path: string, query?: Query): string {
    return `${this.base}/${path.replace(/^\/+/, '')}${buildQuery(query)}`;
  }

  get<T>(path: string, query?: Query, signal?: AbortSignal): Promise<T> {
    return this.request<T>('GET', path, query, signal);
  }

  /** A write: JSON `body` (if any), the operator's write token instead of the read token. */
  post<T>(path: string, writeToken: string, body?: unknown, query?: Query, signal?: AbortSignal): Promise<T> {
    return this.request<T>('POST', path, query, signal, { body, writeToken });
  }

  /** A delete with the operator's write token. */
  del<T>(path: string, writeToken: string, signal?: AbortSignal): Promise<T> {
    return this.request<T>('DELETE', path, undefined, signal, { body: undefined, writeToken });
  }

  private async request<T>(
    method: 'GET' | 'POST' | 'DELETE',
    path: string,
    query?: Query,
    signal?: AbortSignal,
    write?: { body: unknown; writeToken: string },
  ): Promise<T> {
    const url = this.url(path, query);
    const ctl = new AbortController();
    let timedOut = false;
    const waitMs = write ? WRITE_TIMEOUT_MS : this.timeoutMs;
    const timer = setTimeout(() => {
      timedOut = true;
      ctl.abort();
    }, waitMs);
    const onAbort = () => ctl.abort();
    if (signal) {
      if (signal.aborted) ctl.abort();
      else signal.addEventListener('abort', onAbort, { once: true });
    }
    let res: Response;
    try {
      const headers = this.headers();
      const init: RequestInit = { signal: ctl.signal, headers, method };
      if (write) {
        headers.Authorization = `Bearer ${write.writeToken}`;
        if (write.body !== undefined) {
          init.body = JSON.stringify(write.body);
          headers['Content-Type'] = 'application/json';
        }
      }
      res = await this.fetchImpl(url, init);
    } catch (e) {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      let err: ApiError;
      if (timedOut) err = new ApiError('timeout', path, `The API did not answer within ${waitMs / 1000} s`);
      else if (signal?.aborted) throw new ApiError('aborted', path, 'Request cancelled');
      else err = new ApiError('network', path, `Cannot reach the API (${e instanceof Error ? e.message : String(e)})`);
      this.report(false, err);
      throw err;
    }
    try {
      if (!res.ok) {
        let detail = res.statusText || `HTTP ${res.status}`;
        try {
          const body: unknown = await res.json();
          if (body && typeof body === 'object' && 'detail' in body) {
            const d = (body as { detail: unknown }).detail;
            detail = typeof d === 'string' ? d : JSON.stringify(d);
          }
        } catch {
          /* not JSON: keep the status text */
        }
        const err = new ApiError('http', path, `${res.status}: ${detail}`, res.status);
        this.report(!err.unreachable, err.unreachable ? err : null);
        if (err.needsToken && !write) this.reportToken(true);
        throw err;
      }
      let body: T;
      try {
        body = (await res.json()) as T;
      } catch {
        const err = new ApiError('parse', path, 'The API answered with something that is not JSON', res.status);
        this.report(true, null);
        throw err;
      }
      this.report(true, null);
      if (!write) this.reportToken(false);
      return body;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  // ---- Endpoints ----
  systems(q: { window?: Window; project?: string | null; q?: string | null } = {}, signal?: AbortSignal) {
    return this.get<SystemSummary[]>('systems', q, signal);
  }
  /** The name of the reference CI (the others are compared with it), or null without one. */
  async referenceCi(signal?: AbortSignal): Promise<string | null> {
    const systems = await this.systems({}, signal);
    return systems.find((s) => s.is_reference)?.name ?? null;
  }
  system(name: string, signal?: AbortSignal) {
    return this.get<SystemDetail>(`systems/${enc(name)}`, undefined, signal);
  }
  systemRuns(name: string, q: { limit?: number; cursor?: string | null } = {}, signal?: AbortSignal) {
    return this.get<RunPage>(`systems/${enc(name)}/runs`, q, signal);
  }
  systemSeries(name: string, q: { bucket: 'hour' | 'day'; from: string; to: string }, signal?: AbortSignal) {
    return this.get<SeriesPoint[]>(`systems/${enc(name)}/series`, q, signal);
  }
  systemJobs(name: string, q: { window?: Window } = {}, signal?: AbortSignal) {
    return this.get<JobBreakdown[]>(`systems/${enc(name)}/jobs`, q, signal);
  }
  runs(
    q: {
      ci?: string | null;
      project?: string | null;
      branch?: string | null;
      result?: string | null;
      from?: string | null;
      to?: string | null;
      limit?: number;
      cursor?: string | null;
    } = {},
    signal?: AbortSignal,
  ) {
    return this.get<RunPage>('runs', q, signal);
  }
  run(id: number, signal?: AbortSignal) {
    return this.get<RunOut>(`runs/${enc(String(id))}`, undefined, signal);
  }
  grid(q: { project?: string | null; limit?: number } = {}, signal?: AbortSignal) {
    return this.get<Grid>('grid', q, signal);
  }
  projects(signal?: AbortSignal) {
    return this.get<string[]>('projects', undefined, signal);
  }
  /** The patch sets behind a CI's false -1 / false +1 share, with every CI's result. */
  cases(name: string, q: { kind: CaseKind; window: Window }, signal?: AbortSignal) {
    return this.get<Grid>(`systems/${enc(name)}/cases`, q, signal);
  }
  /** Collector completeness: stream sessions, gaps and backfill passes per Gerrit server over [from, to). */
  collection(q: { server?: string | null; from?: string | null; to?: string | null } = {}, signal?: AbortSignal) {
    return this.get<CollectionOut>('collection', q, signal);
  }

  /** The recheck comments aimed at a CI over `window`, or from `from` to `to`. */
  rechecks(
    name: string,
    q: { window?: Window; from?: string | null; to?: string | null; project?: string | null },
    signal?: AbortSignal,
  ) {
    return this.get<RecheckCases>(`systems/${enc(name)}/rechecks`, q, signal);
  }
  /** The weekly report card: the week ending at `end`'s midnight UTC (default today's) and the one before. */
  reportCard(q: { end?: string | null; project?: string | null } = {}, signal?: AbortSignal) {
    return this.get<ReportCard>('report', q, signal);
  }
  /** What each measure means, in words (e.g. which patch sets coverage counts). */
  measures(signal?: AbortSignal) {
    return this.get<Record<string, string>>('measures', undefined, signal);
  }
  change(n: number, signal?: AbortSignal) {
    return this.get<ChangeView>(`changes/${enc(String(n))}`, undefined, signal);
  }
  alerts(q: { ci?: string | null; limit?: number; cursor?: string | null } = {}, signal?: AbortSignal) {
    return this.get<AlertPage>('alerts', q, signal);
  }
  /** The rule tester: the CI's latest stored comments read now and with `rule` (write token). */
  explain(
    writeToken: string,
    body: { ci: string; text?: string | null; rule?: CandidateRule | null; limit?: number },
    signal?: AbortSignal,
  ) {
    return this.post<ExplainOut>('explain', writeToken, body, undefined, signal);
  }
  /** Re-read the stored comments with the rules in effect (write token); resolves when done. */
  reparse(writeToken: string, ci: string | null, signal?: AbortSignal) {
    return this.post<ReparseOut>('runs/reparse', writeToken, undefined, { ci }, signal);
  }
  reparseProgress(signal?: AbortSignal) {
    return this.get<ReparseProgress>('runs/reparse', undefined, signal);
  }
  incidents(q: { state?: 'firing' | 'resolved' | null; ci?: string | null; limit?: number } = {}, signal?: AbortSignal) {
    return this.get<IncidentPage>('incidents', q, signal);
  }

  incident(id: number, signal?: AbortSignal) {
    return this.get<IncidentDetail>(`incidents/${id}`, undefined, signal);
  }

  /** Acknowledge an incident (write token). */
  ack(id: number, author: string, note: string | null, writeToken: string) {
    return this.post<IncidentOut>(`incidents/${id}/ack`, writeToken, { author, note });
  }

  /** Silence an incident until `until`, or until it resolves when null (write token). */
  silence(id: number, author: string, reason: string, until: string | null, writeToken: string) {
    return this.post<IncidentOut>(`incidents/${id}/silence`, writeToken, { author, reason, until });
  }

  /** The CI's maintenance windows that have not ended, earliest first. */
  maintenance(ci: string, signal?: AbortSignal) {
    return this.get<MaintenanceOut[]>('maintenance', { ci }, signal);
  }

  /** Declare a maintenance window ahead (write token); `startsAt`/`endsAt` ISO instants. */
  addMaintenance(
    w: { ci: string; server: string; startsAt: string; endsAt: string; author: string; reason: string | null },
    writeToken: string,
  ) {
    const body = { ci: w.ci, server: w.server, starts_at: w.startsAt, ends_at: w.endsAt, author: w.author, reason: w.reason };
    return this.post<MaintenanceOut>('maintenance', writeToken, body);
  }

  /** Withdraw a window before it begins (write token). */
  deleteMaintenance(id: number, writeToken: string) {
    return this.del<MaintenanceOut>(`maintenance/${id}`, writeToken);
  }

  alertRules(signal?: AbortSignal) {
    return this.get<AlertRuleOut[]>('alerts/rules', undefined, signal);
  }
  /** For <img>: no header can be set there, so the token (if any) goes in the query. */
  badgeUrl(name: string): string {
    return this.url(`badge/${enc(name)}.svg`, { token: this.token() });
  }
  /** The badge address to paste into a README: never with the read token in it. */
  publicBadgeUrl(name: string): string {
    return this.url(`badge/${enc(name)}.svg`);
  }
  /** Whether anyone can fetch the badge without a token (reads open, or api.public_badges):
   *  only then is there a snippet worth pasting. Asked without any token. */
  async badgeIsPublic(name: string, signal?: AbortSignal): Promise<boolean> {
    const res = await this.fetchImpl(this.publicBadgeUrl(name), { signal, credentials: 'omit' });
    return res.ok;
  }
}

export const api = new ApiClient({ token: () => loadToken() });

/** A one-line message for a failed load (the banner already explains an unreachable API). */
export function errorText(e: unknown): string {
  if (e instanceof ApiError) {
    if (e.unreachable) return 'The API is unreachable; showing the last data loaded, if any.';
    if (e.notFound) return `Not found (${e.path}).`;
    return `The API answered with an error: ${e.message}`;
  }
  return e instanceof Error ? e.message : String(e);
}

/** What a page does with the outcome of one request. */
export interface Outcome<T> {
  ok: (value: T) => void;
  /** The message to show (see errorText). */
  failed: (message: string) => void;
  /** True while the request runs (a cancelled one leaves it to the request that replaced it). */
  busy?: (loading: boolean) => void;
}

/**
 * Starts `request` and reports its outcome, except when it was cancelled: the page that made it
 * has moved on. Returns the cancel, for an `$effect` to return.
 */
export function load<T>(request: (signal: AbortSignal) => Promise<T>, on: Outcome<T>): () => void {
  const ctl = new AbortController();
  on.busy?.(true);
  request(ctl.signal)
    .then((value) => {
      if (!ctl.signal.aborted) on.ok(value); // it may have resolved just before the cancel
    })
    .catch((e) => {
      if (!isAbort(e)) on.failed(errorText(e));
    })
    .finally(() => {
      if (!ctl.signal.aborted) on.busy?.(false);
    });
  return () => ctl.abort();
}
