// A queue of transient notices (one per new alert): auto-dismissed, closable, bounded.

import type { Timers } from './ws';

export interface Toast {
  key: number;
  title: string;
  body: string;
  severity: 'info' | 'warning' | 'critical';
  href?: string;
}

export interface ToastQueueOptions {
  ttlMs?: number;
  max?: number;
  timers?: Timers;
}

export class ToastQueue {
  items: Toast[] = [];
  private nextKey = 1;
  private readonly ttlMs: number;
  private readonly max: number;
  private readonly timers: Timers;
  private readonly handles = new Map<number, unknown>();
  private readonly listeners = new Set<(items: Toast[]) => void>();

  constructor(opts: ToastQueueOptions = {}) {
    this.ttlMs = opts.ttlMs ?? 8000;
    this.max = opts.max ?? 5;
    this.timers = opts.timers ?? {
      setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
      clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
    };
  }

  subscribe(cb: (items: Toast[]) => void): () => void {
    this.listeners.add(cb);
    cb(this.items);
    return () => this.listeners.delete(cb);
  }

  private emit(): void {
    for (const cb of this.listeners) cb(this.items);
  }

  push(t: Omit<Toast, 'key'>): number {
    const key = this.nextKey++;
    this.items = [...this.items, { ...t, key }];
    while (this.items.length > this.max) this.dismiss(this.items[0].key, false);
    this.handles.set(
      key,
      this.timers.setTimeout(() => this.dismiss(key), this.ttlMs),
    );
    this.emit();
    return key;
  }

  dismiss(key: number, emit = true): void {
    const h = this.handles.get(key);
    if (h !== undefined) this.timers.clearTimeout(h);
    this.handles.delete(key);
    const before = this.items.length;
    this.items = this.items.filter((t) => t.key !== key);
    if (emit && this.items.length !== before) this.emit();
  }

  clear(): void {
    for (const h of this.handles.values()) this.timers.clearTimeout(h);
    this.handles.clear();
    this.items = [];
    this.emit();
  }
}
