// sendSpan's buffer ownership (issue 12: the pump runs on callbacks, so who may give a buffer back
// is explicit). A fake response holds writes as long as the test wants, and closes at chosen
// moments: a buffer the thread pool is still reading into must not return to the budget when the
// client leaves (another response would get it while the read still fills it); everything else
// returns at once, exactly once.
import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import { mkdtempSync, openSync, closeSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BufferBudget, sendSpan, TLS_WRITE_SLICE } from '../../src/images/pump.js';

const CHUNK = 64 * 1024;
const dir = mkdtempSync(join(tmpdir(), 'ztp-pump-span-'));
const DATA = Buffer.alloc(CHUNK * 8 + 123);
for (let i = 0; i < DATA.length; i++) DATA[i] = (i * 7 + (i >> 9)) & 0xff;
const file = join(dir, 'blob');
writeFileSync(file, DATA);
const fd = openSync(file, 'r');
afterAll(() => {
  closeSync(fd);
  rmSync(dir, { recursive: true, force: true });
});

/** A ServerResponse as far as sendSpan uses it: write(chunk, cb), end(), 'close', destroyed. */
class FakeResponse extends EventEmitter {
  destroyed = false;
  socket: { encrypted?: boolean } | null = null;
  ended = false;
  readonly body: Buffer[] = [];
  /** write callbacks not yet called */
  readonly pending: ((err?: Error | null) => void)[] = [];
  constructor(private readonly onWrite: (res: FakeResponse) => void = (res) => res.pending.shift()?.()) {
    super();
  }
  write(chunk: Buffer, cb: (err?: Error | null) => void): boolean {
    this.body.push(Buffer.from(chunk));
    this.pending.push(cb);
    this.onWrite(this);
    return true;
  }
  end(): void {
    this.ended = true;
  }
  close(): void {
    this.destroyed = true;
    this.emit('close');
  }
}

const asRes = (f: FakeResponse) => f as unknown as ServerResponse;
const until = async (cond: () => boolean) => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
};

describe('sendSpan: who gives a buffer back', () => {
  it('sends the span exactly, ends the response, and returns both buffers', async () => {
    const budget = new BufferBudget(CHUNK, 2);
    const res = new FakeResponse((r) => setImmediate(() => r.pending.shift()?.()));
    let tracked = 0;
    await sendSpan(fd, asRes(res), { start: 100, end: DATA.length - 1 }, budget, (n) => (tracked += n), true);
    expect(Buffer.concat(res.body).equals(DATA.subarray(100))).toBe(true);
    expect(tracked).toBe(DATA.length - 100);
    expect(res.ended).toBe(true);
    expect(budget.inUseCount).toBe(0);
    expect(budget.peakInUse).toBe(2);
    expect(res.listenerCount('close')).toBe(0);
  });

  it('over TLS, writes go out in slices of at most TLS_WRITE_SLICE, one after another, and the bytes are exact', async () => {
    const chunk = 4 * TLS_WRITE_SLICE;
    const big = new BufferBudget(chunk, 2);
    let inFlight = 0;
    let most = 0;
    const res = new FakeResponse((r) => {
      most = Math.max(most, ++inFlight);
      const cb = r.pending.shift()!;
      setImmediate(() => {
        inFlight--;
        cb();
      });
    });
    res.socket = { encrypted: true };
    await sendSpan(fd, asRes(res), { start: 7, end: DATA.length - 1 }, big, () => undefined, true);
    expect(Buffer.concat(res.body).equals(DATA.subarray(7))).toBe(true);
    expect(Math.max(...res.body.map((b) => b.length))).toBe(TLS_WRITE_SLICE);
    expect(most).toBe(1);
    expect(big.inUseCount).toBe(0);
    // plain HTTP: one write per chunk
    const plain = new FakeResponse();
    await sendSpan(fd, asRes(plain), { start: 0, end: chunk - 1 }, big, () => undefined, true);
    expect(plain.body.map((b) => b.length)).toEqual([chunk]);
  });

  it('client leaves while a write is held and the next read is in flight: the read keeps its buffer until it is done', async () => {
    const budget = new BufferBudget(CHUNK, 2);
    let inUseAtClose = -1;
    // the first write is never called back: the client leaves right when it is issued
    const res = new FakeResponse((r) => {
      if (r.body.length !== 1) return;
      r.close();
      inUseAtClose = budget.inUseCount;
    });
    const sent = sendSpan(fd, asRes(res), { start: 0, end: DATA.length - 1 }, budget, () => undefined, true);
    await expect(sent).rejects.toMatchObject({ code: 'ERR_STREAM_PREMATURE_CLOSE' });
    // the written buffer came back at once; the one being read into did not
    expect(inUseAtClose).toBe(1);
    await until(() => budget.inUseCount === 0);
    expect(budget.inUseCount).toBe(0);
    // the held write is finally called back (with an error, as a destroyed socket does): nothing is given back twice
    res.pending.shift()?.(new Error('socket destroyed'));
    expect(budget.inUseCount).toBe(0);
    const a = budget.tryAcquire();
    const b = budget.tryAcquire();
    expect(a && b && a !== b).toBeTruthy();
    expect(budget.tryAcquire()).toBeUndefined();
    expect(res.ended).toBe(false);
  });

  it('a write that fails rejects the span and returns every buffer once its read is over', async () => {
    const budget = new BufferBudget(CHUNK, 2);
    const res = new FakeResponse((r) => {
      const cb = r.pending.shift()!;
      setImmediate(() => cb(r.body.length === 2 ? Object.assign(new Error('broken pipe'), { code: 'EPIPE' }) : null));
    });
    await expect(sendSpan(fd, asRes(res), { start: 0, end: DATA.length - 1 }, budget, () => undefined, true)).rejects.toMatchObject({ code: 'EPIPE' });
    await until(() => budget.inUseCount === 0);
    expect(budget.inUseCount).toBe(0);
    expect(res.ended).toBe(false);
  });

  it('a span waiting for a buffer sends nothing when its client left meanwhile, and holds nothing after', async () => {
    const budget = new BufferBudget(CHUNK, 1);
    const held = budget.tryAcquire()!;
    const res = new FakeResponse();
    const sent = sendSpan(fd, asRes(res), { start: 0, end: 1000 }, budget, () => undefined, true);
    res.close();
    budget.release(held);
    await expect(sent).rejects.toMatchObject({ code: 'ERR_STREAM_PREMATURE_CLOSE' });
    expect(res.body).toHaveLength(0);
    expect(budget.inUseCount).toBe(0);
  });
});
