// The admin API's event feed (src/api/events.ts) over real sockets: the history table is its
// source of truth. Regressions of issue 10: changes made by another process (the `ztp` CLI
// writing the same database) never reached the stream; the replay stopped at the oldest 500
// events; a failed sZTP request read like a normal one; shutdown waited on open streams.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApiApp } from '../../src/api/app.js';
import type { StreamedEvent } from '../../src/api/events.js';
import { openDatabase } from '../../src/db/database.js';
import { DeviceStore } from '../../src/devices/store.js';
import { silentLogger } from '../../src/log.js';

const AUTH = { authorization: 'Bearer tok' };
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) { const t = performance.now(); await c(); if (process.env.DBG) console.log("cleanup", Math.round(performance.now() - t), String(c).slice(0, 60)); }
});

async function serve(opts: { file?: boolean; jobs?: () => unknown[] } = {}) {
  let file = ':memory:';
  if (opts.file) {
    const dir = mkdtempSync(join(tmpdir(), 'ztp-events-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    file = join(dir, 'ztp.db');
  }
  const db = openDatabase({ file });
  const store = new DeviceStore(db);
  const app = buildApiApp({ store, log: silentLogger, token: 'tok', eventPollMs: 50, ...(opts.jobs ? { jobs: opts.jobs } : {}) });
  await app.listen({ host: '127.0.0.1', port: 0 });
  cleanups.push(async () => {
    await app.close();
    db.close();
  });
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  return { app, store, db, file, base };
}

interface Frame {
  event: string;
  id: number | undefined;
  data: unknown;
}

/** An SSE client that collects frames; `read` lets a test leave the socket unread. */
async function openStream(url: string, headers: Record<string, string> = {}) {
  const controller = new AbortController();
  const res = await fetch(url, { headers: { ...AUTH, accept: 'text/event-stream', ...headers }, signal: controller.signal });
  cleanups.push(() => controller.abort());
  const frames: Frame[] = [];
  let ended = false;
  let buffer = '';
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  const pump = async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const raw = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (raw.startsWith(':')) continue;
          const f: Frame = { event: 'message', id: undefined, data: undefined };
          for (const line of raw.split('\n')) {
            if (line.startsWith('event: ')) f.event = line.slice(7);
            else if (line.startsWith('id: ')) f.id = Number(line.slice(4));
            else if (line.startsWith('data: ')) f.data = JSON.parse(line.slice(6));
          }
          frames.push(f);
        }
      }
    } catch {
      // aborted by the test
    }
    ended = true;
  };
  let pumping: Promise<void> | undefined;
  const history = () => frames.filter((f) => f.event === 'history').map((f) => f.data as StreamedEvent);
  return {
    res,
    frames,
    history,
    ended: () => ended,
    /** starts reading (call later to leave the socket unread meanwhile) */
    read: () => (pumping ??= pump()),
    async until(pred: () => boolean, what: string, timeoutMs = 10_000) {
      void (pumping ??= pump());
      const deadline = Date.now() + timeoutMs;
      while (!pred()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; ${frames.length} frames, last ${JSON.stringify(frames.at(-1))?.slice(0, 200)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}

const ids = (events: { id: number }[]) => events.map((e) => e.id);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('event feed', () => {
  it('changes committed by another connection (the ztp CLI) reach the stream, each once, in id order', async () => {
    const { store, file, base } = await serve({ file: true });
    const s = await openStream(`${base}/api/v1/events`);
    store.upsert({ serial: 'HERE-1' }, 'api');
    // The CLI: its own connection to the same database file.
    const cliDb = openDatabase({ file });
    cleanups.push(() => void cliDb.close());
    const cli = new DeviceStore(cliDb);
    cli.upsert({ serial: 'CLI-1', profile: 'opi', macs: ['02:00:00:00:0c:01'] }, 'cli');
    store.record({ serial: 'HERE-1', source: 'bootstrap', type: 'progress', data: { progressType: 'bootstrap-initiated' } });
    cli.record({ serial: 'CLI-1', source: 'bootstrap', type: 'progress', data: { progressType: 'bootstrap-initiated' } });
    cli.remove('CLI-1', 'cli');
    const last = store.latestEventId();
    await s.until(() => s.history().some((e) => e.id === last), 'the last event');
    expect(ids(s.history())).toEqual(range(1, last));
    const added = s.history().find((e) => e.serial === 'CLI-1' && e.type === 'device-added')!;
    // What a viewer needs comes with it: the record as it is now (removed since: null), the state.
    expect(added).toMatchObject({ source: 'admin', data: { actor: 'cli' }, summary: expect.stringContaining('device-added') });
    expect(added.device === null || added.device?.profile === 'opi').toBe(true);
    expect(s.history().find((e) => e.serial === 'HERE-1' && e.type === 'progress')).toMatchObject({ state: 'bootstrapping', stateChange: { from: 'registered', to: 'bootstrapping' } });
    expect(s.history().at(-1)).toMatchObject({ serial: 'CLI-1', type: 'device-removed' });
  });

  it('Last-Event-ID resumes from any id: a 2,500-event replay arrives whole, then live events follow', async () => {
    const { store, base } = await serve();
    store.upsert({ serial: 'R1' });
    store.recordMany(Array.from({ length: 2_499 }, (_, i) => ({ serial: 'R1', source: 'dhcp' as const, type: 'lease', data: { n: i } })));
    expect(store.latestEventId()).toBe(2_500);
    const s = await openStream(`${base}/api/v1/events`, { 'last-event-id': '7' });
    await s.until(() => s.history().length >= 2_493, 'the replay');
    store.record({ serial: 'R1', source: 'dhcp', type: 'lease', data: { n: 'live' } });
    await s.until(() => s.history().length >= 2_494, 'the live event');
    expect(ids(s.history())).toEqual(range(8, 2_501));
    // Every frame carries its id, so the next reconnect resumes exactly there.
    expect(s.frames.filter((f) => f.event === 'history').every((f) => f.id === (f.data as StreamedEvent).id)).toBe(true);
    // ?after= does the same for clients that cannot set the header.
    const q = await openStream(`${base}/api/v1/events?after=2490`);
    await q.until(() => q.history().length >= 11, 'the ?after= replay');
    expect(ids(q.history())).toEqual(range(2_491, 2_501));
  });

  it('a client that stops reading loses nothing: the rest is paged from the table when it drains', async () => {
    const { store, base } = await serve();
    store.upsert({ serial: 'SLOW' });
    const s = await openStream(`${base}/api/v1/events`);
    // ~10 MB of events while nobody reads: far more than the socket buffers hold.
    const pad = 'x'.repeat(400);
    for (let i = 0; i < 25; i++) store.recordMany(Array.from({ length: 1_000 }, (_, j) => ({ serial: 'SLOW', source: 'dhcp' as const, type: 'lease', data: { n: i * 1000 + j, pad } })));
    await new Promise((r) => setTimeout(r, 200));
    void s.read();
    const last = store.latestEventId();
    await s.until(() => s.history().at(-1)?.id === last, 'the last event', 30_000);
    expect(ids(s.history())).toEqual(range(2, last));
  }, 60_000);

  it('a failed sZTP request is streamed as a failure, with its HTTP status and reason', async () => {
    const { store, base } = await serve();
    store.upsert({ serial: 'F1' });
    const s = await openStream(`${base}/api/v1/events`);
    store.record({ serial: 'F1', source: 'bootstrap', type: 'request', data: { rpc: 'get-bootstrapping-data', result: 'error', code: 'SZTP_ACCESS_DENIED', error: 'wrong password' } });
    store.record({ serial: 'F1', source: 'bootstrap', type: 'request', data: { rpc: 'get-bootstrapping-data', result: 'error', code: 'INTERNAL', error: 'internal error' } });
    store.record({ serial: 'F1', source: 'bootstrap', type: 'request', data: { rpc: 'get-bootstrapping-data', result: 'ok', response: 'onboarding-information', signed: true } });
    await s.until(() => s.history().length === 3, 'three requests');
    const [denied, internal, ok] = s.history();
    expect(denied).toMatchObject({ error: true, status: 401, summary: 'sZTP get-bootstrapping-data failed 401 SZTP_ACCESS_DENIED: wrong password' });
    expect(internal).toMatchObject({ error: true, status: 500, summary: 'sZTP get-bootstrapping-data failed 500 INTERNAL: internal error' });
    expect(ok!.error).toBeUndefined();
    expect(ok!.summary).toBe('sZTP get-bootstrapping-data → onboarding-information (signed)');
  });

  it('?snapshot=true starts with the fleet at one id, then every event after it', async () => {
    const { store, base } = await serve({ jobs: () => [{ serial: 'S1', status: 'queued' }] });
    store.upsert({ serial: 'S1', profile: 'opi', bmc: { address: 'https://bmc-s1', username: 'root', password: 'calvin' } });
    store.upsert({ serial: 'S2' });
    const s = await openStream(`${base}/api/v1/events?snapshot=true`);
    await s.until(() => s.frames.length >= 1, 'the snapshot');
    const snap = s.frames[0]!;
    expect(snap.event).toBe('snapshot');
    expect(snap.id).toBe(2);
    const body = snap.data as { lastId: number; devices: { serial: string; state: string }[]; jobs: unknown[]; onboarding: boolean; steps: string[]; states: string[] };
    expect(body).toMatchObject({ lastId: 2, onboarding: true, jobs: [{ serial: 'S1' }] });
    expect(body.devices.map((d) => d.serial)).toEqual(['S1', 'S2']);
    expect(JSON.stringify(body)).not.toContain('calvin');
    expect(body.states).toContain('onboarded');
    store.record({ serial: 'S2', source: 'dhcp', type: 'lease', data: {} });
    await s.until(() => s.history().length === 1, 'the next event');
    expect(s.history()[0]).toMatchObject({ id: 3, serial: 'S2', state: 'dhcp-bound' });
  });

  it('JSON paging says where the next page starts; the token is refused in a URL', async () => {
    const { app, store } = await serve();
    store.upsert({ serial: 'P1' });
    store.recordMany(Array.from({ length: 9 }, () => ({ serial: 'P1', source: 'dhcp' as const, type: 'lease' })));
    const seen: number[] = [];
    for (let after: number | undefined = 0; after !== undefined; ) {
      const page = (await app.inject({ method: 'GET', url: `/api/v1/events?after=${after}&limit=4`, headers: AUTH })).json() as { events: { id: number }[]; next?: number };
      seen.push(...ids(page.events));
      after = page.next;
    }
    expect(seen).toEqual(range(1, 10));
    expect((await app.inject({ method: 'GET', url: '/api/v1/events?token=tok', headers: { accept: 'text/event-stream' } })).statusCode).toBe(401);
  });

  it('a database closed under a running app stops the feed poller without an uncaught error', async () => {
    const db = openDatabase({ file: ':memory:' });
    const warnings: string[] = [];
    const log = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) });
    const app = buildApiApp({ store: new DeviceStore(db), log, token: 'tok', eventPollMs: 10 });
    await app.ready();
    db.close();
    await new Promise((r) => setTimeout(r, 100));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('event feed stopped: the database is closed');
    await app.close();
  });

  it('closing the app ends every open stream instead of waiting for them', async () => {
    const { app, base } = await serve();
    const a = await openStream(`${base}/api/v1/events`);
    const b = await openStream(`${base}/api/v1/events?snapshot=true`);
    void a.read();
    await b.until(() => b.frames.length === 1, 'the snapshot');
    const started = performance.now();
    await app.close();
    await a.until(() => a.ended(), 'stream a to end', 5_000);
    await b.until(() => b.ended(), 'stream b to end', 5_000);
    console.log(`app.close() with 2 open streams: ${Math.round(performance.now() - started)} ms (loaded machine)`);
  });
});
