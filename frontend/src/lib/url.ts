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
