// Checking and applying live feed payloads (the websocket delivers `data: unknown`).

import { href } from './route';
import type { AlertOut, FeedMessage, RunOut, StateChange, SystemSummary } from './types';
import { STATES } from './types';

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null;

export function asRun(m: FeedMessage): RunOut | null {
  const d = m.data;
  if (m.type !== 'run' || !isObj(d)) return null;
  if (typeof d.id !== 'number' || typeof d.ci !== 'string' || typeof d.change !== 'number') return null;
  if (typeof d.patchset !== 'number' || typeof d.result_class !== 'string' || typeof d.posted_at !== 'string') return null;
  return { ...(d as unknown as RunOut), jobs: Array.isArray(d.jobs) ? (d.jobs as RunOut['jobs']) : [] };
}

export function asAlert(m: FeedMessage): AlertOut | null {
  const d = m.data;
  if (m.type !== 'alert' || !isObj(d)) return null;
  if (typeof d.id !== 'number' || typeof d.ci !== 'string' || typeof d.message !== 'string') return null;
  return d as unknown as AlertOut;
}

export function asStateChange(m: FeedMessage): StateChange | null {
  const d = m.data;
  if (m.type !== 'state' || !isObj(d)) return null;
  if (typeof d.ci !== 'string' || typeof d.state !== 'string') return null;
  if (!(STATES as readonly string[]).includes(d.state)) return null;
  return { ci: d.ci, state: d.state as StateChange['state'], state_reason: typeof d.state_reason === 'string' ? d.state_reason : '' };
}

/** Adds alerts to a newest-first list without duplicates (by id), newest first. */
export function mergeAlerts(list: readonly AlertOut[], incoming: readonly AlertOut[]): AlertOut[] {
  const byId = new Map<number, AlertOut>();
  for (const a of list) byId.set(a.id, a);
  for (const a of incoming) byId.set(a.id, a);
  return [...byId.values()].sort((a, b) => b.id - a.id);
}

/** Adds runs to a newest-first list without duplicates (by id). */
export function mergeRuns(list: readonly RunOut[], incoming: readonly RunOut[]): RunOut[] {
  const byId = new Map<number, RunOut>();
  for (const r of list) byId.set(r.id, r);
  for (const r of incoming) byId.set(r.id, r);
  return [...byId.values()].sort((a, b) => Date.parse(b.posted_at) - Date.parse(a.posted_at) || b.id - a.id);
}

/** A state message applied to the overview rows (a new array; unknown CIs leave it unchanged). */
export function applyStateChange(systems: readonly SystemSummary[], s: StateChange): SystemSummary[] {
  let hit = false;
  const out = systems.map((sys) => {
    if (sys.name !== s.ci) return sys;
    hit = true;
    return { ...sys, state: s.state, state_reason: s.state_reason };
  });
  return hit ? out : (systems as SystemSummary[]);
}

/** A run bumps its CI's "last seen". */
export function applyRunSeen(systems: readonly SystemSummary[], run: RunOut): SystemSummary[] {
  let hit = false;
  const out = systems.map((sys) => {
    if (sys.name !== run.ci) return sys;
    if (sys.last_seen && Date.parse(sys.last_seen) >= Date.parse(run.posted_at)) return sys;
    hit = true;
    return { ...sys, last_seen: run.posted_at };
  });
  return hit ? out : (systems as SystemSummary[]);
}

export function alertToast(a: AlertOut) {
  return {
    title: `${a.severity === 'critical' ? 'Critical' : a.severity === 'warning' ? 'Warning' : 'Info'} · ${a.ci}`,
    body: a.message,
    severity: a.severity,
    href: a.run_id !== null ? href.run(a.run_id) : href.system(a.ci),
  };
}
