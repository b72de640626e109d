// URLs from Gerrit comments are untrusted: only http(s) may become links.

/**
 * The URL as a string if it is an absolute http: or https: URL, else null
 * (javascript:, data:, vbscript:, file:, relative paths, garbage...).
 */
export function safeHref(url: string | null | undefined): string | null {
  if (typeof url !== 'string') return null;
  const trimmed = url.trim();
  if (trimmed === '') return null;
  // Control characters and whitespace inside a scheme are a classic filter bypass ("java\tscript:").
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(trimmed)) return null;
  if (!/^https?:\/\//i.test(trimmed)) return null;
  let parsed: URL;
  try {
    parsed = new URL(trimmed);
  } catch {
    return null;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return null;
  if (!parsed.hostname) return null;
  return parsed.href;
}

export function isSafeUrl(url: string | null | undefined): boolean {
  return safeHref(url) !== null;
}

/** The websocket URL for a page at `pageHref`: same origin, ws: or wss: per the page's protocol. */
export function wsUrl(pageHref: string, path = 'api/v1/ws'): string {
  const u = new URL(path, pageHref);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  u.hash = '';
  u.search = '';
  return u.href;
}

/** An API path resolved against the page, so the app also works when served under a prefix. */
export function apiUrl(pageHref: string, path: string): string {
  const u = new URL(path.replace(/^\/+/, ''), pageHref);
  u.hash = '';
  return u.href;
}

/** Adds `?token=` (browsers cannot set headers on a websocket); no token leaves the URL alone. */
export function withToken(url: string, token: string | null): string {
  if (!token) return url;
  const u = new URL(url);
  u.searchParams.set('token', token);
  return u.href;
}

/**
 * A link may carry the read token (`https://dash/?token=...#/grid`): returns it and the page URL
 * without it, so it does not stay in the address bar, the history or a screenshot.
 */
export function takeToken(pageHref: string): { token: string | null; href: string } {
  const u = new URL(pageHref);
  const token = u.searchParams.get('token');
  if (token === null) return { token: null, href: pageHref };
  u.searchParams.delete('token');
  return { token: token.trim() || null, href: u.href };
}
