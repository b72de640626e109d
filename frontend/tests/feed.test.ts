import { describe, expect, it } from 'vitest';
import { alertToast, applyRunSeen, applyStateChange, asAlert, asRun, asStateChange, mergeAlerts, mergeRuns } from '../src/lib/feed';
import { alertOut, runOut, system } from './fixtures';

describe('feed payloads', () => {
  it('accepts well-formed payloads and rejects others', () => {
    expect(asRun({ type: 'run', id: 1, data: runOut({ id: 5 }) })?.id).toBe(5);
    expect(asRun({ type: 'run', id: 1, data: { id: 5 } })).toBeNull();
    expect(asRun({ type: 'alert', id: 1, data: runOut() })).toBeNull();
    const noJobs = { ...runOut(), jobs: undefined };
    expect(asRun({ type: 'run', id: 1, data: noJobs })?.jobs).toEqual([]);
    expect(asAlert({ type: 'alert', id: 2, data: alertOut({ id: 9 }) })?.id).toBe(9);
    expect(asAlert({ type: 'alert', id: 2, data: null })).toBeNull();
    expect(asStateChange({ type: 'state', id: 3, data: { ci: 'a', state: 'failing', state_reason: 'x' } })).toEqual({
      ci: 'a',
      state: 'failing',
      state_reason: 'x',
    });
    expect(asStateChange({ type: 'state', id: 3, data: { ci: 'a', state: 'exploded' } })).toBeNull();
  });

  it('merges alerts and runs newest first without duplicates', () => {
    const merged = mergeAlerts([alertOut({ id: 3 }), alertOut({ id: 1 })], [alertOut({ id: 2 }), alertOut({ id: 3, message: 'new' })]);
    expect(merged.map((a) => a.id)).toEqual([3, 2, 1]);
    expect(merged[0].message).toBe('new');
    const runs = mergeRuns(
      [runOut({ id: 1, posted_at: '2024-05-01T10:00:00Z' })],
      [runOut({ id: 2, posted_at: '2024-05-01T11:00:00Z' }), runOut({ id: 1, posted_at: '2024-05-01T10:00:00Z' })],
    );
    expect(runs.map((r) => r.id)).toEqual([2, 1]);
  });

  it('applies state changes and last-seen to the overview rows', () => {
    const rows = [system({ name: 'a' }), system({ name: 'b', last_seen: '2024-05-01T10:00:00Z' })];
    const changed = applyStateChange(rows, { ci: 'a', state: 'failing', state_reason: 'boom' });
    expect(changed[0]).toMatchObject({ state: 'failing', state_reason: 'boom' });
    expect(changed[1]).toBe(rows[1]);
    expect(applyStateChange(rows, { ci: 'zzz', state: 'failing', state_reason: '' })).toBe(rows);
    const seen = applyRunSeen(rows, runOut({ ci: 'b', posted_at: '2024-05-01T12:00:00Z' }));
    expect(seen[1].last_seen).toBe('2024-05-01T12:00:00Z');
    expect(applyRunSeen(rows, runOut({ ci: 'b', posted_at: '2024-05-01T09:00:00Z' }))).toBe(rows);
  });

  it('turns an alert into a toast linking to its run or system', () => {
    expect(alertToast(alertOut({ severity: 'critical', ci: 'x', run_id: 4 }))).toMatchObject({
      title: 'Critical · x',
      href: '#/run/4',
    });
    expect(alertToast(alertOut({ ci: 'x y', run_id: null })).href).toBe('#/system/x%20y');
  });
});
