// The Collection page's timeline: each server's window cut into spans (stream connected, gap
// covered by a backfill pass, gap uncovered, gap still open), placed as shares of the window.

import { RANGES, type Range, rangeHours } from './route';
import type { CollectionOut, GapState, ServerCollection } from './types';

export type SpanKind = 'connected' | GapState;

export interface Span {
  kind: SpanKind;
  /** Clipped to the drawn window [from, min(to, now)]. */
  start: number;
  end: number;
  /** Position and width, as percentages of the drawn window. */
  left: number;
  width: number;
  /** The backfill pass that covered a gap. */
  passId: number | null;
}

/** The page's `range` parameter (default 24 h). */
export function collectionRange(p: Record<string, string>): Range {
  return (RANGES as readonly string[]).includes(p.range) ? (p.range as Range) : '24h';
}

/** The API's `from` for a range ending now. */
export function rangeFrom(range: Range, now: number = Date.now()): string {
  return new Date(now - rangeHours(range) * 3600_000).toISOString();
}

/** What the timeline draws: the window from the server's first session on (when later), up to now. */
export function drawnWindow(server: ServerCollection, windowFrom: string, windowTo: string, now: number = Date.now()): [number, number] {
  const first = server.summary.observed_from;
  const low = Math.max(Date.parse(windowFrom), first ? Date.parse(first) : -Infinity);
  return [low, Math.min(Date.parse(windowTo), now)];
}

/** Sessions and gaps of `server` as spans of the drawn window, oldest first, none empty. */
export function timelineSpans(server: ServerCollection, windowFrom: string, windowTo: string, now: number = Date.now()): Span[] {
  const [low, high] = drawnWindow(server, windowFrom, windowTo, now);
  if (!(high > low)) return [];
  const spans: Span[] = [];
  const add = (kind: SpanKind, startIso: string, endIso: string | null, passId: number | null) => {
    const start = Math.max(low, Date.parse(startIso));
    const end = Math.min(high, endIso === null ? high : Date.parse(endIso));
    if (!(end > start)) return;
    spans.push({ kind, start, end, left: ((start - low) / (high - low)) * 100, width: ((end - start) / (high - low)) * 100, passId });
  };
  for (const s of server.sessions) add('connected', s.connected_at, s.disconnected_at, null);
  for (const g of server.gaps) {
    // the part of an uncovered or open gap that passes have read already is covered data
    const read = g.state === 'covered' ? null : g.read_until;
    if (read !== null) add('covered', g.start, read, null);
    add(g.state, read ?? g.start, g.end, g.covered_by);
  }
  return spans.sort((a, b) => a.start - b.start);
}

export interface CollectionBadge {
  complete: boolean;
  text: string;
}

/** The overview's one-liner: complete, or what is not (uncovered gaps, a stream down now). */
export function collectionBadge(c: CollectionOut): CollectionBadge | null {
  if (c.servers.length === 0) return null;
  const uncovered = c.servers.reduce((n, s) => n + s.summary.uncovered_gaps, 0);
  const down = c.servers.filter((s) => s.summary.open_gap).map((s) => s.server);
  const parts: string[] = [];
  if (uncovered > 0) parts.push(`${uncovered} uncovered gap${uncovered === 1 ? '' : 's'}`);
  if (down.length > 0) parts.push(`stream down: ${down.join(', ')}`);
  if (parts.length === 0) return { complete: true, text: 'collection complete' };
  return { complete: false, text: `collection: ${parts.join('; ')}` };
}
