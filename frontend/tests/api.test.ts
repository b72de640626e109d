import { describe, expect, it, vi } from 'vitest';
import { ApiClient, ApiError, buildQuery, errorText, isAbort, load } from '../src/lib/api';

function jsonResponse(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

describe('buildQuery', () => {
  it('skips empty values and encodes the rest', () => {
    expect(buildQuery({ window: '24h', project: 'openstack/nova', ci: null, x: undefined, y: '' })).toBe(
      '?window=24h&project=openstack%2Fnova',
    );
    expect(buildQuery({})).toBe('');
    expect(buildQuery({ limit: 50, flag: false })).toBe('?limit=50&flag=false');
  });
});

describe('ApiClient', () => {
  it('builds endpoint URLs and returns JSON', async () => {
    const fetch = vi.fn(async (_url: string) => jsonResponse([{ name: 'acme' }]));
    const api = new ApiClient({ fetch });
    const out = await api.systems({ window: '7d', project: 'openstack/nova' });
    expect(out).toEqual([{ name: 'acme' }]);
    expect(fetch.mock.calls[0][0]).toBe('api/v1/systems?window=7d&project=openstack%2Fnova');

    await api.systemRuns('ci@example.org', { limit: 50, cursor: 'abc=' });
    expect(fetch.mock.calls[1][0]).toBe('api/v1/systems/ci%40example.org/runs?limit=50&cursor=abc%3D');
    await api.systemSeries('acme', { bucket: 'hour', from: '2024-05-01T00:00:00.000Z', to: '2024-05-02T00:00:00.000Z' });
    expect(fetch.mock.calls[2][0]).toBe(
      'api/v1/systems/acme/series?bucket=hour&from=2024-05-01T00%3A00%3A00.000Z&to=2024-05-02T00%3A00%3A00.000Z',
    );
    await api.change(1234);
    expect(fetch.mock.calls[3][0]).toBe('api/v1/changes/1234');
    expect(api.badgeUrl('a b')).toBe('api/v1/badge/a%20b.svg');
  });

  it('reports HTTP errors with the detail from the body', async () => {
    const api = new ApiClient({ fetch: async () => jsonResponse({ detail: 'no such CI system: nope' }, 404) });
    const err = await api.system('nope').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    const e = err as ApiError;
    expect(e.kind).toBe('http');
    expect(e.status).toBe(404);
    expect(e.notFound).toBe(true);
    expect(e.unreachable).toBe(false);
    expect(e.message).toContain('no such CI system: nope');
    expect(errorText(e)).toContain('Not found');
  });

  it('marks the API unreachable on network errors and 502-504, and reachable again on success', async () => {
    let mode: 'down' | 'gateway' | 'up' = 'down';
    const api = new ApiClient({
      fetch: async () => {
        if (mode === 'down') throw new TypeError('Failed to fetch');
        if (mode === 'gateway') return new Response('Bad Gateway', { status: 502, statusText: 'Bad Gateway' });
        return jsonResponse(['openstack/nova']);
      },
    });
    const events: [boolean, string | null][] = [];
    api.onReachability((ok, err) => events.push([ok, err ? err.kind : null]));

    const e1 = (await api.projects().catch((e: unknown) => e)) as ApiError;
    expect(e1.kind).toBe('network');
    expect(e1.unreachable).toBe(true);
    expect(e1.message).toContain('Failed to fetch');
    mode = 'gateway';
    const e2 = (await api.projects().catch((e: unknown) => e)) as ApiError;
    expect(e2.status).toBe(502);
    expect(e2.unreachable).toBe(true);
    mode = 'up';
    expect(await api.projects()).toEqual(['openstack/nova']);
    expect(await api.projects()).toEqual(['openstack/nova']);
    expect(events).toEqual([
      [false, 'network'],
      [false, 'http'],
      [true, null],
    ]);
  });

  it('times out slow requests', async () => {
    vi.useFakeTimers();
    try {
      const api = new ApiClient({
        timeoutMs: 1000,
        fetch: (_url, init) =>
          new Promise((_resolve, reject) => {
            init?.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
          }),
      });
      const p = api.projects().catch((e: unknown) => e);
      await vi.advanceTimersByTimeAsync(1001);
      const e = (await p) as ApiError;
      expect(e.kind).toBe('timeout');
      expect(e.unreachable).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });

  it('distinguishes a cancelled request from a failure', async () => {
    const api = new ApiClient({
      fetch: (_url, init) =>
        new Promise((_resolve, reject) => {
          init?.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
        }),
    });
    const reach: boolean[] = [];
    api.onReachability((ok) => reach.push(ok));
    const ctl = new AbortController();
    const p = api.grid({ project: 'x' }, ctl.signal).catch((e: unknown) => e);
    ctl.abort();
    const e = await p;
    expect(isAbort(e)).toBe(true);
    expect(reach).toEqual([]); // a cancel says nothing about the API
  });

  it('rejects a body that is not JSON', async () => {
    const api = new ApiClient({ fetch: async () => new Response('<html>oops</html>', { status: 200 }) });
    const e = (await api.projects().catch((x: unknown) => x)) as ApiError;
    expect(e.kind).toBe('parse');
  });

  it('sends the read token as a bearer header and tells when one is needed', async () => {
    let token: string | null = null;
    const seen: (string | null)[] = [];
    const fetch = vi.fn(async (_url: string, init?: RequestInit) => {
      const auth = new Headers(init?.headers).get('Authorization');
      seen.push(auth);
      return auth === 'Bearer s3cret' ? jsonResponse([]) : jsonResponse({ detail: 'a token is required' }, 401);
    });
    const api = new ApiClient({ fetch, token: () => token });
    const needed: boolean[] = [];
    const reach: boolean[] = [];
    api.onTokenNeeded((n) => needed.push(n));
    api.onReachability((r) => reach.push(r));

    const err = (await api.projects().catch((e: unknown) => e)) as ApiError;
    expect(err.needsToken).toBe(true);
    expect(needed).toEqual([true]);
    expect(reach).toEqual([true]); // refused is not unreachable: no "API unreachable" banner

    token = 's3cret';
    expect(await api.projects()).toEqual([]);
    expect(seen).toEqual([null, 'Bearer s3cret']);
    expect(needed).toEqual([true, false]);
    expect(api.badgeUrl('acme')).toBe('api/v1/badge/acme.svg?token=s3cret');
    expect(api.publicBadgeUrl('acme')).toBe('api/v1/badge/acme.svg'); // what a README gets: no token
  });

  it('asks without any token whether a badge is public', async () => {
    const seen: (string | null)[] = [];
    const fetch = vi.fn(async (_url: string, init?: RequestInit) => {
      seen.push(new Headers(init?.headers).get('Authorization'));
      return new Response('', { status: _url.includes('open') ? 200 : 401 });
    });
    const api = new ApiClient({ fetch, token: () => 's3cret' });
    expect(await api.badgeIsPublic('open-ci')).toBe(true);
    expect(await api.badgeIsPublic('closed-ci')).toBe(false);
    expect(fetch.mock.calls.map((c) => c[0])).toEqual(['api/v1/badge/open-ci.svg', 'api/v1/badge/closed-ci.svg']);
    expect(seen).toEqual([null, null]);
  });
});

describe('load', () => {
  const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

  it('reports the value, or the message of a failure, with busy around it', async () => {
    const seen: string[] = [];
    const on = {
      ok: (v: number) => seen.push(`ok ${v}`),
      failed: (m: string) => seen.push(`failed ${m}`),
      busy: (b: boolean) => seen.push(`busy ${b}`),
    };
    load(() => Promise.resolve(7), on);
    await settle();
    load(() => Promise.reject(new Error('boom')), on);
    await settle();
    expect(seen).toEqual(['busy true', 'ok 7', 'busy false', 'busy true', 'failed boom', 'busy false']);
  });

  it('reports nothing once cancelled: the page has moved on', async () => {
    const seen: string[] = [];
    const cancel = load(
      (signal) =>
        new Promise<number>((_, reject) =>
          signal.addEventListener('abort', () => reject(new DOMException('cancelled', 'AbortError'))),
        ),
      { ok: () => seen.push('ok'), failed: (m) => seen.push(`failed ${m}`), busy: (b) => seen.push(`busy ${b}`) },
    );
    cancel();
    await settle();
    expect(seen).toEqual(['busy true']); // busy is left to the request that replaces it
  });

  it('drops a value that arrives after the cancel', async () => {
    const seen: string[] = [];
    const cancel = load(() => Promise.resolve(1), { ok: (v) => seen.push(`ok ${v}`), failed: () => seen.push('failed') });
    cancel(); // the value is already there, but not yet handed over
    await settle();
    expect(seen).toEqual([]);
  });
});
