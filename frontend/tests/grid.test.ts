import { describe, expect, it } from 'vitest';
import { cellKey, mergeRun } from '../src/lib/grid';
import { grid, runOut } from './fixtures';

describe('mergeRun', () => {
  it('fills an empty cell of an existing row', () => {
    const g = grid();
    const run = runOut({ id: 60, ci: 'acme-ci', change: 2000, patchset: 3, result: 'FAILURE', result_class: 'failure', vote: -1 });
    const res = mergeRun(g, run);
    expect(res.change).toBe('updated');
    expect(res.key).toBe('2000-3-acme-ci');
    expect(res.grid.rows[0].cells['acme-ci']).toMatchObject({ run_id: 60, result_class: 'failure', vote: -1, runs: 1 });
    // The input is not mutated (Svelte sees a new object).
    expect(g.rows[0].cells['acme-ci']).toBeUndefined();
    expect(res.grid).not.toBe(g);
  });

  it('replaces a cell with a newer recheck and counts it', () => {
    const g = grid();
    const run = runOut({ id: 51, ci: 'zuul', change: 2000, patchset: 3, result: 'FAILURE', result_class: 'failure', posted_at: '2024-05-01T11:30:00Z' });
    const res = mergeRun(g, run);
    expect(res.grid.rows[0].cells.zuul).toMatchObject({ run_id: 51, result_class: 'failure', runs: 2 });
  });

  it('keeps the newest result when an older one arrives late, but counts it', () => {
    const g = grid();
    const run = runOut({ id: 49, ci: 'zuul', change: 2000, patchset: 3, result_class: 'failure', posted_at: '2024-05-01T09:00:00Z' });
    const res = mergeRun(g, run);
    expect(res.grid.rows[0].cells.zuul).toMatchObject({ run_id: 50, result_class: 'success', runs: 2 });
  });

  it('does not count the same run twice', () => {
    const g = grid();
    const run = runOut({ id: 50, ci: 'zuul', change: 2000, patchset: 3, result: 'SUCCESS', log_url: 'https://logs.example.org/50b' });
    const res = mergeRun(g, run);
    expect(res.grid.rows[0].cells.zuul.runs).toBe(1);
    expect(res.grid.rows[0].cells.zuul.log_url).toBe('https://logs.example.org/50b');
  });

  it('inserts a row for a new patchset, newest first, keeping the subject of its change', () => {
    const g = grid();
    const top = mergeRun(g, runOut({ id: 70, change: 2100, patchset: 1 }));
    expect(top.change).toBe('inserted');
    expect(top.grid.rows.map((r) => `${r.change},${r.patchset}`)).toEqual(['2100,1', '2000,3', '1990,1']);
    expect(top.grid.rows[0].cells['acme-ci'].run_id).toBe(70);

    const ps4 = mergeRun(g, runOut({ id: 71, change: 2000, patchset: 4 }));
    expect(ps4.grid.rows.map((r) => `${r.change},${r.patchset}`)).toEqual(['2000,4', '2000,3', '1990,1']);
    expect(ps4.grid.rows[0].subject).toBe('Fix the thing');

    const mid = mergeRun(g, runOut({ id: 72, change: 1995, patchset: 2 }));
    expect(mid.grid.rows.map((r) => r.change)).toEqual([2000, 1995, 1990]);
  });

  it('respects the row limit', () => {
    const g = grid();
    const res = mergeRun(g, runOut({ id: 80, change: 3000, patchset: 1 }), { limit: 2 });
    expect(res.grid.rows.map((r) => r.change)).toEqual([3000, 2000]);
    const old = mergeRun(g, runOut({ id: 81, change: 10, patchset: 1 }), { limit: 2 });
    expect(old.change).toBe('none');
    expect(old.grid).toBe(g);
  });

  it('adds a column for a CI it has not seen', () => {
    const res = mergeRun(grid(), runOut({ id: 90, ci: 'new-ci', change: 1990, patchset: 1 }));
    expect(res.grid.systems).toEqual(['zuul', 'acme-ci', 'new-ci']);
    expect(res.grid.rows[1].cells['new-ci'].run_id).toBe(90);
  });

  it('ignores runs of other projects and other changes', () => {
    const g = grid();
    expect(mergeRun(g, runOut({ project: 'openstack/cinder' })).change).toBe('none');
    expect(mergeRun(g, runOut({ change: 2000, patchset: 3 }), { change: 1990 }).change).toBe('none');
    const any = { ...g, project: null };
    expect(mergeRun(any, runOut({ project: 'openstack/cinder', change: 5000 })).change).toBe('inserted');
  });

  it('keys cells as CHANGE-PATCHSET-CI', () => {
    expect(cellKey(123, 4, 'acme-ci')).toBe('123-4-acme-ci');
  });
});
