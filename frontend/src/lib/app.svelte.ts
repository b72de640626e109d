// App-wide reactive state: the route, the live feed connection, API reachability, toasts, prefs.
// The logic lives in plain modules (route, ws, api, toasts, prefs); this file only wires it to runes.

import { api, type ApiError } from './api';
import { alertToast, asAlert, asRun } from './feed';
import { mergeRun, type MergeOptions } from './grid';
import {
  applyTheme,
  effectiveTheme,
  loadNotify,
  loadTheme,
  loadToken,
  notifySupport,
  requestNotify,
  saveNotify,
  saveTheme,
  saveToken,
  nextTheme,
  type NotifySupport,
  type ThemePref,
} from './prefs';
import { formatHash, parseHash, patchParams, type Route } from './route';
import { ToastQueue, type Toast } from './toasts';
import type { FeedKind, FeedMessage, Grid } from './types';
import { takeToken, withToken, wsUrl } from './url';
import { LiveClient, type ConnState, type SocketLike } from './ws';

// ---- Router --------------------------------------------------------------------------------------

export const router = $state<{ route: Route }>({ route: parseHash(typeof location !== 'undefined' ? location.hash : '') });

export function navigate(route: Route, opts: { replace?: boolean } = {}): void {
  const hash = formatHash(route);
  if (opts.replace) {
    history.replaceState(history.state, '', hash);
    router.route = parseHash(hash);
  } else if (location.hash !== hash) {
    location.hash = hash; // hashchange updates router.route
  }
}

/** Changes filters of the current page in place (no new history entry per click). */
export function setParams(patch: Record<string, string | number | null | undefined>, defaults: Record<string, string> = {}): void {
  const r = router.route;
  navigate({ ...r, params: patchParams(r.params, patch, defaults) }, { replace: true });
}

// ---- API reachability ------------------------------------------------------------------------------

export const apiStatus = $state<{ reachable: boolean; message: string; reload: number; needsToken: boolean }>({
  reachable: true,
  message: '',
  reload: 0,
  needsToken: false,
});

/** Stores the read token entered by the operator (or clears it), then reloads and reconnects. */
export function setToken(token: string | null): void {
  saveToken(token);
  apiStatus.needsToken = false;
  reloadAll();
  client?.reconnectNow();
}

/** Pages read `apiStatus.reload` in their load effect: bumping it reloads the current view. */
export function reloadAll(): void {
  apiStatus.reload += 1;
}

// ---- Clock ----------------------------------------------------------------------------------------

/** "Now" for relative times: ticks every 15 s and on every live message, so "3 h ago" stays right. */
export const clock = $state<{ now: number }>({ now: Date.now() });

// ---- Live feed ------------------------------------------------------------------------------------

export const conn = $state<{ state: ConnState; lastId: number | null }>({ state: 'reconnecting', lastId: null });

type FeedListener = (m: FeedMessage) => void;
const feedListeners = new Map<FeedKind, Set<FeedListener>>();

/** Subscribe to live messages of a kind; returns the unsubscribe function (use as an $effect cleanup). */
export function onFeed(kind: FeedKind, cb: FeedListener): () => void {
  let set = feedListeners.get(kind);
  if (!set) feedListeners.set(kind, (set = new Set()));
  set.add(cb);
  return () => set.delete(cb);
}

const FLASH_MS = 2500;

/**
 * Live runs merged into a grid (grid page, change page): `apply` gets the new grid, and the touched
 * cell's key is in `flash` for FLASH_MS. Returns the unsubscribe function (an $effect cleanup).
 */
export function followGrid(
  opts: MergeOptions,
  current: () => Grid | null,
  apply: (grid: Grid) => void,
  flash: Set<string>,
): () => void {
  return onFeed('run', (m) => {
    const run = asRun(m);
    const grid = current();
    if (!run || !grid) return;
    const res = mergeRun(grid, run, opts);
    if (res.change === 'none' || !res.key) return;
    apply(res.grid);
    const key = res.key;
    flash.add(key);
    setTimeout(() => flash.delete(key), FLASH_MS);
  });
}

function dispatch(m: FeedMessage): void {
  conn.lastId = m.id;
  clock.now = Date.now();
  for (const cb of feedListeners.get(m.type) ?? []) {
    try {
      cb(m);
    } catch (e) {
      console.error('feed listener failed', e);
    }
  }
}

// ---- Toasts and notifications --------------------------------------------------------------------

const queue = new ToastQueue({ ttlMs: 8000, max: 5 });
export const toasts = $state<{ items: Toast[] }>({ items: [] });
queue.subscribe((items) => {
  toasts.items = items;
});

export function pushToast(t: Omit<Toast, 'key'>): void {
  queue.push(t);
}

export function dismissToast(key: number): void {
  queue.dismiss(key);
}

export const notify = $state<{ enabled: boolean; support: NotifySupport }>({
  enabled: false,
  support: 'unsupported',
});

/** Click handler of the "Enable notifications" button: the only place permission is requested. */
export async function toggleNotifications(): Promise<void> {
  if (notify.enabled) {
    notify.enabled = false;
    saveNotify(false);
    return;
  }
  const p = notify.support === 'granted' ? 'granted' : await requestNotify();
  notify.support = p;
  notify.enabled = p === 'granted';
  saveNotify(notify.enabled);
}

function showNotification(title: string, body: string, tag: string): void {
  if (!notify.enabled || notifySupport() !== 'granted') return;
  try {
    new Notification(title, { body, tag });
  } catch {
    /* some browsers only allow notifications from a service worker */
  }
}

// ---- Theme ----------------------------------------------------------------------------------------

export const theme = $state<{ pref: ThemePref; effective: 'light' | 'dark' }>({ pref: 'auto', effective: 'light' });

export function cycleTheme(): void {
  theme.pref = nextTheme(theme.pref);
  saveTheme(theme.pref);
  applyTheme(theme.pref);
  theme.effective = effectiveTheme(theme.pref);
}

// ---- Start -----------------------------------------------------------------------------------------

let client: LiveClient | null = null;

/** A link may carry the read token: keep it, and take it out of the address. Runs before the first
 * request, hence before mount (children's effects run before the App's onMount). */
export function adoptLinkToken(): void {
  const link = takeToken(location.href);
  if (link.token) {
    saveToken(link.token);
    history.replaceState(history.state, '', link.href);
  }
}

export function startApp(): () => void {
  const onHash = () => {
    router.route = parseHash(location.hash);
  };
  window.addEventListener('hashchange', onHash);
  router.route = parseHash(location.hash);

  theme.pref = loadTheme();
  applyTheme(theme.pref);
  theme.effective = effectiveTheme(theme.pref);
  const mq = typeof matchMedia === 'function' ? matchMedia('(prefers-color-scheme: dark)') : null;
  const onScheme = () => {
    theme.effective = effectiveTheme(theme.pref);
  };
  mq?.addEventListener?.('change', onScheme);

  notify.support = notifySupport();
  notify.enabled = loadNotify() && notify.support === 'granted';

  const offReach = api.onReachability((reachable: boolean, err: ApiError | null) => {
    apiStatus.reachable = reachable;
    apiStatus.message = err ? err.message : '';
  });
  const offToken = api.onTokenNeeded((needed: boolean) => {
    apiStatus.needsToken = needed;
  });

  client = new LiveClient({
    url: wsUrl(location.href),
    createSocket: (url) => new WebSocket(withToken(url, loadToken())) as unknown as SocketLike,
    subscription: { kinds: ['run', 'alert', 'state', 'incident'] },
    onMessage: dispatch,
    onStateChange: (s) => {
      conn.state = s;
    },
    onReset: reloadAll,
  });
  const offAlerts = onFeed('alert', (m) => {
    const a = asAlert(m);
    if (!a || a.muted) return;
    const t = alertToast(a);
    pushToast(t);
    showNotification(t.title, t.body, `cidash-alert-${a.id}`);
  });
  client.start();
  conn.state = client.state;
  const onOnline = () => client?.reconnectNow();
  window.addEventListener('online', onOnline);
  // A live connection makes a previously unreachable API worth retrying at once.
  let wasLive = false;
  const retryTimer = setInterval(() => {
    clock.now = Date.now();
    if (!apiStatus.reachable) reloadAll();
  }, 15000);
  const stateWatch = $effect.root(() => {
    $effect(() => {
      const live = conn.state === 'live';
      if (live && !wasLive && !apiStatus.reachable) reloadAll();
      wasLive = live;
    });
  });

  return () => {
    window.removeEventListener('hashchange', onHash);
    window.removeEventListener('online', onOnline);
    mq?.removeEventListener?.('change', onScheme);
    clearInterval(retryTimer);
    stateWatch();
    offReach();
    offToken();
    offAlerts();
    client?.stop();
    client = null;
  };
}
