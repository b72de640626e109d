import type { StorageLike } from '../src/lib/prefs';
import type { AlertOut, Grid, HealthWindow, RunOut, SystemSummary } from '../src/lib/types';

export function health(h: Partial<HealthWindow> = {}): HealthWindow {
  return {
    window: '24h',
    runs: 10,
    success_rate: 0.9,
    failure_rate: 0.1,
    infra_error_rate: 0,
    latency_p50_s: 600,
    latency_p95_s: 1800,
    coverage: 0.8,
    eligible: 10,
    covered: 8,
    agreement: 0.95,
    disagreements: 1,
    flakiness: 0,
    recheck_recovery: null,
    failed_patchsets: 0,
    recovered: 0,
    rechecks: 0,
    rechecks_per_100_runs: null,
    queue_p50_s: null,
    queue_p95_s: null,
    vote_quality: null,
    metrics_pending: false,
    ...h,
  };
}

export function system(s: Partial<Omit<SystemSummary, 'health'>> & { health?: Partial<HealthWindow> } = {}): SystemSummary {
  const { health: h, ...rest } = s;
  return {
    id: 1,
    name: 'acme-ci',
    server: 'review.example.org',
    display_name: '',
    owner: null,
    is_reference: false,
    confirmed: true,
    source: 'config',
    projects: ['openstack/nova'],
    state: 'healthy',
    state_reason: 'all good',
    last_seen: '2024-05-01T11:00:00Z',
    sparkline: [1, 0.9, null, 0.8],
    ...rest,
    health: health(h),
  };
}

export function runOut(r: Partial<RunOut> = {}): RunOut {
  return {
    id: 1,
    server: 'review.example.org',
    ci: 'acme-ci',
    project: 'openstack/nova',
    branch: 'master',
    change: 1000,
    patchset: 1,
    result: 'SUCCESS',
    result_class: 'success',
    vote: 1,
    pipeline: 'check',
    posted_at: '2024-05-01T12:00:00Z',
    latency_s: 3600,
    message_id: 'm1',
    source: 'stream',
    log_url: 'https://logs.example.org/1',
    jobs: [],
    ...r,
  };
}

export function alertOut(a: Partial<AlertOut> = {}): AlertOut {
  return {
    id: 1,
    rule: 'failing',
    kind: 'consecutive_failures',
    ci: 'acme-ci',
    server: 'review.example.org',
    project: null,
    severity: 'warning',
    message: '3 failures in a row',
    created_at: '2024-05-01T12:00:00Z',
    run_id: null,
    muted: false,
    ...a,
  };
}

export function grid(): Grid {
  return {
    project: 'openstack/nova',
    systems: ['zuul', 'acme-ci'],
    rows: [
      {
        server: 'review.example.org',
        change: 2000,
        patchset: 3,
        project: 'openstack/nova',
        branch: 'master',
        subject: 'Fix the thing',
        url: 'https://review.example.org/2000',
        created_at: '2024-05-01T10:00:00Z',
        cells: {
          zuul: {
            run_id: 50,
            result: 'SUCCESS',
            result_class: 'success',
            vote: 1,
            posted_at: '2024-05-01T11:00:00Z',
            log_url: 'https://logs.example.org/50',
            runs: 1,
          },
        },
      },
      {
        server: 'review.example.org',
        change: 1990,
        patchset: 1,
        project: 'openstack/nova',
        branch: 'master',
        subject: 'Older change',
        url: null,
        created_at: '2024-05-01T08:00:00Z',
        cells: {},
      },
    ],
  };
}

/** An in-memory Storage whose contents a test can read (`data`). */
export function memoryStorage(): StorageLike & { data: Map<string, string> } {
  const data = new Map<string, string>();
  return {
    data,
    getItem: (k) => data.get(k) ?? null,
    setItem: (k, v) => void data.set(k, v),
    removeItem: (k) => void data.delete(k),
  };
}
