// Hash routing: "#/page/arg?k=v" <-> Route, and the typed filters of each page.
// Every page is deep-linkable: its filters live in the hash query string.

import { isSystemSortKey, defaultDir, type SortDir, type SystemSortKey } from './sort';
import { WINDOWS, type CaseKind, type Window } from './types';

export type Page =
  | 'overview'
  | 'grid'
  | 'system'
  | 'change'
  | 'alerts'
  | 'runs'
  | 'run'
  | 'cases'
  | 'report'
  | 'incident'
  | 'collection'
  | 'incidents'
  | 'rechecks'
  | 'notfound';

export interface Route {
  page: Page;
  /** The path argument: system name, change number or run id. */
  arg?: string;
  params: Record<string, string>;
}

const WITH_ARG: Partial<Record<Page, true>> = { system: true, change: true, run: true, cases: true, incident: true, rechecks: true };
const PLAIN: Record<string, Page> = {
  '': 'overview',
  grid: 'grid',
  alerts: 'alerts',
  runs: 'runs',
  report: 'report',
  collection: 'collection',
  incidents: 'incidents',
};

export function parseHash(hash: string): Route {
  let h = hash.startsWith('#') ? hash.slice(1) : hash;
  if (h.startsWith('!')) h = h.slice(1);
  const q = h.indexOf('?');
  const path = q >= 0 ? h.slice(0, q) : h;
  const query = q >= 0 ? h.slice(q + 1) : '';
  const params: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(query)) {
    if (v !== '') params[k] = v;
  }
  const segs = path.split('/').filter((s) => s !== '');
  if (segs.length === 0) return { page: 'overview', params };
  const head = segs[0];
  if (segs.length === 1 && head in PLAIN) return { page: PLAIN[head], params };
  if (segs.length === 2 && WITH_ARG[head as Page]) {
    let arg: string;
    try {
      arg = decodeURIComponent(segs[1]);
    } catch {
      return { page: 'notfound', params };
    }
    if ((head === 'change' || head === 'run' || head === 'incident') && !/^\d+$/.test(arg)) return { page: 'notfound', params };
    return { page: head as Page, arg, params };
  }
  return { page: 'notfound', params };
}

export function formatHash(route: Route): string {
  let path: string;
  switch (route.page) {
    case 'overview':
    case 'notfound':
      path = '/';
      break;
    case 'system':
    case 'change':
    case 'run':
    case 'cases':
    case 'incident':
    case 'rechecks':
      path = `/${route.page}/${encodeURIComponent(route.arg ?? '')}`;
      break;
    default:
      path = `/${route.page}`;
  }
  const qs = new URLSearchParams();
  for (const k of Object.keys(route.params).sort()) {
    const v = route.params[k];
    if (v !== undefined && v !== null && v !== '') qs.set(k, v);
  }
  const s = qs.toString();
  return `#${path}${s ? `?${s}` : ''}`;
}

/** Merge a patch into params: null/undefined/"" (or a value equal to `defaults[k]`) removes the key. */
export function patchParams(
  params: Record<string, string>,
  patch: Record<string, string | number | null | undefined>,
  defaults: Record<string, string> = {},
): Record<string, string> {
  const out: Record<string, string> = { ...params };
  for (const [k, raw] of Object.entries(patch)) {
    const v = raw === null || raw === undefined ? '' : String(raw);
    if (v === '' || defaults[k] === v) delete out[k];
    else out[k] = v;
  }
  return out;
}

// Links used across the app.
export const href = {
  overview: (params: Record<string, string> = {}) => formatHash({ page: 'overview', params }),
  grid: (project?: string | null) => formatHash({ page: 'grid', params: project ? { project } : {} }),
  system: (name: string, params: Record<string, string> = {}) => formatHash({ page: 'system', arg: name, params }),
  change: (n: number) => formatHash({ page: 'change', arg: String(n), params: {} }),
  run: (id: number) => formatHash({ page: 'run', arg: String(id), params: {} }),
  alerts: (ci?: string) => formatHash({ page: 'alerts', params: ci ? { ci } : {} }),
  runs: (params: Record<string, string> = {}) => formatHash({ page: 'runs', params }),
  /** The patch sets behind a vote-quality number of CI `name`. */
  cases: (name: string, kind: CaseKind, window: Window) =>
    formatHash({ page: 'cases', arg: name, params: { kind, window } }),
  report: (params: Record<string, string> = {}) => formatHash({ page: 'report', params }),
  incident: (id: number) => formatHash({ page: 'incident', arg: String(id), params: {} }),
  collection: (params: Record<string, string> = {}) => formatHash({ page: 'collection', params }),
  /** Incidents, the open ones by default; of one CI with `ci`. */
  incidents: (params: Record<string, string> = {}) => formatHash({ page: 'incidents', params }),
  /** The recheck comments aimed at CI `name` (`window`, or `from`/`to`). */
  rechecks: (name: string, params: Record<string, string> = {}) => formatHash({ page: 'rechecks', arg: name, params }),
};

// ---- Typed filters per page -------------------------------------------------------------------

export interface OverviewFilters {
  window: Window;
  project: string | null;
  /** The search box: part of a name, display name or owner (the API's `q`). */
  q: string | null;
  sort: SystemSortKey;
  dir: SortDir;
}

export const OVERVIEW_DEFAULTS = { window: '24h', sort: 'state', dir: 'asc' } as const;

export function overviewFilters(p: Record<string, string>): OverviewFilters {
  const window = (WINDOWS as readonly string[]).includes(p.window) ? (p.window as Window) : '24h';
  const sort: SystemSortKey = isSystemSortKey(p.sort) ? p.sort : 'state';
  const dir: SortDir = p.dir === 'asc' || p.dir === 'desc' ? p.dir : defaultDir(sort);
  return { window, project: p.project || null, q: p.q || null, sort, dir };
}

export function overviewParams(f: OverviewFilters): Record<string, string> {
  return patchParams(
    {},
    { window: f.window, project: f.project, q: f.q, sort: f.sort, dir: f.dir === defaultDir(f.sort) ? null : f.dir },
    { window: OVERVIEW_DEFAULTS.window, sort: OVERVIEW_DEFAULTS.sort },
  );
}

export type Range = '24h' | '7d' | '30d' | '90d';
export const RANGES: readonly Range[] = ['24h', '7d', '30d', '90d'];
const RANGE_HOURS: Record<Range, number> = { '24h': 24, '7d': 168, '30d': 720, '90d': 2160 };

export function systemRange(p: Record<string, string>): Range {
  return (RANGES as readonly string[]).includes(p.range) ? (p.range as Range) : '7d';
}

export function rangeHours(r: Range): number {
  return RANGE_HOURS[r];
}

/** Hour buckets up to 7 days, day buckets beyond. */
export function bucketFor(r: Range): 'hour' | 'day' {
  return RANGE_HOURS[r] <= 168 ? 'hour' : 'day';
}

/** The jobs endpoint only knows the health windows: the largest one not longer than the range. */
export function windowFor(r: Range): Window {
  return r === '24h' ? '24h' : r === '7d' ? '7d' : '30d';
}

export function gridLimit(p: Record<string, string>): number {
  const n = Number(p.limit);
  return Number.isInteger(n) && n > 0 && n <= 200 ? n : 30;
}

export interface RunFilters {
  ci: string | null;
  project: string | null;
  branch: string | null;
  result: string | null;
  /** Posted at or after (ISO 8601): the report card's links name the week behind a number. */
  from: string | null;
  /** Posted before (ISO 8601). */
  to: string | null;
}

export function runFilters(p: Record<string, string>): RunFilters {
  return {
    ci: p.ci || null,
    project: p.project || null,
    branch: p.branch || null,
    result: p.result || null,
    from: p.from || null,
    to: p.to || null,
  };
}
