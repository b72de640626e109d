// @vitest-environment jsdom
import { afterEach, describe, expect, it } from 'vitest';
import { flushSync, mount, unmount, type Component } from 'svelte';
import RunDetail from '../src/components/RunDetail.svelte';
import SafeLink from '../src/components/SafeLink.svelte';
import PatchsetGrid from '../src/components/PatchsetGrid.svelte';
import AlertList from '../src/components/AlertList.svelte';
import RunsTable from '../src/components/RunsTable.svelte';
import Sparkline from '../src/components/Sparkline.svelte';
import { SvelteSet } from 'svelte/reactivity';
import { alertOut, grid, runOut } from './fixtures';

const XSS = '<script>alert("pwned")</script>';
const mounted: ReturnType<typeof mount>[] = [];

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function render<P extends Record<string, any>>(Comp: Component<P>, props: P): HTMLElement {
  const target = document.createElement('div');
  document.body.appendChild(target);
  mounted.push(mount(Comp, { target, props }));
  flushSync();
  return target;
}

afterEach(() => {
  while (mounted.length) unmount(mounted.pop()!);
  document.body.innerHTML = '';
});

describe('untrusted text is rendered as text', () => {
  it('shows a <script> comment and job name literally, with no script element', () => {
    const run = runOut({
      comment: `Build failed.\n\n- ${XSS} https://logs.example.org/x : FAILURE in 1h 02m\n<img src=x onerror=alert(1)>`,
      jobs: [
        { name: XSS, url: 'javascript:alert(1)', result: 'FAILURE', duration_s: 3720, voting: true },
        { name: 'tempest-full', url: 'https://logs.example.org/tempest', result: 'SUCCESS', duration_s: 60, voting: false },
        { name: 'data-job', url: 'data:text/html,<script>alert(1)</script>', result: 'SUCCESS', duration_s: null, voting: true },
      ],
      log_url: 'javascript:alert(2)',
    });
    const el = render(RunDetail, { run });
    const comment = el.querySelector('[data-testid="run-comment"]');
    expect(comment).not.toBeNull();
    expect(comment!.textContent).toContain(XSS);
    expect(comment!.textContent).toContain('<img src=x onerror=alert(1)>');
    expect(el.querySelector('script')).toBeNull();
    expect(el.querySelector('img')).toBeNull();
    expect(document.querySelector('script')).toBeNull();

    const jobCells = [...el.querySelectorAll('[data-testid="run-jobs"] td.job')].map((td) => td.textContent);
    expect(jobCells).toEqual([XSS, 'tempest-full', 'data-job']);

    // Only the https URL became a link; the javascript: and data: ones are plain text.
    const hrefs = [...el.querySelectorAll('a')].map((a) => a.getAttribute('href'));
    expect(hrefs).toContain('https://logs.example.org/tempest');
    expect(hrefs.some((h) => h && /^(javascript|data):/i.test(h))).toBe(false);
    expect(el.textContent).toContain('javascript:alert(1)');
    expect(el.textContent).toContain('javascript:alert(2)');
  });

  it('SafeLink links http(s) only', () => {
    const ok = render(SafeLink, { url: 'https://logs.example.org/a', text: 'logs' });
    const a = ok.querySelector('a');
    expect(a?.getAttribute('href')).toBe('https://logs.example.org/a');
    expect(a?.getAttribute('rel')).toContain('noopener');
    expect(a?.getAttribute('target')).toBe('_blank');

    const bad = render(SafeLink, { url: 'javascript:alert(1)', text: null });
    expect(bad.querySelector('a')).toBeNull();
    expect(bad.textContent).toBe('javascript:alert(1)');
  });

  it('shows an alert message with markup as text', () => {
    const el = render(AlertList, { alerts: [alertOut({ id: 3, message: XSS, ci: '<b>ci</b>' })] });
    const item = el.querySelector('[data-testid="alert-item"]');
    expect(item?.textContent).toContain(XSS);
    expect(item?.textContent).toContain('<b>ci</b>');
    expect(el.querySelector('script, b')).toBeNull();
  });

  it('shows failing job names of a run as text', () => {
    const run = runOut({ id: 9, result_class: 'failure', jobs: [{ name: XSS, url: null, result: 'FAILURE', duration_s: 1, voting: true }] });
    const el = render(RunsTable, { runs: [run] });
    expect(el.querySelector('[data-testid="run-row-9"]')?.textContent).toContain(XSS);
    expect(el.querySelector('script')).toBeNull();
  });
});

describe('PatchsetGrid', () => {
  it('renders one cell per result with stable test ids and safe links', () => {
    const g = grid();
    g.rows[0].cells['acme-ci'] = {
      run_id: 61,
      result: 'FAILURE',
      result_class: 'failure',
      vote: -1,
      posted_at: '2024-05-01T11:10:00Z',
      log_url: 'javascript:alert(1)',
      runs: 3,
    };
    g.rows[0].subject = XSS;
    const el = render(PatchsetGrid, { systems: g.systems, rows: g.rows, flash: new SvelteSet(['2000-3-zuul']), reference: 'zuul' });

    const zuul = el.querySelector<HTMLAnchorElement>('[data-testid="cell-2000-3-zuul"]');
    expect(zuul).not.toBeNull();
    expect(zuul!.getAttribute('href')).toBe('https://logs.example.org/50');
    expect(zuul!.closest('td')?.classList.contains('success')).toBe(true);
    expect(zuul!.closest('td')?.classList.contains('flash')).toBe(true);

    // An unsafe log URL falls back to the run page.
    const acme = el.querySelector<HTMLAnchorElement>('[data-testid="cell-2000-3-acme-ci"]');
    expect(acme!.getAttribute('href')).toBe('#/run/61');
    expect(acme!.closest('td')?.dataset.result).toBe('failure');
    expect(acme!.textContent).toContain('×3');

    // No result: a cell without a link or test id.
    expect(el.querySelector('[data-testid="cell-1990-1-zuul"]')).toBeNull();
    expect(el.querySelectorAll('td[data-result="none"]').length).toBe(2);

    expect(el.querySelector('[data-testid="grid-row-2000-3"]')?.textContent).toContain(XSS);
    expect(el.querySelector('script')).toBeNull();
    expect(el.querySelector('th.col.ref')?.textContent?.trim()).toBe('zuul');
  });
});

describe('Sparkline', () => {
  it('draws the path of the values', () => {
    const el = render(Sparkline, { values: [1, 0.5, 0], width: 84, height: 24 });
    expect(el.querySelector('path')?.getAttribute('d')).toBe('M2 2 L42 12 L82 22');
    expect(el.querySelector('svg')?.classList.contains('bad')).toBe(true);
  });
});
