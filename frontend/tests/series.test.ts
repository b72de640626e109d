import { describe, expect, it } from 'vitest';
import { rangeBounds, seriesColumns, shortDuration } from '../src/lib/series';
import type { SeriesPoint } from '../src/lib/types';

const pt = (t: string, rate: number | null, p50: number | null = 60): SeriesPoint => ({
  t,
  runs: rate === null ? 0 : 10,
  successes: 0,
  failures: 0,
  infra_errors: 0,
  success_rate: rate,
  latency_p50_s: p50,
  latency_p95_s: p50 === null ? null : p50 * 2,
});

describe('seriesColumns', () => {
  it('sorts by time and converts to uPlot columns (seconds, percent, gaps as null)', () => {
    const c = seriesColumns([pt('2024-05-01T01:00:00Z', 0.5), pt('2024-05-01T00:00:00Z', 0.9876), pt('2024-05-01T02:00:00Z', null, null)]);
    expect(c.x).toEqual([1714521600, 1714525200, 1714528800]);
    expect(c.successPct).toEqual([98.8, 50, null]);
    expect(c.p50).toEqual([60, 60, null]);
    expect(c.p95).toEqual([120, 120, null]);
    expect(c.runs).toEqual([10, 10, 0]);
  });

  it('drops points with invalid times', () => {
    expect(seriesColumns([pt('garbage', 1)]).x).toEqual([]);
  });
});

describe('rangeBounds and shortDuration', () => {
  it('ends the range at the next whole minute', () => {
    const now = Date.parse('2024-05-01T12:00:30Z');
    expect(rangeBounds(24, now)).toEqual({ from: '2024-04-30T12:01:00.000Z', to: '2024-05-01T12:01:00.000Z' });
  });

  it('formats axis durations', () => {
    expect(shortDuration(30)).toBe('30s');
    expect(shortDuration(600)).toBe('10m');
    expect(shortDuration(5400)).toBe('1.5h');
    expect(shortDuration(36000)).toBe('10h');
    expect(shortDuration(null)).toBe('');
  });
});
