// SeriesPoint[] -> the column arrays uPlot draws (x in Unix seconds, gaps as null).

import type { SeriesPoint } from './types';

export interface SeriesColumns {
  x: number[];
  successPct: (number | null)[];
  p50: (number | null)[];
  p95: (number | null)[];
  runs: number[];
}

export function seriesColumns(points: readonly SeriesPoint[]): SeriesColumns {
  const sorted = points
    .map((p) => ({ p, t: Date.parse(p.t) }))
    .filter((e) => Number.isFinite(e.t))
    .sort((a, b) => a.t - b.t);
  const out: SeriesColumns = { x: [], successPct: [], p50: [], p95: [], runs: [] };
  for (const { p, t } of sorted) {
    out.x.push(Math.floor(t / 1000));
    out.successPct.push(p.success_rate === null ? null : Math.round(p.success_rate * 1000) / 10);
    out.p50.push(p.latency_p50_s);
    out.p95.push(p.latency_p95_s);
    out.runs.push(p.runs);
  }
  return out;
}

/** The [from, to] of a range ending now, as ISO strings (whole minutes, so URLs cache well). */
export function rangeBounds(hours: number, now: number = Date.now()): { from: string; to: string } {
  const to = Math.ceil(now / 60000) * 60000;
  const from = to - hours * 3600 * 1000;
  return { from: new Date(from).toISOString(), to: new Date(to).toISOString() };
}

/** Axis label for seconds: "45s", "12m", "1.5h". */
export function shortDuration(s: number | null | undefined): string {
  if (s === null || s === undefined || !Number.isFinite(s)) return '';
  if (s < 60) return `${Math.round(s)}s`;
  if (s < 3600) return `${Math.round(s / 60)}m`;
  const h = s / 3600;
  return `${h < 10 ? Math.round(h * 10) / 10 : Math.round(h)}h`;
}

/** Round tick steps for a latency axis, in seconds (1 min … 2 d). */
export const DURATION_INCRS = [60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800];
