import { describe, expect, it } from 'vitest';
import { compareValues, defaultDir, isSystemSortKey, sortBy, sortSystems } from '../src/lib/sort';
import type { SystemSummary } from '../src/lib/types';
import { system } from './fixtures';

describe('sortBy', () => {
  const rows = [
    { n: 'b', v: 2 },
    { n: 'a', v: null },
    { n: 'c', v: 10 },
    { n: 'd', v: 1 },
  ];

  it('sorts numbers both ways with missing values last', () => {
    expect(sortBy(rows, (r) => r.v, 'asc').map((r) => r.n)).toEqual(['d', 'b', 'c', 'a']);
    expect(sortBy(rows, (r) => r.v, 'desc').map((r) => r.n)).toEqual(['c', 'b', 'd', 'a']);
  });

  it('is stable and does not mutate its input', () => {
    const same = [
      { n: 'x', v: 1 },
      { n: 'y', v: 1 },
      { n: 'z', v: 1 },
    ];
    expect(sortBy(same, (r) => r.v, 'desc').map((r) => r.n)).toEqual(['x', 'y', 'z']);
    expect(rows[0].n).toBe('b');
  });

  it('compares strings case-insensitively with numeric collation', () => {
    const names = ['ci-10', 'CI-2', 'ci-1', 'Alpha'];
    expect(sortBy(names, (s) => s).slice()).toEqual(['Alpha', 'ci-1', 'CI-2', 'ci-10']);
    expect(compareValues(null, 1)).toBe(1);
    expect(compareValues(true, false)).toBe(1);
  });
});

describe('sortSystems', () => {
  const list: SystemSummary[] = [
    system({ name: 'zeta', state: 'healthy', health: { success_rate: 0.99, latency_p50_s: 600 } }),
    system({ name: 'alpha', state: 'failing', health: { success_rate: 0.1, latency_p50_s: null } }),
    system({ name: 'mid', state: 'degraded', health: { success_rate: null, latency_p50_s: 1200 } }),
    system({ name: 'beta', state: 'failing', health: { success_rate: 0.5, latency_p50_s: 300 } }),
  ];

  it('puts the worst state first, ties by name', () => {
    expect(sortSystems(list, 'state', 'asc').map((s) => s.name)).toEqual(['alpha', 'beta', 'mid', 'zeta']);
    expect(sortSystems(list, 'state', 'desc').map((s) => s.name)).toEqual(['zeta', 'mid', 'alpha', 'beta']);
  });

  it('sorts by success rate with unknown rates last', () => {
    expect(sortSystems(list, 'success', 'desc').map((s) => s.name)).toEqual(['zeta', 'beta', 'alpha', 'mid']);
    expect(sortSystems(list, 'p50', 'asc').map((s) => s.name)).toEqual(['beta', 'zeta', 'mid', 'alpha']);
  });

  it('knows its keys and default directions', () => {
    expect(isSystemSortKey('agreement')).toBe(true);
    expect(isSystemSortKey('toString')).toBe(false);
    expect(isSystemSortKey('__proto__')).toBe(false);
    expect(defaultDir('success')).toBe('desc');
    expect(defaultDir('name')).toBe('asc');
  });
});
