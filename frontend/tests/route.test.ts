import { describe, expect, it } from 'vitest';
import {
  bucketFor,
  formatHash,
  gridLimit,
  href,
  overviewFilters,
  overviewParams,
  parseHash,
  patchParams,
  runFilters,
  systemRange,
  windowFor,
  type OverviewFilters,
  type Route,
} from '../src/lib/route';

describe('parseHash', () => {
  it.each<[string, Route]>([
    ['', { page: 'overview', params: {} }],
    ['#/', { page: 'overview', params: {} }],
    ['#/?window=7d&project=openstack%2Fnova', { page: 'overview', params: { window: '7d', project: 'openstack/nova' } }],
    ['#/grid?project=openstack/nova', { page: 'grid', params: { project: 'openstack/nova' } }],
    ['#/system/acme-ci?range=30d', { page: 'system', arg: 'acme-ci', params: { range: '30d' } }],
    ['#/system/ci%40example.org', { page: 'system', arg: 'ci@example.org', params: {} }],
    ['#/change/123456', { page: 'change', arg: '123456', params: {} }],
    ['#/run/77', { page: 'run', arg: '77', params: {} }],
    ['#/alerts?ci=acme', { page: 'alerts', params: { ci: 'acme' } }],
    ['#/runs?ci=a&result=failure', { page: 'runs', params: { ci: 'a', result: 'failure' } }],
    // the report card's links behind its incident and recheck numbers
    ['#/incidents?ci=acme-ci', { page: 'incidents', params: { ci: 'acme-ci' } }],
    [
      '#/rechecks/acme-ci?from=2026-11-23T00%3A00%3A00Z&to=2026-11-30T00%3A00%3A00Z',
      { page: 'rechecks', arg: 'acme-ci', params: { from: '2026-11-23T00:00:00Z', to: '2026-11-30T00:00:00Z' } },
    ],
    ['#/rechecks', { page: 'notfound', params: {} }],
    ['#/change/abc', { page: 'notfound', params: {} }],
    ['#/nowhere', { page: 'notfound', params: {} }],
    ['#/system/%E0%A4%A', { page: 'notfound', params: {} }],
  ])('%s', (hash, route) => {
    expect(parseHash(hash)).toEqual(route);
  });

  it('drops empty parameters', () => {
    expect(parseHash('#/grid?project=&limit=60').params).toEqual({ limit: '60' });
  });
});

describe('hash round trip', () => {
  const routes: Route[] = [
    { page: 'overview', params: {} },
    { page: 'overview', params: { window: '30d', project: 'openstack/nova', sort: 'agreement', dir: 'asc' } },
    { page: 'grid', params: { project: 'x/y & z?#', limit: '60' } },
    { page: 'system', arg: 'Third Party CI (ACME) <ci@acme>', params: { range: '90d' } },
    { page: 'change', arg: '424242', params: {} },
    { page: 'alerts', params: { ci: 'acme-ci' } },
    { page: 'runs', params: { ci: 'a', project: 'p', branch: 'stable/2024.1', result: 'failure' } },
    { page: 'run', arg: '9', params: {} },
    { page: 'incidents', params: { ci: 'acme-ci', state: 'all' } },
    { page: 'rechecks', arg: 'acme ci/x', params: { window: '30d' } },
  ];
  it.each(routes)('%j survives formatHash → parseHash', (r) => {
    const hash = formatHash(r);
    expect(hash.startsWith('#/')).toBe(true);
    expect(parseHash(hash)).toEqual(r);
  });

  it('writes a stable, readable hash', () => {
    expect(formatHash({ page: 'grid', params: { project: 'openstack/nova' } })).toBe('#/grid?project=openstack%2Fnova');
    expect(href.system('a b')).toBe('#/system/a%20b');
    expect(href.change(12)).toBe('#/change/12');
    expect(href.overview()).toBe('#/');
  });

  it('round-trips the overview filters, leaving defaults out of the URL', () => {
    const f: OverviewFilters = { window: '7d', project: 'openstack/cinder', q: 'acme ci', sort: 'success', dir: 'asc' };
    const hash = formatHash({ page: 'overview', params: overviewParams(f) });
    expect(overviewFilters(parseHash(hash).params)).toEqual(f);
    const defaults = overviewParams({ window: '24h', project: null, q: null, sort: 'state', dir: 'asc' });
    expect(defaults).toEqual({});
    // The natural direction of a column is left implicit too.
    expect(overviewParams({ window: '24h', project: null, q: null, sort: 'success', dir: 'desc' })).toEqual({
      sort: 'success',
    });
  });

  it('falls back to defaults on invalid filters', () => {
    expect(overviewFilters({ window: '5y', sort: 'evil', dir: 'sideways' })).toEqual({
      window: '24h',
      project: null,
      q: null,
      sort: 'state',
      dir: 'asc',
    });
    expect(systemRange({ range: '1y' })).toBe('7d');
    expect(gridLimit({ limit: '-1' })).toBe(30);
    expect(gridLimit({ limit: '60' })).toBe(60);
    expect(runFilters({ ci: 'a' })).toEqual({ ci: 'a', project: null, branch: null, result: null, from: null, to: null });
  });
});

describe('patchParams', () => {
  it('sets, replaces and removes keys (empty or default)', () => {
    const p = patchParams({ a: '1', b: '2' }, { a: '3', b: null, c: 5, d: 'x' }, { d: 'x' });
    expect(p).toEqual({ a: '3', c: '5' });
  });
});

describe('ranges', () => {
  it('uses hour buckets up to 7 days and day buckets beyond', () => {
    expect(bucketFor('24h')).toBe('hour');
    expect(bucketFor('7d')).toBe('hour');
    expect(bucketFor('30d')).toBe('day');
    expect(bucketFor('90d')).toBe('day');
    expect(windowFor('90d')).toBe('30d');
    expect(windowFor('24h')).toBe('24h');
  });
});
