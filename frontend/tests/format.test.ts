import { describe, expect, it } from 'vitest';
import { formatCount, formatDuration, formatPct, formatUtc, formatVote, timeAgo } from '../src/lib/format';

const NOW = Date.parse('2024-05-01T12:00:00Z');
const ago = (s: number) => new Date(NOW - s * 1000).toISOString();

describe('timeAgo', () => {
  it.each([
    [0, 'just now'],
    [5, 'just now'],
    [42, '42 s ago'],
    [60, '1 min ago'],
    [59 * 60, '59 min ago'],
    [3 * 3600 + 120, '3 h ago'],
    [23 * 3600, '23 h ago'],
    [2 * 86400 + 10, '2 d ago'],
    [90 * 86400, '3 mo ago'],
    [3 * 365 * 86400, '3 y ago'],
  ])('%i s → %s', (s, text) => {
    expect(timeAgo(ago(s), NOW)).toBe(text);
  });

  it('handles the future, null and garbage', () => {
    expect(timeAgo(new Date(NOW + 300_000).toISOString(), NOW)).toBe('in 5 min');
    expect(timeAgo(new Date(NOW + 3000).toISOString(), NOW)).toBe('just now');
    expect(timeAgo(new Date(NOW + 45_000).toISOString(), NOW)).toBe('just now'); // clock skew
    expect(timeAgo(null, NOW)).toBe('never');
    expect(timeAgo('not a date', NOW)).toBe('—');
  });

  it('accepts numbers and dates', () => {
    expect(timeAgo(NOW - 7200_000, NOW)).toBe('2 h ago');
    expect(timeAgo(new Date(NOW - 7200_000), NOW)).toBe('2 h ago');
  });
});

describe('formatDuration', () => {
  it.each([
    [null, '—'],
    [0, '0 s'],
    [45, '45 s'],
    [125, '2 min 5 s'],
    [720, '12 min'],
    [3720, '1 h 02 m'],
    [86400 + 3 * 3600, '1 d 03 h'],
  ])('%s → %s', (s, text) => {
    expect(formatDuration(s as number | null)).toBe(text);
  });
});

describe('formatPct and friends', () => {
  it('formats fractions as percentages', () => {
    expect(formatPct(0.953)).toBe('95.3%');
    expect(formatPct(1)).toBe('100%');
    expect(formatPct(0.99996)).toBe('100%');
    expect(formatPct(0)).toBe('0%');
    expect(formatPct(0.5, 0)).toBe('50%');
    expect(formatPct(null)).toBe('—');
    expect(formatPct(Number.NaN)).toBe('—');
  });

  it('formats votes, counts and UTC times', () => {
    expect(formatVote(1)).toBe('+1');
    expect(formatVote(-1)).toBe('-1');
    expect(formatVote(null)).toBe('');
    expect(formatCount(12345)).toBe('12k');
    expect(formatCount(999)).toBe('999');
    expect(formatUtc('2024-05-01T13:04:59Z')).toBe('2024-05-01 13:04 UTC');
    expect(formatUtc(null)).toBe('—');
  });
});
