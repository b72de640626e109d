// The live feed client: one websocket, resumable with `since`, duplicate-free, self-healing.
//
// State machine (ConnState):
//   reconnecting --hello--> live --close/heartbeat timeout--> reconnecting --(N failures)--> offline
//   any --stop()--> offline (final until start())
// "offline" also keeps retrying in the background (with the capped backoff); it only tells the operator
// that the server has been unreachable for several attempts in a row.

import type { FeedKind, FeedMessage } from './types';

export type ConnState = 'live' | 'reconnecting' | 'offline';

/** The part of the browser WebSocket the client uses (a fake one is injected in tests). */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason?: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

export type SocketFactory = (url: string) => SocketLike;

export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
  factor: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 1000, maxMs: 30000, factor: 2 };

/**
 * Delay before reconnect attempt `attempt` (0-based): exponential growth capped at maxMs, with "equal
 * jitter" (between half and all of the capped value) so a fleet of dashboards does not reconnect in
 * lockstep after a server restart. Never above maxMs.
 */
export function backoffDelay(attempt: number, opts: BackoffOptions = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const exp = Math.min(opts.maxMs, opts.baseMs * Math.pow(opts.factor, Math.max(0, attempt)));
  const r = Math.min(1, Math.max(0, random()));
  return Math.min(opts.maxMs, Math.round(exp / 2 + (exp / 2) * r));
}

export interface Subscription {
  kinds: FeedKind[];
  ci?: string[];
  projects?: string[];
}

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface LiveClientOptions {
  url: string;
  createSocket: SocketFactory;
  subscription?: Subscription;
  onMessage?: (msg: FeedMessage) => void;
  onStateChange?: (state: ConnState) => void;
  /** The server's feed restarted (its newest id went below ours): views should reload. */
  onReset?: () => void;
  backoff?: Partial<BackoffOptions>;
  /** Reconnect when nothing arrived for this long (the server pings every 15 s). */
  heartbeatTimeoutMs?: number;
  /** After this many failed attempts in a row the state reads "offline". */
  offlineAfter?: number;
  random?: () => number;
  timers?: Timers;
}

export const CLOSE_SLOW_CONSUMER = 4008;
export const CLOSE_HEARTBEAT = 4000;
const FEED_KINDS: ReadonlySet<string> = new Set(['run', 'alert', 'state', 'incident']);

export class LiveClient {
  state: ConnState = 'reconnecting';
  /** The newest feed id seen; sent as `since` on every reconnect. */
  lastId: number | null = null;
  /** Reconnect attempts since the last successful hello. */
  attempt = 0;
  /** Messages dropped because their id was not newer than lastId. */
  duplicates = 0;

  private readonly opts: LiveClientOptions;
  private readonly backoff: BackoffOptions;
  private readonly timers: Timers;
  private readonly heartbeatMs: number;
  private readonly offlineAfter: number;
  private socket: SocketLike | null = null;
  private gotHello = false;
  private stopped = true;
  private reconnectTimer: unknown = null;
  private watchdog: unknown = null;

  constructor(opts: LiveClientOptions) {
    this.opts = opts;
    this.backoff = { ...DEFAULT_BACKOFF, ...opts.backoff };
    this.heartbeatMs = opts.heartbeatTimeoutMs ?? 40000;
    this.offlineAfter = opts.offlineAfter ?? 3;
    this.timers = opts.timers ?? {
      setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
      clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
    };
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.attempt = 0;
    this.setState('reconnecting');
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.clearReconnect();
    this.clearWatchdog();
    const s = this.socket;
    this.socket = null;
    if (s) {
      detach(s);
      try {
        s.close(1000, 'client stopped');
      } catch {
        /* already closed */
      }
    }
    this.setState('offline');
  }

  /** Skip the backoff wait (e.g. the browser came back online). No-op while live. */
  reconnectNow(): void {
    if (this.stopped || this.state === 'live') return;
    if (this.socket) return; // an attempt is under way
    this.clearReconnect();
    this.attempt = 0;
    this.connect();
  }

  private setState(s: ConnState): void {
    if (this.state === s) return;
    this.state = s;
    this.opts.onStateChange?.(s);
  }

  private connect(): void {
    this.reconnectTimer = null;
    if (this.stopped) return;
    this.gotHello = false;
    let sock: SocketLike;
    try {
      sock = this.opts.createSocket(this.opts.url);
    } catch {
      this.socket = null;
      this.afterClose(null);
      return;
    }
    this.socket = sock;
    sock.onopen = () => {
      if (sock !== this.socket) return;
      const sub = this.opts.subscription ?? { kinds: ['run', 'alert', 'state'] };
      const msg: Record<string, unknown> = { type: 'subscribe', kinds: sub.kinds };
      if (sub.ci && sub.ci.length) msg.ci = sub.ci;
      if (sub.projects && sub.projects.length) msg.projects = sub.projects;
      if (this.lastId !== null) msg.since = this.lastId;
      this.send(msg);
      this.armWatchdog();
    };
    sock.onmessage = (ev) => {
      if (sock !== this.socket) return;
      this.armWatchdog();
      this.handle(ev.data);
    };
    sock.onerror = () => {
      /* a close event follows */
    };
    sock.onclose = (ev) => {
      if (sock !== this.socket) return;
      this.afterClose(ev.code);
    };
    this.armWatchdog();
  }

  private send(msg: unknown): void {
    try {
      this.socket?.send(JSON.stringify(msg));
    } catch {
      /* the close event will follow */
    }
  }

  private handle(raw: unknown): void {
    if (typeof raw !== 'string') return;
    let msg: unknown;
    try {
      msg = JSON.parse(raw);
    } catch {
      return;
    }
    if (!msg || typeof msg !== 'object') return;
    const m = msg as { type?: unknown; id?: unknown; data?: unknown };
    switch (m.type) {
      case 'hello': {
        this.gotHello = true;
        this.attempt = 0;
        const id = typeof m.id === 'number' && Number.isFinite(m.id) ? m.id : null;
        if (id !== null) {
          if (this.lastId === null) this.lastId = id;
          else if (id < this.lastId) {
            // The server's feed started over (new database, restart without persistence).
            this.lastId = id;
            this.opts.onReset?.();
          }
        }
        this.setState('live');
        return;
      }
      case 'ping':
        this.send({ type: 'pong' });
        return;
      default:
        break;
    }
    if (typeof m.type !== 'string' || !FEED_KINDS.has(m.type)) return;
    if (typeof m.id !== 'number' || !Number.isFinite(m.id)) return;
    if (this.lastId !== null && m.id <= this.lastId) {
      this.duplicates += 1;
      return;
    }
    this.lastId = m.id;
    this.opts.onMessage?.({ type: m.type as FeedKind, id: m.id, data: m.data });
  }

  private afterClose(code: number | null): void {
    this.clearWatchdog();
    const s = this.socket;
    this.socket = null;
    if (s) detach(s);
    if (this.stopped) return;
    const wasLive = this.gotHello;
    this.gotHello = false;
    // A slow-consumer close or a drop of a healthy connection retries quickly; failures back off.
    const delay =
      code === CLOSE_SLOW_CONSUMER || wasLive
        ? backoffDelay(0, this.backoff, this.opts.random)
        : backoffDelay(this.attempt, this.backoff, this.opts.random);
    if (!wasLive) this.attempt += 1;
    this.setState(this.attempt >= this.offlineAfter ? 'offline' : 'reconnecting');
    this.clearReconnect();
    this.reconnectTimer = this.timers.setTimeout(() => this.connect(), delay);
  }

  private armWatchdog(): void {
    this.clearWatchdog();
    this.watchdog = this.timers.setTimeout(() => {
      this.watchdog = null;
      const s = this.socket;
      if (!s) return;
      // Half-open connection: give up on it without waiting for the browser's close.
      detach(s);
      try {
        s.close(CLOSE_HEARTBEAT, 'heartbeat timeout');
      } catch {
        /* ignore */
      }
      this.afterClose(CLOSE_HEARTBEAT);
    }, this.heartbeatMs);
  }

  private clearWatchdog(): void {
    if (this.watchdog !== null) this.timers.clearTimeout(this.watchdog);
    this.watchdog = null;
  }

  private clearReconnect(): void {
    if (this.reconnectTimer !== null) this.timers.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
  }
}

function detach(s: SocketLike): void {
  s.onopen = null;
  s.onmessage = null;
  s.onclose = null;
  s.onerror = null;
}
