#!/usr/bin/env node
// A stand-in for the cidash API with synthetic data, for working on the UI without the Python side:
//   npm run build && node scripts/mock-api.mjs [port]     (serves dist/ and /api/v1 on 127.0.0.1)
// It implements the endpoints the UI uses and the websocket feed (hello, since replay, ping, live
// runs/alerts/states). No dependencies: node's http and a minimal RFC 6455 text-frame codec.
import { createServer } from 'node:http';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const PORT = Number(process.argv[2] ?? process.env.PORT ?? 8080);
const DIST = fileURLToPath(new URL('../dist/', import.meta.url));
const SERVER = 'review.example.org';
const PROJECTS = ['openstack/nova', 'openstack/cinder', 'openstack/neutron'];

let seed = 42;
const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
const pick = (a) => a[Math.floor(rnd() * a.length)];
const iso = (ms) => new Date(ms).toISOString();
const NOW = Date.now();

const SYS = [
  ['zuul', 'OpenStack Zuul', 0.93, 'healthy', 'success rate 93% over 24 h', true, true],
  ['cisco-ci', 'Cisco CI', 0.88, 'healthy', 'success rate 88% over 24 h', false, true],
  ['netapp-ci', 'NetApp CI', 0.61, 'degraded', 'success rate 61% (below 80%)', false, true],
  ['hpe-storage-ci', 'HPE Storage CI', 0.12, 'failing', '7 failures in a row since 09:12', false, true],
  ['dell-emc-ci', 'Dell EMC CI', 0.9, 'healthy', 'success rate 90% over 24 h', false, true],
  ['vmware-nsx-ci', 'VMware NSX CI', null, 'silent', 'no result for 3 days', false, true],
  ['mellanox-ci', 'Mellanox CI', 0.8, 'degraded', 'p95 latency 9 h 12 m (above 6 h)', false, true],
  ['intel-nfv-ci', 'Intel NFV CI', 0.97, 'healthy', 'success rate 97% over 24 h', false, true],
  ['some-new-bot', 'some-new-bot', 0.5, 'unknown', 'too few results to judge (2)', false, false],
  ['ibm-powerkvm-ci', 'IBM PowerKVM CI <script>alert(1)</script>', 0.74, 'degraded', 'infra errors 22%', false, true],
];
const systems = SYS.map(([name, display, rate, state, reason, ref, confirmed], i) => ({
  id: i + 1, name, server: SERVER, display_name: display, owner: ref ? 'openstack-infra' : `${name} team`,
  is_reference: ref, confirmed, source: confirmed ? 'config' : 'detected',
  projects: ref ? PROJECTS : [pick(PROJECTS), pick(PROJECTS)].filter((v, j, a) => a.indexOf(v) === j),
  state, state_reason: reason,
  last_seen: state === 'silent' ? iso(NOW - 3 * 86400e3) : iso(NOW - rnd() * 3 * 3600e3),
  base: rate,
}));

function healthOf(s, window) {
  const r = s.base;
  return {
    window, runs: r === null ? 0 : Math.floor(20 + rnd() * 200), success_rate: r,
    failure_rate: r === null ? null : (1 - r) * 0.7, infra_error_rate: r === null ? null : (1 - r) * 0.3,
    latency_p50_s: r === null ? null : 1800 + rnd() * 4000, latency_p95_s: r === null ? null : 6000 + rnd() * 30000,
    coverage: r === null ? null : 0.5 + rnd() * 0.5, agreement: s.is_reference || r === null ? null : 0.6 + rnd() * 0.4,
    disagreements: s.is_reference ? 0 : Math.floor(rnd() * 8), flakiness: rnd() * 0.1,
  };
}
const summary = (s, window = '24h') => {
  const { base, ...rest } = s;
  return {
    ...rest, health: healthOf(s, window),
    sparkline: Array.from({ length: 24 }, () => (base === null || rnd() < 0.08 ? null : Math.min(1, Math.max(0, base + (rnd() - 0.5) * 0.3)))),
  };
};

const RESULT = { success: 'SUCCESS', failure: 'FAILURE', infra: 'NODE_FAILURE', other: 'ABORTED' };
let runId = 1000;
const runs = [];
function makeRun(ci, change, ps, postedMs, project) {
  const s = systems.find((x) => x.name === ci);
  const r = rnd();
  const cls = r < (s.base ?? 0.5) ? 'success' : r < (s.base ?? 0.5) + (1 - (s.base ?? 0.5)) * 0.7 ? 'failure' : pick(['infra', 'other']);
  const id = ++runId;
  const jobs = ['tempest-full', 'unit-py311', `${ci}-functional`, 'grenade'].map((name, j) => ({
    name: j === 2 && ci === 'ibm-powerkvm-ci' ? '<script>alert("job")</script>' : name,
    url: j === 3 && ci === 'netapp-ci' ? 'javascript:alert(1)' : `https://logs.example.org/${change}/${ps}/${ci}/${name}/`,
    result: cls === 'success' || j > 0 ? 'SUCCESS' : cls === 'infra' ? 'NODE_FAILURE' : 'FAILURE',
    duration_s: Math.floor(600 + rnd() * 4000), voting: j !== 3,
  }));
  return {
    id, server: SERVER, ci, project, branch: 'master', change, patchset: ps, result: RESULT[cls], result_class: cls,
    vote: cls === 'success' ? 1 : cls === 'failure' ? -1 : null, pipeline: 'check', posted_at: iso(postedMs),
    latency_s: 1200 + rnd() * 9000, message_id: `m${id}`, source: 'stream',
    log_url: ci === 'netapp-ci' ? 'javascript:alert(document.cookie)' : `https://logs.example.org/${change}/${ps}/${ci}/`,
    jobs,
    comment: `Build ${cls === 'success' ? 'succeeded' : 'failed'}.\n\n` +
      jobs.map((j) => `- ${j.name} ${j.url} : ${j.result} in ${Math.floor(j.duration_s / 60)}m`).join('\n') +
      (ci === 'ibm-powerkvm-ci' ? '\n\n<script>alert("comment")</script> <b>not bold</b>' : ''),
  };
}
const patchsets = [];
for (let i = 0; i < 40; i++) {
  const change = 900000 + 40 - i;
  const ps = 1 + Math.floor(rnd() * 3);
  const project = PROJECTS[i % 3];
  const created = NOW - i * 50 * 60e3 - 3600e3;
  patchsets.push({ server: SERVER, change, patchset: ps, project, branch: 'master', subject: `Fix ${pick(['volume attach', 'port binding', 'quota race', 'live migration'])} (${change})`, url: `https://review.example.org/c/${project}/+/${change}`, created_at: iso(created) });
  for (const s of systems) {
    if (s.state === 'silent' || (!s.is_reference && !s.projects.includes(project)) || rnd() < 0.15) continue;
    runs.push(makeRun(s.name, change, ps, created + 1800e3 + rnd() * 7200e3, project));
  }
}
runs.sort((a, b) => Date.parse(b.posted_at) - Date.parse(a.posted_at));
let alertId = 0;
const alerts = [];
function makeAlert(ci, severity, kind, message, run_id = null) {
  return { id: ++alertId, rule: `${kind}-rule`, kind, ci, server: SERVER, project: null, severity, message, created_at: iso(Date.now()), run_id, muted: false };
}
alerts.push(makeAlert('hpe-storage-ci', 'critical', 'consecutive_failures', '7 failures in a row on openstack/cinder'));
alerts.push(makeAlert('vmware-nsx-ci', 'warning', 'silent', 'No result for 3 days'));
alerts.push(makeAlert('ibm-powerkvm-ci', 'warning', 'failure_rate', 'Infra errors 22% <script>alert(2)</script>'));

function cellsFor(ps) {
  const cells = {};
  for (const r of runs) {
    if (r.change !== ps.change || r.patchset !== ps.patchset) continue;
    const c = cells[r.ci];
    if (!c) cells[r.ci] = { run_id: r.id, result: r.result, result_class: r.result_class, vote: r.vote, posted_at: r.posted_at, log_url: r.log_url, runs: 1 };
    else c.runs += 1;
  }
  return cells;
}
const systemOrder = () => [...systems].sort((a, b) => (b.is_reference - a.is_reference) || a.name.localeCompare(b.name)).map((s) => s.name);
const page = (items, cursor, limit) => {
  const start = cursor ? Number(cursor) : 0;
  const slice = items.slice(start, start + limit);
  return { items: slice, next_cursor: start + limit < items.length ? String(start + limit) : null };
};
const strip = ({ comment, ...r }) => r;

function api(path, q) {
  const limit = Math.min(200, Number(q.get('limit') ?? 50));
  let m;
  if (path === 'systems') {
    const p = q.get('project');
    return systems.filter((s) => !p || s.projects.includes(p)).map((s) => summary(s, q.get('window') ?? '24h'));
  }
  if ((m = path.match(/^systems\/([^/]+)$/))) {
    const s = systems.find((x) => x.name === decodeURIComponent(m[1]));
    return s && { ...summary(s), windows: ['1h', '24h', '7d', '30d'].map((w) => healthOf(s, w)) };
  }
  if ((m = path.match(/^systems\/([^/]+)\/runs$/))) {
    const ci = decodeURIComponent(m[1]);
    return page(runs.filter((r) => r.ci === ci).map(strip), q.get('cursor'), limit);
  }
  if ((m = path.match(/^systems\/([^/]+)\/series$/))) {
    const s = systems.find((x) => x.name === decodeURIComponent(m[1]));
    if (!s) return undefined;
    const step = q.get('bucket') === 'day' ? 86400e3 : 3600e3;
    const from = Date.parse(q.get('from')), to = Date.parse(q.get('to'));
    const out = [];
    for (let t = Math.floor(from / step) * step; t < to; t += step) {
      const n = s.base === null ? 0 : Math.floor(rnd() * 12);
      const rate = n ? Math.min(1, Math.max(0, s.base + (rnd() - 0.5) * 0.3)) : null;
      out.push({ t: iso(t), runs: n, successes: Math.round(n * (rate ?? 0)), failures: 0, infra_errors: 0, success_rate: rate, latency_p50_s: n ? 1800 + rnd() * 3000 : null, latency_p95_s: n ? 6000 + rnd() * 20000 : null });
    }
    return out;
  }
  if ((m = path.match(/^systems\/([^/]+)\/jobs$/))) {
    return ['tempest-full', 'unit-py311', 'grenade', '<script>alert("jobname")</script>', 'functional'].map((name) => {
      const n = 20 + Math.floor(rnd() * 100), f = Math.floor(rnd() * n * 0.4);
      return { name, runs: n, failures: f, infra_errors: Math.floor(rnd() * 4), failure_rate: f / n, last_failure_at: f ? iso(NOW - rnd() * 86400e3) : null, last_failure_url: f ? (rnd() < 0.3 ? 'data:text/html,hi' : `https://logs.example.org/${name}/`) : null };
    });
  }
  if (path === 'runs') {
    const f = (k, fn) => (q.get(k) ? fn(q.get(k)) : () => true);
    const ok = [f('ci', (v) => (r) => r.ci === v), f('project', (v) => (r) => r.project === v), f('branch', (v) => (r) => r.branch === v), f('result', (v) => (r) => r.result_class === v || r.result === v)];
    return page(runs.filter((r) => ok.every((g) => g(r))).map(strip), q.get('cursor'), limit);
  }
  if ((m = path.match(/^runs\/(\d+)$/))) return runs.find((r) => r.id === Number(m[1]));
  if (path === 'grid') {
    const p = q.get('project');
    const rows = patchsets.filter((ps) => !p || ps.project === p).slice(0, Number(q.get('limit') ?? 30)).map((ps) => ({ ...ps, cells: cellsFor(ps) }));
    return { project: p, systems: systemOrder(), rows };
  }
  if (path === 'projects') return PROJECTS;
  if ((m = path.match(/^changes\/(\d+)$/))) {
    const n = Number(m[1]);
    const ps = patchsets.find((x) => x.change === n);
    if (!ps) return undefined;
    const rows = [];
    for (let i = 1; i <= ps.patchset; i++) rows.push({ ...ps, patchset: i, cells: cellsFor({ ...ps, patchset: i }) });
    return { server: SERVER, change: n, project: ps.project, branch: ps.branch, subject: ps.subject, url: ps.url, status: 'NEW', systems: systemOrder(), patchsets: rows };
  }
  if (path === 'alerts') {
    const ci = q.get('ci');
    return page(alerts.filter((a) => !ci || a.ci === ci).sort((a, b) => b.id - a.id), q.get('cursor'), limit);
  }
  if (path === 'alerts/rules') {
    return [
      { name: 'consecutive', kind: 'consecutive_failures', ci: [], projects: [], params: { count: 5 }, webhooks: ['https://hooks.example.org/services/***'] },
      { name: 'silent', kind: 'silent', ci: ['vmware-nsx-ci'], projects: ['openstack/neutron'], params: { hours: 24 }, webhooks: [] },
    ];
  }
  if ((m = path.match(/^badge\/(.+)\.svg$/))) return { svg: `<svg xmlns="http://www.w3.org/2000/svg" width="110" height="20"><rect width="110" height="20" rx="3" fill="#16a34a"/><text x="8" y="14" fill="#fff" font-family="sans-serif" font-size="11">CI: healthy</text></svg>` };
  return undefined;
}

// ---- websocket feed ----
const feed = []; // {type,id,data}
let feedId = 5000;
const clients = new Set();
function frame(text) {
  const body = Buffer.from(text);
  const n = body.length;
  const head = n < 126 ? Buffer.from([0x81, n]) : n < 65536 ? Buffer.from([0x81, 126, n >> 8, n & 255]) : (() => { const b = Buffer.alloc(10); b[0] = 0x81; b[1] = 127; b.writeBigUInt64BE(BigInt(n), 2); return b; })();
  return Buffer.concat([head, body]);
}
function send(c, obj) { if (!c.sock.destroyed) c.sock.write(frame(JSON.stringify(obj))); }
function publish(type, data) {
  const msg = { type, id: ++feedId, data };
  feed.push(msg);
  if (feed.length > 1000) feed.shift();
  for (const c of clients) if (c.subscribed) send(c, msg);
}
function onClientText(c, text) {
  let m; try { m = JSON.parse(text); } catch { return; }
  if (m.type === 'subscribe') {
    c.subscribed = true;
    send(c, { type: 'hello', id: feedId });
    if (typeof m.since === 'number') for (const msg of feed) if (msg.id > m.since) send(c, msg);
  }
}
function parseFrames(c, chunk) {
  c.buf = Buffer.concat([c.buf, chunk]);
  for (;;) {
    const b = c.buf;
    if (b.length < 2) return;
    const op = b[0] & 15, masked = b[1] & 128;
    let len = b[1] & 127, off = 2;
    if (len === 126) { if (b.length < 4) return; len = b.readUInt16BE(2); off = 4; }
    else if (len === 127) { if (b.length < 10) return; len = Number(b.readBigUInt64BE(2)); off = 10; }
    const maskOff = off; if (masked) off += 4;
    if (b.length < off + len) return;
    const data = Buffer.from(b.subarray(off, off + len));
    if (masked) for (let i = 0; i < len; i++) data[i] ^= b[maskOff + (i & 3)];
    c.buf = b.subarray(off + len);
    if (op === 8) { c.sock.end(Buffer.from([0x88, 0])); return; }
    if (op === 1) onClientText(c, data.toString());
  }
}

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml', '.json': 'application/json' };
const server = createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname.startsWith('/api/v1/')) {
    const body = api(url.pathname.slice('/api/v1/'.length), url.searchParams);
    if (body === undefined) { res.writeHead(404, { 'Content-Type': 'application/json' }); res.end(JSON.stringify({ detail: 'not found' })); return; }
    if (body.svg) { res.writeHead(200, { 'Content-Type': 'image/svg+xml' }); res.end(body.svg); return; }
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body));
    return;
  }
  const rel = normalize(url.pathname === '/' ? 'index.html' : url.pathname.slice(1));
  if (rel.startsWith('..')) { res.writeHead(400); res.end(); return; }
  try {
    const data = await readFile(join(DIST, rel));
    res.writeHead(200, { 'Content-Type': TYPES[extname(rel)] ?? 'application/octet-stream' });
    res.end(data);
  } catch {
    const data = await readFile(join(DIST, 'index.html')).catch(() => null);
    res.writeHead(data ? 200 : 404, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(data ?? 'run `npm run build` first');
  }
});
server.on('upgrade', (req, sock) => {
  if (!req.url.startsWith('/api/v1/ws')) { sock.destroy(); return; }
  const accept = createHash('sha1').update(req.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  sock.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
  const c = { sock, buf: Buffer.alloc(0), subscribed: false };
  clients.add(c);
  sock.on('data', (d) => parseFrames(c, d));
  sock.on('close', () => clients.delete(c));
  sock.on('error', () => clients.delete(c));
});

// Live traffic: a result every 3 s, an alert every 20 s, a state change every 30 s.
let tick = 0;
const timer = setInterval(() => {
  tick += 1;
  const ps = pick(patchsets.slice(0, 8));
  const ci = pick(systems.filter((s) => s.state !== 'silent' && (s.is_reference || s.projects.includes(ps.project)))).name;
  const run = makeRun(ci, ps.change, ps.patchset, Date.now(), ps.project);
  runs.unshift(run);
  publish('run', strip(run));
  if (tick % 7 === 0) {
    const a = makeAlert(pick(['hpe-storage-ci', 'netapp-ci', 'mellanox-ci']), pick(['warning', 'critical']), 'failure', `${ci} failed on ${ps.change},${ps.patchset}`, run.id);
    alerts.push(a);
    publish('alert', a);
  }
  if (tick % 10 === 0) {
    const s = pick(systems.filter((x) => !x.is_reference));
    s.state = pick(['healthy', 'degraded', 'failing']);
    s.state_reason = `changed live at ${new Date().toISOString().slice(11, 19)}`;
    publish('state', { ci: s.name, state: s.state, state_reason: s.state_reason });
  }
}, 3000);
const pinger = setInterval(() => { for (const c of clients) send(c, { type: 'ping', id: feedId }); }, 15000);
const stopAfter = Number(process.env.MOCK_MINUTES ?? 60) * 60e3; // never runs forever
setTimeout(() => { clearInterval(timer); clearInterval(pinger); server.close(); for (const c of clients) c.sock.destroy(); }, stopAfter).unref();

server.listen(PORT, '127.0.0.1', () => console.log(`mock cidash API + dist/ on http://127.0.0.1:${PORT}/ (stops after ${stopAfter / 60e3} min)`));
