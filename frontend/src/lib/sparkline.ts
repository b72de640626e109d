// The tiny success-rate line of the overview: an SVG path from values in [0, 1] (null = no runs).

export interface SparkPoint {
  x: number;
  y: number;
  v: number;
}

export interface Sparkline {
  /** SVG path data; a null value breaks the line (a new "M" starts after a gap). Empty when no data. */
  d: string;
  /** Points that have no neighbour in their segment (drawn as dots so they are not invisible). */
  dots: SparkPoint[];
  /** The newest point with a value, if any (highlighted). */
  last: SparkPoint | null;
  /** Mean of the non-null values, or null. */
  mean: number | null;
}

const round = (n: number) => Math.round(n * 10) / 10;

export function sparkline(
  values: readonly (number | null | undefined)[],
  width = 80,
  height = 18,
  pad = 2,
): Sparkline {
  const n = values.length;
  const empty: Sparkline = { d: '', dots: [], last: null, mean: null };
  if (n === 0) return empty;
  const innerW = Math.max(0, width - 2 * pad);
  const innerH = Math.max(0, height - 2 * pad);
  const step = n > 1 ? innerW / (n - 1) : 0;
  const parts: string[] = [];
  const dots: SparkPoint[] = [];
  let segment: SparkPoint[] = [];
  let last: SparkPoint | null = null;
  let sum = 0;
  let count = 0;

  const flush = () => {
    if (segment.length === 1) dots.push(segment[0]);
    else if (segment.length > 1)
      parts.push(segment.map((p, i) => `${i === 0 ? 'M' : 'L'}${p.x} ${p.y}`).join(' '));
    segment = [];
  };

  values.forEach((raw, i) => {
    if (raw === null || raw === undefined || !Number.isFinite(raw)) {
      flush();
      return;
    }
    const v = Math.min(1, Math.max(0, raw));
    const x = round(n > 1 ? pad + i * step : width / 2);
    const y = round(pad + (1 - v) * innerH);
    const p = { x, y, v };
    segment.push(p);
    last = p;
    sum += v;
    count += 1;
  });
  flush();
  return { d: parts.join(' '), dots, last, mean: count ? sum / count : null };
}

/** Colour class for a success rate: ok ≥ 90 %, warn ≥ 70 %, bad below; none when unknown. */
export function rateClass(v: number | null | undefined): 'ok' | 'warn' | 'bad' | 'none' {
  if (v === null || v === undefined || !Number.isFinite(v)) return 'none';
  if (v >= 0.9) return 'ok';
  if (v >= 0.7) return 'warn';
  return 'bad';
}
