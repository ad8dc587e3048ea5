// Issue 8, "All services share one process": DHCP packet handling on its own worker thread
// (src/dhcp/threaded.ts + the compiled src/dhcp/worker.ts). Real UDP on loopback, the real
// worker (dist/, built by buildCli), a file database shared by both threads' connections.
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config.js';
import { openDatabase, type Db } from '../../src/db/database.js';
import { DeviceStore, systemClock, type HistoryEvent } from '../../src/devices/store.js';
import { decodeV4, encodeV4, getOption } from '../../src/dhcp/codec/v4.js';
import { createThreadedDhcpService } from '../../src/dhcp/threaded.js';
import { silentLogger } from '../../src/log.js';
import { isRoot } from '../helpers/shared.js';
import { buildCli, REPO } from '../helpers/ztp-process.js';

const workerUrl = pathToFileURL(join(REPO, 'dist', 'dhcp', 'worker.js'));
let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});
beforeAll(() => buildCli(), 240_000);

function setup(dhcp: Record<string, unknown> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'ztp-dhcp-worker-'));
  const config = validateConfig({ dataDir: dir, dhcp: { interface: 'lo', port: 0, summaryInterval: 0, subnets: [{ subnet: '127.0.0.0/8', pools: [{ start: '127.0.5.1', end: '127.0.5.200' }] }], ...dhcp } });
  const db: Db = openDatabase({ file: join(dir, 'ztp.db') });
  const store = new DeviceStore(db);
  const service = createThreadedDhcpService({ config, log: silentLogger, db, store, clock: systemClock, publicHost: 'ztp.test' }, { workerUrl, restart: { initialMs: 50, maxMs: 200 }, statusIntervalMs: 20 });
  cleanup.push(async () => {
    await service.stop();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { service, store, db };
}

const until = async (test: () => boolean, what: string) => {
  const end = Date.now() + 10_000;
  while (!test()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

/** INFORM from ciaddr 127.0.0.9, MAC 02:00:00:00:00:09: the ACK comes unicast to 127.0.0.9:68. */
async function inform(port: number): Promise<string> {
  const chaddr = Buffer.alloc(16);
  Buffer.from([2, 0, 0, 0, 0, 9]).copy(chaddr);
  const s = createSocket({ type: 'udp4', reuseAddr: true });
  try {
    const reply = new Promise<Buffer>((resolve, reject) => {
      s.on('message', resolve);
      setTimeout(() => reject(new Error('no reply')), 3000).unref();
    });
    await new Promise<void>((r) => s.bind(68, '127.0.0.9', r));
    s.send(encodeV4({ op: 1, htype: 1, hlen: 6, hops: 0, xid: 7, secs: 0, flags: 0, ciaddr: '127.0.0.9', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: '0.0.0.0', chaddr, sname: '', file: '', options: [{ code: 53, data: Buffer.from([8]) }] }), port, '127.0.0.1');
    return getOption(decodeV4(await reply), 54)!.join('.');
  } finally {
    s.close();
  }
}

describe('DHCP on a worker thread', () => {
  it('answers from the worker, and the history events it commits are announced on the main thread store', async () => {
    const { service, store } = setup();
    store.upsert({ serial: 'W-1', macs: ['02:00:00:00:00:09'] });
    const heard: HistoryEvent[] = [];
    store.events.on('event', (e: HistoryEvent) => heard.push(e));
    const listen = await service.start();
    expect(service.thread).toBe('worker');
    expect(service.worker()).toBeDefined();
    expect(service.state().state).toBe('running');
    const port = listen.find((l) => l.protocol === 'udp4')!.port;
    if (!isRoot) return console.log('worker.test: port 68 needs root; the reply path is not checked');
    expect(await inform(port)).toBe('127.0.0.1');
    await until(() => heard.some((e) => e.source === 'dhcp' && e.serial === 'W-1'), 'the DHCP event on the main thread');
    const e = heard.find((x) => x.source === 'dhcp')!;
    expect(e).toMatchObject({ serial: 'W-1', type: 'options', data: { inform: true } });
    // Committed by the worker's connection before it was announced: this connection reads it.
    expect(store.history('W-1').map((h) => h.id)).toContain(e.id);
    await until(() => (service.stats().received ?? 0) >= 1, 'counters mirrored from the worker');
  });

  it('stop() ends the worker and frees its sockets', async () => {
    const { service } = setup();
    const listen = await service.start();
    const w = service.worker()!;
    const exited = new Promise<number>((r) => w.once('exit', r));
    await service.stop();
    await exited;
    expect(service.worker()).toBeUndefined();
    expect(service.state().state).toBe('stopped');
    // No SO_REUSEADDR here: the bind fails while any socket still holds the port.
    const port = listen.find((l) => l.protocol === 'udp4')!.port;
    const s = createSocket({ type: 'udp4' });
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind(port, '0.0.0.0', () => resolve());
    });
    s.close();
  });

  it('a worker that dies does not take the process down: readiness says so, and it is restarted', async () => {
    const { service } = setup();
    await service.start();
    const first = service.worker()!;
    first.postMessage({ type: 'crash' });
    await until(() => service.state().state === 'waiting', 'state waiting after the crash');
    expect(service.state().reason).toMatch(/DHCP worker exited \(code 1: .*crash requested\); restarting/);
    await until(() => service.worker() !== undefined && service.worker() !== first && service.state().state === 'running', 'a restarted worker');
    if (!isRoot) return;
    const port = service.state().listen!.find((l) => l.protocol === 'udp4')!.port;
    expect(await inform(port)).toBe('127.0.0.1');
  });

  it('a start that fails in the worker fails start() with the cause, and is not retried as a crash', async () => {
    // Held without SO_REUSEADDR: the worker's bind of the same port fails.
    const holder = createSocket({ type: 'udp4' });
    await new Promise<void>((r) => holder.bind(0, '0.0.0.0', () => r()));
    cleanup.push(() => new Promise<void>((r) => holder.close(() => r())));
    const { service } = setup({ port: holder.address().port });
    await expect(service.start()).rejects.toMatchObject({ code: 'EADDRINUSE' });
    await until(() => service.worker() === undefined, 'the failed worker gone');
    await new Promise((r) => setTimeout(r, 400)); // 8× the restart back-off
    expect(service.worker()).toBeUndefined();
    // As on the main thread: a failed first start leaves the service stopped, not restarting.
    expect(service.state()).toMatchObject({ state: 'stopped' });
    expect(service.state().reason).toBeUndefined();
  });

  it('stays on the main thread when asked to (dhcp.thread = main)', async () => {
    const { service } = setup({ thread: 'main' });
    await service.start();
    expect(service.thread).toBe('main');
    expect(service.worker()).toBeUndefined();
    expect(service.state().state).toBe('running');
  });
});
