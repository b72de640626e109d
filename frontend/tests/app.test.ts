// @vitest-environment jsdom
// The whole app in jsdom with a stubbed API (fetch) and a fake websocket.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { flushSync, mount, unmount } from 'svelte';
import { FakeSocket } from './fake-socket';
import { system } from './fixtures';

const SYSTEMS = [
  system({ name: 'zuul', display_name: 'Zuul', is_reference: true, state: 'healthy', health: { success_rate: 0.97 } }),
  system({ name: 'acme-ci', display_name: 'ACME CI', state: 'failing', state_reason: '5 failures in a row', health: { success_rate: 0.2 } }),
  system({ name: 'new-ci', confirmed: false, state: 'silent', state_reason: 'no result for 3 days', health: { success_rate: null } }),
];

let apiDown = false;
const calls: string[] = [];

function fakeFetch(url: string): Promise<Response> {
  calls.push(url);
  if (apiDown) return Promise.reject(new TypeError('Failed to fetch'));
  const json = (b: unknown) => Promise.resolve(new Response(JSON.stringify(b), { status: 200 }));
  if (url.startsWith('api/v1/systems?') || url === 'api/v1/systems') return json(SYSTEMS);
  if (url.startsWith('api/v1/projects')) return json(['openstack/nova', 'openstack/cinder']);
  if (url.startsWith('api/v1/measures')) return json({ coverage: 'Coverage is the share of eligible patch sets.' });
  if (url.startsWith('api/v1/incidents')) return json({ items: [], next_cursor: null });
  return Promise.resolve(new Response(JSON.stringify({ detail: 'not found' }), { status: 404 }));
}

let app: ReturnType<typeof mount> | null = null;

async function start(hash = '#/') {
  history.replaceState(null, '', `/${hash}`);
  const { default: App } = await import('../src/App.svelte');
  const target = document.createElement('div');
  document.body.appendChild(target);
  app = mount(App, { target });
  flushSync();
  return target;
}

const rowNames = (el: HTMLElement) =>
  [...el.querySelectorAll('[data-testid^="system-row-"]')].map((r) => r.getAttribute('data-testid')!.slice('system-row-'.length));

beforeEach(() => {
  apiDown = false;
  calls.length = 0;
  FakeSocket.reset();
  vi.stubGlobal('fetch', vi.fn(fakeFetch));
  vi.stubGlobal('WebSocket', FakeSocket);
  vi.stubGlobal('matchMedia', (q: string) => ({ matches: false, media: q, addEventListener() {}, removeEventListener() {} }));
  localStorage.clear();
});

afterEach(() => {
  if (app) unmount(app);
  app = null;
  document.body.innerHTML = '';
  vi.unstubAllGlobals();
});

describe('App', () => {
  it('renders the overview, worst state first, with tags and reasons', async () => {
    const el = await start('#/');
    await vi.waitFor(() => expect(rowNames(el)).toEqual(['acme-ci', 'new-ci', 'zuul']));
    expect(calls).toContain('api/v1/systems?window=24h');
    const acme = el.querySelector('[data-testid="system-row-acme-ci"]')!;
    expect(acme.getAttribute('title')).toBe('5 failures in a row');
    expect(acme.querySelector('.reason')?.textContent).toBe('5 failures in a row');
    expect(el.querySelector('[data-testid="system-row-zuul"] .tag.ref')?.textContent).toBe('reference');
    expect(el.querySelector('[data-testid="system-row-new-ci"] .tag.warn')?.textContent).toBe('unconfirmed');
    // The project select is filled from /projects.
    await vi.waitFor(() => expect(el.querySelectorAll('[data-testid="project-filter"] option').length).toBe(3));
  });

  it('sorts by a column and keeps the sort in the URL', async () => {
    const el = await start('#/?window=7d');
    await vi.waitFor(() => expect(rowNames(el)).toHaveLength(3));
    expect(calls).toContain('api/v1/systems?window=7d');
    const successHeader = [...el.querySelectorAll('th button.sort')].find((b) => b.textContent?.startsWith('Success'))!;
    (successHeader as HTMLButtonElement).click();
    flushSync();
    expect(location.hash).toBe('#/?sort=success&window=7d');
    await vi.waitFor(() => expect(rowNames(el)).toEqual(['zuul', 'acme-ci', 'new-ci']));
    (successHeader as HTMLButtonElement).click();
    flushSync();
    expect(location.hash).toContain('dir=asc');
    await vi.waitFor(() => expect(rowNames(el)).toEqual(['acme-ci', 'zuul', 'new-ci']));
  });

  it('follows the websocket: connection state, live states and alert toasts', async () => {
    const el = await start('#/');
    await vi.waitFor(() => expect(rowNames(el)).toHaveLength(3));
    const connText = () => el.querySelector('[data-testid="conn-state"]')?.textContent;
    expect(connText()).toBe('reconnecting');
    const sock = FakeSocket.last;
    expect(sock.url).toMatch(/^ws:\/\/[^/]+\/api\/v1\/ws$/);
    sock.open();
    expect(sock.sent[0]).toEqual({ type: 'subscribe', kinds: ['run', 'alert', 'state', 'incident'] });
    sock.receive({ type: 'hello', id: 10 });
    flushSync();
    expect(connText()).toBe('live');

    sock.receive({ type: 'state', id: 11, data: { ci: 'acme-ci', state: 'healthy', state_reason: 'recovered' } });
    flushSync();
    expect(el.querySelector('[data-testid="system-row-acme-ci"] [data-state]')?.getAttribute('data-state')).toBe('healthy');

    sock.receive({
      type: 'alert',
      id: 12,
      data: {
        id: 5, rule: 'r', kind: 'failure', ci: 'acme-ci', server: 's', project: null, severity: 'critical',
        message: '<script>alert(1)</script> broke', created_at: new Date().toISOString(), run_id: 77, muted: false,
      },
    });
    // The same message again (e.g. replayed after a reconnect) must not toast twice.
    sock.receive({ type: 'alert', id: 12, data: { id: 5, ci: 'acme-ci', message: 'dup', severity: 'critical' } });
    flushSync();
    const toasts = el.querySelectorAll('[data-testid="toast"]');
    expect(toasts).toHaveLength(1);
    expect(toasts[0].textContent).toContain('<script>alert(1)</script> broke');
    expect(toasts[0].querySelector('a')?.getAttribute('href')).toBe('#/run/77');
    expect(el.querySelector('script')).toBeNull();
    (toasts[0].querySelector('button.close') as HTMLButtonElement).click();
    flushSync();
    expect(el.querySelectorAll('[data-testid="toast"]')).toHaveLength(0);

    sock.serverClose(1006);
    flushSync();
    expect(connText()).toBe('reconnecting');
  });

  it('shows a banner when the API is unreachable', async () => {
    apiDown = true;
    const el = await start('#/');
    await vi.waitFor(() => expect(el.querySelector('[data-testid="api-banner"]')).not.toBeNull());
    expect(el.querySelector('[data-testid="api-banner"]')!.textContent).toContain('unreachable');
    apiDown = false;
    (el.querySelector('[data-testid="api-banner"] button') as HTMLButtonElement).click();
    await vi.waitFor(() => expect(el.querySelector('[data-testid="api-banner"]')).toBeNull());
    await vi.waitFor(() => expect(rowNames(el)).toHaveLength(3));
  });

  it('toggles and persists the theme', async () => {
    const el = await start('#/');
    const btn = el.querySelector('[data-testid="theme-toggle"]') as HTMLButtonElement;
    btn.click();
    flushSync();
    expect(document.documentElement.getAttribute('data-theme')).toBe('light');
    expect(localStorage.getItem('cidash.theme')).toBe('light');
    btn.click();
    flushSync();
    expect(document.documentElement.getAttribute('data-theme')).toBe('dark');
    btn.click();
    flushSync();
    expect(document.documentElement.hasAttribute('data-theme')).toBe(false);
    expect(localStorage.getItem('cidash.theme')).toBeNull();
  });
});
