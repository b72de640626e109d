import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ToastQueue, type Toast } from '../src/lib/toasts';

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

const t = (title: string) => ({ title, body: 'b', severity: 'warning' as const });

describe('ToastQueue', () => {
  it('auto-dismisses after the ttl', () => {
    const q = new ToastQueue({ ttlMs: 8000 });
    const seen: Toast[][] = [];
    q.subscribe((items) => seen.push(items));
    q.push(t('one'));
    vi.advanceTimersByTime(4000);
    q.push(t('two'));
    expect(q.items.map((x) => x.title)).toEqual(['one', 'two']);
    vi.advanceTimersByTime(4001);
    expect(q.items.map((x) => x.title)).toEqual(['two']);
    vi.advanceTimersByTime(4000);
    expect(q.items).toEqual([]);
    expect(seen.at(-1)).toEqual([]);
  });

  it('can be closed early and keeps at most `max` toasts', () => {
    const q = new ToastQueue({ ttlMs: 8000, max: 2 });
    const a = q.push(t('a'));
    q.push(t('b'));
    q.push(t('c'));
    expect(q.items.map((x) => x.title)).toEqual(['b', 'c']);
    q.dismiss(a); // already gone: no-op
    const keyB = q.items[0].key;
    q.dismiss(keyB);
    expect(q.items.map((x) => x.title)).toEqual(['c']);
    q.clear();
    expect(q.items).toEqual([]);
    vi.advanceTimersByTime(10000); // no stale timers fire into an empty queue
    expect(q.items).toEqual([]);
  });
});
