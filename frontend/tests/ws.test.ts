import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LiveClient, backoffDelay, DEFAULT_BACKOFF, type ConnState } from '../src/lib/ws';
import type { FeedMessage } from '../src/lib/types';
import { FakeSocket } from './fake-socket';

function makeClient(extra: Partial<ConstructorParameters<typeof LiveClient>[0]> = {}) {
  const messages: FeedMessage[] = [];
  const states: ConnState[] = [];
  const resets: number[] = [];
  const client = new LiveClient({
    url: 'ws://dash.example/api/v1/ws',
    createSocket: (url) => new FakeSocket(url),
    onMessage: (m) => messages.push(m),
    onStateChange: (s) => states.push(s),
    onReset: () => resets.push(1),
    random: () => 0.5,
    ...extra,
  });
  return { client, messages, states, resets };
}

const run = (id: number) => ({ type: 'run', id, data: { id: 1000 + id, ci: 'acme-ci' } });

beforeEach(() => {
  FakeSocket.reset();
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('backoffDelay', () => {
  it('grows exponentially from the base', () => {
    const none = () => 1; // no jitter reduction: the full capped value
    expect(backoffDelay(0, DEFAULT_BACKOFF, none)).toBe(1000);
    expect(backoffDelay(1, DEFAULT_BACKOFF, none)).toBe(2000);
    expect(backoffDelay(2, DEFAULT_BACKOFF, none)).toBe(4000);
    expect(backoffDelay(4, DEFAULT_BACKOFF, none)).toBe(16000);
  });

  it('is capped at 30 s whatever the attempt and the jitter', () => {
    for (const attempt of [5, 6, 10, 50, 1000]) {
      for (const r of [0, 0.3, 0.999, 1]) {
        const d = backoffDelay(attempt, DEFAULT_BACKOFF, () => r);
        expect(d).toBeLessThanOrEqual(30000);
        expect(d).toBeGreaterThanOrEqual(15000);
      }
    }
    expect(backoffDelay(1000, DEFAULT_BACKOFF, () => 1)).toBe(30000);
  });

  it('jitters between half and all of the exponential value', () => {
    expect(backoffDelay(3, DEFAULT_BACKOFF, () => 0)).toBe(4000);
    expect(backoffDelay(3, DEFAULT_BACKOFF, () => 0.5)).toBe(6000);
    expect(backoffDelay(3, DEFAULT_BACKOFF, () => 1)).toBe(8000);
  });
});

describe('LiveClient', () => {
  it('subscribes without since on the first connection and goes live on hello', () => {
    const { client, states } = makeClient({ subscription: { kinds: ['run', 'alert'], ci: ['acme-ci'], projects: [] } });
    client.start();
    const s = FakeSocket.last;
    expect(s.url).toBe('ws://dash.example/api/v1/ws');
    s.open();
    expect(s.sent).toEqual([{ type: 'subscribe', kinds: ['run', 'alert'], ci: ['acme-ci'] }]);
    expect(client.state).toBe('reconnecting');
    s.receive({ type: 'hello', id: 41 });
    expect(client.state).toBe('live');
    expect(client.lastId).toBe(41);
    expect(states).toEqual(['live']);
  });

  it('delivers messages in order and drops duplicates and old ids', () => {
    const { client, messages } = makeClient();
    client.start();
    const s = FakeSocket.last;
    s.open();
    s.receive({ type: 'hello', id: 10 });
    s.receive(run(10)); // not newer than hello: already seen
    s.receive(run(11));
    s.receive(run(11)); // duplicate
    s.receive(run(12));
    s.receive(run(9)); // old
    expect(messages.map((m) => m.id)).toEqual([11, 12]);
    expect(client.duplicates).toBe(3);
    expect(client.lastId).toBe(12);
  });

  it('resumes with since = last id after a drop and does not deliver the overlap twice', () => {
    const { client, messages, states } = makeClient();
    client.start();
    const first = FakeSocket.last;
    first.open();
    first.receive({ type: 'hello', id: 100 });
    first.receive(run(101));
    first.receive(run(102));
    first.serverClose(1006);
    expect(client.state).toBe('reconnecting');
    expect(FakeSocket.instances).toHaveLength(1);

    vi.advanceTimersByTime(1000); // backoff(0) with random 0.5 = 750 ms
    expect(FakeSocket.instances).toHaveLength(2);
    const second = FakeSocket.last;
    second.open();
    expect(second.sent[0]).toMatchObject({ type: 'subscribe', since: 102 });
    // The server replays from since; a buggy/overlapping replay must not duplicate anything.
    second.receive({ type: 'hello', id: 105 });
    second.receive(run(102));
    second.receive(run(103));
    second.receive(run(104));
    second.receive(run(105));
    second.receive(run(104));
    expect(messages.map((m) => m.id)).toEqual([101, 102, 103, 104, 105]);
    expect(client.lastId).toBe(105);
    expect(states).toEqual(['live', 'reconnecting', 'live']);
  });

  it('answers pings with pong and reconnects after 40 s of silence', () => {
    const { client } = makeClient();
    client.start();
    const s = FakeSocket.last;
    s.open();
    s.receive({ type: 'hello', id: 1 });
    s.receive({ type: 'ping', id: 1 });
    expect(s.sent.at(-1)).toEqual({ type: 'pong' });

    vi.advanceTimersByTime(39000);
    s.receive({ type: 'ping', id: 1 }); // traffic re-arms the watchdog
    vi.advanceTimersByTime(39000);
    expect(client.state).toBe('live');
    expect(s.closedWith).toBeNull();

    vi.advanceTimersByTime(1500); // 40 s since the last message
    expect(s.closedWith?.code).toBe(4000);
    expect(client.state).toBe('reconnecting');
    vi.advanceTimersByTime(1000);
    expect(FakeSocket.instances).toHaveLength(2);
    FakeSocket.last.open();
    expect(FakeSocket.last.sent[0]).toMatchObject({ since: 1 });
  });

  it('ignores events of a socket it gave up on', () => {
    const { client, messages } = makeClient();
    client.start();
    const s = FakeSocket.last;
    s.open();
    s.receive({ type: 'hello', id: 1 });
    vi.advanceTimersByTime(41000); // heartbeat timeout: handlers detached
    // A late message or close from the dead socket changes nothing.
    s.onmessage?.({ data: JSON.stringify(run(2)) });
    s.onclose?.({ code: 1006 });
    expect(messages).toHaveLength(0);
    vi.advanceTimersByTime(1000);
    expect(FakeSocket.instances).toHaveLength(2);
  });

  it('backs off exponentially while the server is down, caps at 30 s, then reads offline', () => {
    const { client, states } = makeClient({ random: () => 1 });
    client.start();
    const delays: number[] = [];
    for (let i = 0; i < 8; i++) {
      const count = FakeSocket.instances.length;
      FakeSocket.last.serverClose(1006); // connection refused
      let waited = 0;
      while (FakeSocket.instances.length === count) {
        vi.advanceTimersByTime(250);
        waited += 250;
        if (waited > 60000) throw new Error('no reconnect');
      }
      delays.push(waited);
    }
    expect(delays).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
    expect(states).toContain('offline');
    expect(client.state).toBe('offline');
    // A successful connection resets the backoff and the state.
    FakeSocket.last.open();
    FakeSocket.last.receive({ type: 'hello', id: 5 });
    expect(client.state).toBe('live');
    expect(client.attempt).toBe(0);
  });

  it('reconnects quickly with since after a slow-consumer close (4008)', () => {
    const { client } = makeClient({ random: () => 1 });
    client.start();
    // Make some failures first so the backoff counter is high.
    for (let i = 0; i < 3; i++) {
      FakeSocket.last.serverClose(1006);
      vi.advanceTimersByTime(30000);
    }
    const s = FakeSocket.last;
    s.open();
    s.receive({ type: 'hello', id: 7 });
    s.receive(run(8));
    s.serverClose(4008, 'slow consumer');
    const n = FakeSocket.instances.length;
    vi.advanceTimersByTime(1000);
    expect(FakeSocket.instances.length).toBe(n + 1);
    FakeSocket.last.open();
    expect(FakeSocket.last.sent[0]).toMatchObject({ type: 'subscribe', since: 8 });
  });

  it('detects a restarted feed (hello id below ours), resets and keeps delivering', () => {
    const { client, messages, resets } = makeClient();
    client.start();
    FakeSocket.last.open();
    FakeSocket.last.receive({ type: 'hello', id: 500 });
    FakeSocket.last.serverClose(1006);
    vi.advanceTimersByTime(1000);
    FakeSocket.last.open();
    FakeSocket.last.receive({ type: 'hello', id: 3 });
    FakeSocket.last.receive(run(4));
    expect(resets).toHaveLength(1);
    expect(messages.map((m) => m.id)).toEqual([4]);
  });

  it('ignores malformed frames and unknown types', () => {
    const { client, messages } = makeClient();
    client.start();
    const s = FakeSocket.last;
    s.open();
    s.receive({ type: 'hello', id: 1 });
    s.receive('not json');
    s.receive({ type: 'mystery', id: 2, data: {} });
    s.receive({ type: 'run', data: {} }); // no id
    s.receive(run(3));
    expect(messages.map((m) => m.id)).toEqual([3]);
    expect(client.lastId).toBe(3);
  });

  it('stop() closes the socket, goes offline and never reconnects', () => {
    const { client } = makeClient();
    client.start();
    const s = FakeSocket.last;
    s.open();
    s.receive({ type: 'hello', id: 1 });
    client.stop();
    expect(s.closedWith?.code).toBe(1000);
    expect(client.state).toBe('offline');
    vi.advanceTimersByTime(120000);
    expect(FakeSocket.instances).toHaveLength(1);
  });

  it('reconnectNow() skips the backoff wait', () => {
    const { client } = makeClient({ random: () => 1 });
    client.start();
    for (let i = 0; i < 5; i++) {
      FakeSocket.last.serverClose(1006);
      vi.advanceTimersByTime(30000);
    }
    FakeSocket.last.serverClose(1006); // now waiting 30 s
    const n = FakeSocket.instances.length;
    client.reconnectNow();
    expect(FakeSocket.instances.length).toBe(n + 1);
  });

  it('survives a socket constructor that throws', () => {
    let fail = true;
    const { client } = makeClient({
      createSocket: (url) => {
        if (fail) throw new SyntaxError('bad url');
        return new FakeSocket(url);
      },
    });
    client.start();
    expect(FakeSocket.instances).toHaveLength(0);
    expect(client.state).toBe('reconnecting');
    fail = false;
    vi.advanceTimersByTime(1000);
    expect(FakeSocket.instances).toHaveLength(1);
  });
});
