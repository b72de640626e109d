import { describe, expect, it } from 'vitest';
import { collectionBadge, collectionRange, drawnWindow, rangeFrom, timelineSpans } from '../src/lib/collection';
import type { CollectionOut, ServerCollection } from '../src/lib/types';

const T0 = Date.parse('2024-05-01T00:00:00Z');
const at = (min: number) => new Date(T0 + min * 60_000).toISOString();

function server(over: Partial<ServerCollection> = {}): ServerCollection {
  return {
    server: 'review',
    connected: false,
    sessions: [
      { id: 1, connected_at: at(-30), last_seen_at: at(40), disconnected_at: at(40), reason: 'ConnectionError' },
      { id: 2, connected_at: at(50), last_seen_at: at(80), disconnected_at: at(80), reason: 'collector stopped' },
    ],
    gaps: [
      { start: at(40), end: at(50), state: 'covered', covered_by: 7, read_until: at(50) },
      { start: at(80), end: null, state: 'open', covered_by: null, read_until: null },
    ],
    passes: [],
    summary: {
      observed_from: at(0),
      observed_to: at(100),
      connected_s: 4800,
      covered_s: 600,
      uncovered_s: 0,
      open_s: 1200,
      completeness: 0.9,
      uncovered_gaps: 0,
      open_gap: true,
      passes_ok: 1,
      passes_failed: 0,
      passes_stalled: 0,
    },
    truncated: false,
    ...over,
  };
}

describe('timelineSpans', () => {
  it('clips sessions and gaps to the window and places them as shares of it', () => {
    const spans = timelineSpans(server(), at(0), at(200), T0 + 100 * 60_000); // drawn up to now (minute 100)
    expect(spans.map((s) => [s.kind, s.left, s.width, s.passId])).toEqual([
      ['connected', 0, 40, null], // from minute -30, clipped to the window's start
      ['covered', 40, 10, 7],
      ['connected', 50, 30, null],
      ['open', 80, 20, null], // open: up to now
    ]);
  });

  it('draws nothing for an empty window and skips spans outside it', () => {
    expect(timelineSpans(server(), at(10), at(10), T0)).toEqual([]);
    expect(timelineSpans(server(), at(41), at(49), T0 + 1e9).map((s) => s.kind)).toEqual(['covered']);
  });
});

describe('collectionBadge', () => {
  const out = (servers: ServerCollection[]): CollectionOut => ({ window_from: at(0), window_to: at(100), servers });
  const closed = server({ gaps: [server().gaps[0]], summary: { ...server().summary, open_gap: false } });

  it('says complete, or what is missing', () => {
    expect(collectionBadge(out([]))).toBeNull();
    expect(collectionBadge(out([closed]))).toEqual({ complete: true, text: 'collection complete' });
    const gappy = server({ summary: { ...server().summary, uncovered_gaps: 2 } });
    expect(collectionBadge(out([gappy, closed]))).toEqual({
      complete: false,
      text: 'collection: 2 uncovered gaps; stream down: review',
    });
  });
});

describe('collectionRange', () => {
  it('takes a known range, defaults to 24 h, and gives its start', () => {
    expect(collectionRange({ range: '7d' })).toBe('7d');
    expect(collectionRange({ range: '1y' })).toBe('24h');
    expect(rangeFrom('24h', T0)).toBe('2024-04-30T00:00:00.000Z');
  });
});

describe('a gap passes have partly read', () => {
  it('is covered up to where they read, then uncovered or open', () => {
    const partly = server({
      gaps: [
        { start: at(40), end: at(50), state: 'uncovered', covered_by: null, read_until: at(45) },
        { start: at(80), end: null, state: 'open', covered_by: null, read_until: at(90) },
      ],
    });
    const spans = timelineSpans(partly, at(0), at(100), T0 + 100 * 60_000);
    expect(spans.filter((s) => s.kind !== 'connected').map((s) => [s.kind, s.left, s.width])).toEqual([
      ['covered', 40, 5],
      ['uncovered', 45, 5],
      ['covered', 80, 10],
      ['open', 90, 10],
    ]);
  });
});

describe('drawnWindow', () => {
  it('starts at the first session when collection began inside the window', () => {
    const later = server({ summary: { ...server().summary, observed_from: at(30) } });
    expect(drawnWindow(later, at(0), at(100), T0 + 1e9)).toEqual([T0 + 30 * 60_000, T0 + 100 * 60_000]);
    expect(timelineSpans(later, at(0), at(100), T0 + 1e9)[0]).toMatchObject({ kind: 'connected', left: 0, width: (10 / 70) * 100 });
  });
});
