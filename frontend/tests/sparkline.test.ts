import { describe, expect, it } from 'vitest';
import { rateClass, sparkline } from '../src/lib/sparkline';

describe('sparkline', () => {
  it('maps values to an SVG path across the width (1 at the top, 0 at the bottom)', () => {
    const s = sparkline([1, 0.5, 0], 84, 24, 2);
    expect(s.d).toBe('M2 2 L42 12 L82 22');
    expect(s.last).toEqual({ x: 82, y: 22, v: 0 });
    expect(s.mean).toBeCloseTo(0.5);
    expect(s.dots).toEqual([]);
  });

  it('breaks the line at gaps and draws isolated points as dots', () => {
    const s = sparkline([1, 1, null, 0.5, null, 0, 0], 62, 12, 1);
    // x step = 60/6 = 10
    expect(s.d).toBe('M1 1 L11 1 M51 11 L61 11');
    expect(s.dots).toEqual([{ x: 31, y: 6, v: 0.5 }]);
    expect(s.last).toEqual({ x: 61, y: 11, v: 0 });
  });

  it('handles empty, all-null and single values', () => {
    expect(sparkline([])).toEqual({ d: '', dots: [], last: null, mean: null });
    const nulls = sparkline([null, null]);
    expect(nulls.d).toBe('');
    expect(nulls.mean).toBeNull();
    const one = sparkline([0.8], 80, 18, 2);
    expect(one.d).toBe('');
    expect(one.dots).toHaveLength(1);
    expect(one.dots[0].x).toBe(40);
  });

  it('clamps out-of-range values', () => {
    const s = sparkline([2, -1], 10, 10, 0);
    expect(s.d).toBe('M0 0 L10 10');
  });

  it('classifies rates', () => {
    expect(rateClass(0.95)).toBe('ok');
    expect(rateClass(0.75)).toBe('warn');
    expect(rateClass(0.2)).toBe('bad');
    expect(rateClass(null)).toBe('none');
  });
});
