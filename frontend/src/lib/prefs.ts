// Preferences persisted in localStorage: the colour theme and desktop notifications.

export type ThemePref = 'auto' | 'light' | 'dark';

const THEME_KEY = 'cidash.theme';
const NOTIFY_KEY = 'cidash.notify';
const TOKEN_KEY = 'cidash.token';

export interface StorageLike {
  getItem(k: string): string | null;
  setItem(k: string, v: string): void;
  removeItem(k: string): void;
}

function storage(): StorageLike | null {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null; // disabled storage (privacy mode) must not break the app
  }
}

export function loadTheme(s: StorageLike | null = storage()): ThemePref {
  const v = s?.getItem(THEME_KEY);
  return v === 'light' || v === 'dark' ? v : 'auto';
}

export function saveTheme(t: ThemePref, s: StorageLike | null = storage()): void {
  if (!s) return;
  if (t === 'auto') s.removeItem(THEME_KEY);
  else s.setItem(THEME_KEY, t);
}

/** auto → light → dark → auto */
export function nextTheme(t: ThemePref): ThemePref {
  return t === 'auto' ? 'light' : t === 'light' ? 'dark' : 'auto';
}

/** Applies the theme to <html data-theme>; "auto" leaves it to prefers-color-scheme. */
export function applyTheme(t: ThemePref, root: HTMLElement = document.documentElement): void {
  if (t === 'auto') root.removeAttribute('data-theme');
  else root.setAttribute('data-theme', t);
}

/** The theme actually shown (for charts, which cannot read CSS media queries). */
export function effectiveTheme(t: ThemePref): 'light' | 'dark' {
  if (t !== 'auto') return t;
  return typeof matchMedia === 'function' && matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

export function loadNotify(s: StorageLike | null = storage()): boolean {
  return s?.getItem(NOTIFY_KEY) === '1';
}

export function saveNotify(on: boolean, s: StorageLike | null = storage()): void {
  if (!s) return;
  if (on) s.setItem(NOTIFY_KEY, '1');
  else s.removeItem(NOTIFY_KEY);
}

export type NotifySupport = 'unsupported' | 'default' | 'granted' | 'denied';

export function notifySupport(): NotifySupport {
  if (typeof Notification === 'undefined') return 'unsupported';
  return Notification.permission as NotifySupport;
}

/** Only ever called from a click handler: browsers (rightly) ignore or penalise unprompted requests. */
export async function requestNotify(): Promise<NotifySupport> {
  if (typeof Notification === 'undefined') return 'unsupported';
  try {
    return (await Notification.requestPermission()) as NotifySupport;
  } catch {
    return notifySupport();
  }
}

// ---- Read token ----------------------------------------------------------------------------------
// When the server sets api.read_token, every read needs it. It is kept in this browser only.

export function loadToken(s: StorageLike | null = storage()): string | null {
  const v = s?.getItem(TOKEN_KEY)?.trim();
  return v ? v : null;
}

export function saveToken(token: string | null, s: StorageLike | null = storage()): void {
  if (!s) return;
  const v = token?.trim();
  if (v) s.setItem(TOKEN_KEY, v);
  else s.removeItem(TOKEN_KEY);
}
