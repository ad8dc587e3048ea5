// The file pump's memory bound (issue 12: RSS grew with concurrent readers). Real sockets: many
// more concurrent readers than the budget has buffers; every byte must still arrive in order, and
// the budget must never hand out more buffers than it holds. Before pump.ts each response took
// two buffers of its own (memory = readers × 2 × chunk), so peakInUse here would reach ~2 × readers.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { request } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { buildImagesApp } from '../../src/images/app.js';
import { BufferBudget, READ_PLAN, sharedBudget } from '../../src/images/pump.js';
import { silentLogger } from '../../src/log.js';
import { addBuffer, makeEnv, pattern, type ImagesEnv } from './helpers.js';

const DATA = pattern(3 * 1024 * 1024 + 5);
const CHUNK = 64 * 1024;

let env: ImagesEnv;
let app: FastifyInstance;
let port = 0;

async function build(budget: BufferBudget): Promise<void> {
  app = await buildImagesApp({ catalogue: env.catalogue, store: env.store, log: silentLogger, config: env.config, scheme: 'http', buffers: budget });
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as { port: number }).port;
}

/** A GET read slowly at first (paused), so the readers truly overlap. */
function slowGet(path: string, range?: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: range ? { range } : {}, timeout: 60_000 }, (res) => {
      const parts: Buffer[] = [];
      res.pause();
      setTimeout(() => res.resume(), 200);
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

beforeEach(async () => {
  env = makeEnv();
  await addBuffer(env, 'os.iso', DATA);
});

afterEach(async () => {
  await app.close();
  env.catalogue.blobs.readers.closeAll();
  env.cleanup();
});

describe('file pump: read buffers bounded for the whole process', () => {
  it('64 concurrent readers through a 6-buffer budget: all bytes exact, never more than 6 buffers', async () => {
    const budget = new BufferBudget(CHUNK, 6);
    await build(budget);
    const jobs = Array.from({ length: 64 }, (_, i) => {
      if (i % 2 === 0) return slowGet('/images/os.iso').then((r) => ({ r, want: DATA }));
      const start = (i * 40_503) % (DATA.length - 300_000);
      return slowGet('/images/os.iso', `bytes=${start}-${start + 299_999}`).then((r) => ({ r, want: DATA.subarray(start, start + 300_000) }));
    });
    for (const { r, want } of await Promise.all(jobs)) {
      expect([200, 206]).toContain(r.status);
      expect(r.body.equals(want)).toBe(true);
    }
    expect(budget.peakInUse).toBeLessThanOrEqual(6);
    // the budget was the limit (readers queued for buffers), not the readers
    expect(budget.peakInUse).toBe(6);
  });

  it('a reader that leaves while queued for a buffer gives nothing back twice and blocks no one', async () => {
    const budget = new BufferBudget(CHUNK, 2);
    await build(budget);
    const aborted = Array.from({ length: 8 }, () => {
      const req = request({ host: '127.0.0.1', port, path: '/images/os.iso' }, (res) => res.destroy());
      req.on('error', () => undefined);
      req.end();
      return req;
    });
    const after = await slowGet('/images/os.iso');
    expect(after.body.equals(DATA)).toBe(true);
    for (const r of aborted) r.destroy();
    for (let i = 0; i < 100 && budget.inUseCount > 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(budget.inUseCount).toBe(0);
    // every buffer handed out came back: two more readers get one each at once
    const b1 = budget.tryAcquire();
    const b2 = budget.tryAcquire();
    expect(b1 && b2).toBeTruthy();
    expect(budget.tryAcquire()).toBeUndefined();
  });

  it('plain and TLS listeners each get their own process-wide budget, even at the same read size', () => {
    // READ_PLAN reads 1 MiB on both since the TLS slices (issue 12); one shared budget would let
    // slow-draining HTTPS readers queue every plain one.
    expect(READ_PLAN.https.chunkSize).toBe(READ_PLAN.http.chunkSize);
    const plain = sharedBudget('http', READ_PLAN.http.chunkSize, READ_PLAN.http.budgetBytes);
    const tls = sharedBudget('https', READ_PLAN.https.chunkSize, READ_PLAN.https.budgetBytes);
    expect(tls).not.toBe(plain);
    expect(sharedBudget('http', READ_PLAN.http.chunkSize, READ_PLAN.http.budgetBytes)).toBe(plain);
    expect(tls.chunkSize).toBe(1024 * 1024);
    const held = Array.from({ length: 8 }, () => tls.tryAcquire());
    expect(held.every(Boolean)).toBe(true);
    expect(tls.tryAcquire()).toBeUndefined();
    // the TLS budget spent, a plain reader still gets a buffer at once
    const b = plain.tryAcquire();
    expect(b).toBeTruthy();
    plain.release(b!);
    for (const h of held) tls.release(h!);
  });
});
