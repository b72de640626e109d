// Table sorting: stable, nulls always last, strings case-insensitive with numeric collation.

import type { State, SystemSummary } from './types';

export type SortDir = 'asc' | 'desc';
export type SortValue = string | number | boolean | null | undefined;

const collator = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });

export function compareValues(a: SortValue, b: SortValue): number {
  const an = a === null || a === undefined || (typeof a === 'number' && Number.isNaN(a));
  const bn = b === null || b === undefined || (typeof b === 'number' && Number.isNaN(b));
  if (an || bn) return an === bn ? 0 : an ? 1 : -1;
  if (typeof a === 'string' && typeof b === 'string') return collator.compare(a, b);
  const x = typeof a === 'boolean' ? Number(a) : a;
  const y = typeof b === 'boolean' ? Number(b) : b;
  return x < y ? -1 : x > y ? 1 : 0;
}

/** A sorted copy; `tiebreak` orders equal rows (always ascending). Missing values go last either way. */
export function sortBy<T>(
  rows: readonly T[],
  key: (row: T) => SortValue,
  dir: SortDir = 'asc',
  tiebreak?: (row: T) => SortValue,
): T[] {
  const sign = dir === 'desc' ? -1 : 1;
  return rows
    .map((row, index) => ({ row, index, k: key(row) }))
    .sort((a, b) => {
      const aMissing = a.k === null || a.k === undefined;
      const bMissing = b.k === null || b.k === undefined;
      let c: number;
      if (aMissing || bMissing) c = compareValues(a.k, b.k); // nulls last, unaffected by dir
      else c = sign * compareValues(a.k, b.k);
      if (c === 0 && tiebreak) c = compareValues(tiebreak(a.row), tiebreak(b.row));
      return c !== 0 ? c : a.index - b.index;
    })
    .map((e) => e.row);
}

/** Worst first when sorting ascending: failing, degraded, silent, unknown, healthy. */
export const STATE_SEVERITY: Record<State, number> = {
  failing: 0,
  degraded: 1,
  silent: 2,
  unknown: 3,
  healthy: 4,
};

export const SYSTEM_SORT_KEYS = {
  state: (s: SystemSummary) => STATE_SEVERITY[s.state] ?? 9,
  name: (s: SystemSummary) => s.display_name || s.name,
  success: (s: SystemSummary) => s.health.success_rate,
  runs: (s: SystemSummary) => s.health.runs,
  last_seen: (s: SystemSummary) => (s.last_seen ? Date.parse(s.last_seen) : null),
  p50: (s: SystemSummary) => s.health.latency_p50_s,
  p95: (s: SystemSummary) => s.health.latency_p95_s,
  coverage: (s: SystemSummary) => s.health.coverage,
  agreement: (s: SystemSummary) => s.health.agreement,
} satisfies Record<string, (s: SystemSummary) => SortValue>;

export type SystemSortKey = keyof typeof SYSTEM_SORT_KEYS;

export function isSystemSortKey(k: string | null | undefined): k is SystemSortKey {
  return typeof k === 'string' && Object.prototype.hasOwnProperty.call(SYSTEM_SORT_KEYS, k);
}

/** Systems sorted by a column, ties broken by name. */
export function sortSystems(rows: readonly SystemSummary[], key: SystemSortKey, dir: SortDir): SystemSummary[] {
  return sortBy(rows, SYSTEM_SORT_KEYS[key], dir, (s) => s.name);
}

/** The direction a column sorts by first: text and state ascending, numbers descending. */
export function defaultDir(key: SystemSortKey): SortDir {
  return key === 'name' || key === 'state' || key === 'p50' || key === 'p95' ? 'asc' : 'desc';
}
