// Formatting of times, durations and rates for dense tables. Pure functions.

export const DASH = '—';

function toMs(t: string | number | Date): number {
  if (t instanceof Date) return t.getTime();
  if (typeof t === 'number') return t;
  return Date.parse(t);
}

/**
 * "just now", "42 s ago", "5 min ago", "3 h ago", "2 d ago" (or "in 5 min" for the future;
 * a few seconds of clock skew still reads "just now"). `null` → "never".
 */
export function timeAgo(t: string | number | Date | null | undefined, now: number = Date.now()): string {
  if (t === null || t === undefined || t === '') return 'never';
  const ms = toMs(t);
  if (!Number.isFinite(ms)) return DASH;
  const diff = Math.round((now - ms) / 1000);
  const future = diff < 0;
  const s = Math.abs(diff);
  // A minute of clock skew between the server and this browser still reads "just now".
  if (s < 10 || (future && s < 60)) return 'just now';
  let text: string;
  if (s < 60) text = `${s} s`;
  else if (s < 3600) text = `${Math.floor(s / 60)} min`;
  else if (s < 86400) text = `${Math.floor(s / 3600)} h`;
  else if (s < 86400 * 60) text = `${Math.floor(s / 86400)} d`;
  else if (s < 86400 * 365 * 2) text = `${Math.floor(s / (86400 * 30))} mo`;
  else text = `${Math.floor(s / (86400 * 365))} y`;
  return future ? `in ${text}` : `${text} ago`;
}

/** Seconds → "45 s", "12 min", "1 h 02 m", "2 d 03 h". */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return DASH;
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) {
    const m = Math.floor(s / 60);
    const rest = s % 60;
    return m < 10 && rest ? `${m} min ${rest} s` : `${m} min`;
  }
  if (s < 86400) {
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    return `${h} h ${String(m).padStart(2, '0')} m`;
  }
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  return `${d} d ${String(h).padStart(2, '0')} h`;
}

/** Fraction → "95.3%" ("100%" and "0%" without decimals). `null` → "—". */
export function formatPct(x: number | null | undefined, digits = 1): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return DASH;
  const v = x * 100;
  if (v >= 99.95 && v <= 100) return '100%';
  if (v === 0) return '0%';
  return `${v.toFixed(digits)}%`;
}

/** Absolute UTC time, compact: "2024-05-01 13:04 UTC". */
export function formatUtc(t: string | number | Date | null | undefined): string {
  if (t === null || t === undefined || t === '') return DASH;
  const ms = toMs(t);
  if (!Number.isFinite(ms)) return DASH;
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
}

export function formatVote(v: number | null | undefined): string {
  if (v === null || v === undefined) return '';
  return v > 0 ? `+${v}` : String(v);
}

export function formatCount(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return DASH;
  if (n >= 10000) return `${Math.round(n / 1000)}k`;
  return String(n);
}
