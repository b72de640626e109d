// Merging live `run` messages into the patchset × CI grid (and the change view).

import type { Grid, GridCell, GridRow, RunOut } from './types';

export function cellKey(change: number, patchset: number, ci: string): string {
  return `${change}-${patchset}-${ci}`;
}

export function rowKey(row: Pick<GridRow, 'server' | 'change' | 'patchset'>): string {
  return `${row.server}|${row.change}|${row.patchset}`;
}

export function cellFromRun(run: RunOut, runs = 1): GridCell {
  return {
    run_id: run.id,
    result: run.result,
    result_class: run.result_class,
    vote: run.vote,
    posted_at: run.posted_at,
    log_url: run.log_url,
    runs,
  };
}

function isNewer(run: RunOut, cell: GridCell): boolean {
  const a = Date.parse(run.posted_at);
  const b = Date.parse(cell.posted_at);
  if (Number.isFinite(a) && Number.isFinite(b) && a !== b) return a > b;
  return run.id > cell.run_id;
}

export interface MergeResult {
  grid: Grid;
  /** What happened: a cell updated in an existing row, a new row inserted, or nothing (other project, stale run). */
  change: 'updated' | 'inserted' | 'none';
  /** cellKey of the touched cell (for the flash), when something changed. */
  key: string | null;
}

export interface MergeOptions {
  /** Keep at most this many rows (the oldest are dropped when a row is inserted). */
  limit?: number;
  /** Only accept runs on this change (the change view). */
  change?: number;
}

/**
 * Returns a new Grid with the run applied; the input is not mutated. A run for a patchset already in
 * the grid replaces that CI's cell when it is newer (a recheck: `runs` counts it); a run for a new
 * patchset inserts a row, newest first (before the first row of a lower change/patchset); a run of
 * another project (when the grid has one) is ignored. A CI not yet in the columns is appended.
 */
export function mergeRun(grid: Grid, run: RunOut, opts: MergeOptions = {}): MergeResult {
  const none: MergeResult = { grid, change: 'none', key: null };
  if (grid.project && run.project !== grid.project) return none;
  if (opts.change !== undefined && run.change !== opts.change) return none;
  const key = cellKey(run.change, run.patchset, run.ci);
  const systems = grid.systems.includes(run.ci) ? grid.systems : [...grid.systems, run.ci];
  const idx = grid.rows.findIndex(
    (r) => r.server === run.server && r.change === run.change && r.patchset === run.patchset,
  );

  if (idx >= 0) {
    const row = grid.rows[idx];
    const old = row.cells[run.ci];
    if (old && old.run_id === run.id) {
      // The same run again (e.g. an edit): refresh its fields, count unchanged.
      const cell = cellFromRun(run, old.runs);
      const rows = grid.rows.slice();
      rows[idx] = { ...row, cells: { ...row.cells, [run.ci]: cell } };
      return { grid: { ...grid, systems, rows }, change: 'updated', key };
    }
    if (old && !isNewer(run, old)) {
      // An older result arrived late: it only adds to the recheck count.
      const rows = grid.rows.slice();
      rows[idx] = { ...row, cells: { ...row.cells, [run.ci]: { ...old, runs: old.runs + 1 } } };
      return { grid: { ...grid, systems, rows }, change: 'updated', key };
    }
    const cell = cellFromRun(run, old ? old.runs + 1 : 1);
    const rows = grid.rows.slice();
    rows[idx] = { ...row, cells: { ...row.cells, [run.ci]: cell } };
    return { grid: { ...grid, systems, rows }, change: 'updated', key };
  }

  const newRow: GridRow = {
    server: run.server,
    change: run.change,
    patchset: run.patchset,
    project: run.project,
    branch: run.branch,
    subject: null,
    url: null,
    created_at: null,
    cells: { [run.ci]: cellFromRun(run) },
  };
  // Keep the subject of a sibling patchset, if the grid has one.
  const sibling = grid.rows.find((r) => r.server === run.server && r.change === run.change);
  if (sibling) {
    newRow.subject = sibling.subject;
    newRow.url = sibling.url;
  }
  let at = grid.rows.findIndex(
    (r) => r.change < run.change || (r.change === run.change && r.patchset < run.patchset),
  );
  if (at < 0) at = grid.rows.length;
  // With a full grid, a patchset older than every row it holds is not shown (it would be dropped).
  if (opts.limit !== undefined && at >= opts.limit) return none;
  const rows = [...grid.rows.slice(0, at), newRow, ...grid.rows.slice(at)];
  if (opts.limit !== undefined && rows.length > opts.limit) rows.length = opts.limit;
  return { grid: { ...grid, systems, rows }, change: 'inserted', key };
}
