// The file pump: positional reads of an open blob into pooled buffers, written to the response
// with backpressure. Memory is bounded for the whole process, not per response (issue 12: RSS
// grew with concurrent readers): every read buffer comes from its listener's BufferBudget (READ_PLAN:
// one for plain HTTP, one for HTTPS, shared by every response of the process); a response waits
// for its first buffer when the budget is spent, and takes a second (to read the next chunk while
// the previous one is written) only if one is free, so no response ever waits while holding one
// and the budget cannot deadlock. Buffers are reused most-recently-released first, which keeps
// the working set small and warm in the CPU cache (the copies from the page cache and into the
// socket are most of the CPU a plain-HTTP response costs: see README "Benchmarks").
import { read as fsRead } from 'node:fs';
import type { ServerResponse } from 'node:http';
import type { ByteRange } from './range.js';

export class BufferBudget {
  private readonly free: Buffer[] = [];
  private readonly waiters: ((b: Buffer) => void)[] = [];
  private allocated = 0;
  /** most buffers in use at once since start */
  peakInUse = 0;
  private inUse = 0;

  constructor(
    readonly chunkSize: number,
    /** buffers that may exist at once (chunkSize × maxBuffers bytes at most) */
    readonly maxBuffers: number,
  ) {}

  /** A buffer, waiting for one when the budget is spent. */
  acquire(): Promise<Buffer> {
    const b = this.tryAcquire();
    if (b) return Promise.resolve(b);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** A buffer if one is free or may still be allocated, else undefined. */
  tryAcquire(): Buffer | undefined {
    let b = this.free.pop();
    if (!b && this.allocated < this.maxBuffers) {
      this.allocated++;
      b = Buffer.allocUnsafeSlow(this.chunkSize);
    }
    if (b) this.peakInUse = Math.max(this.peakInUse, ++this.inUse);
    return b;
  }

  /** buffers handed out and not yet released */
  get inUseCount(): number {
    return this.inUse;
  }

  release(b: Buffer): void {
    const next = this.waiters.shift();
    if (next) return next(b);
    this.inUse--;
    this.free.push(b);
  }
}

const shared = new Map<string, BufferBudget>();
/**
 * Read size and buffer budget per listener, process-wide (both budgets together: 16 MiB of
 * buffers, plus ~82 KiB of TLS ciphertext per HTTPS connection, see TLS_WRITE_SLICE). Measured in
 * the same runs (issue 12, README "Benchmarks"):
 * - Plain HTTP: 1 MiB reads cost 0.67–0.72 s of CPU per GiB against 0.86–0.96 with 256 KiB (a
 *   quarter of the thread-pool hand-offs and socket writes); 8 of them keep 256 readers busy on a
 *   LAN, because a buffer is held only from its read until the kernel took its write.
 * - HTTPS: the same 1 MiB reads, written in TLS_WRITE_SLICE slices. Before the slices, a 1 MiB
 *   read meant a 1 MiB ciphertext copy kept per connection (177 MiB peak at 64 readers), so HTTPS
 *   read 256 KiB; with the slices, 1 MiB reads cost 0.88× (0.85–0.92) the CPU per GiB of 256 KiB
 *   ones at 64 readers for the same peak RSS in a 2-round run, 0.95–0.99× (spreads spanning 1.0)
 *   for 3–9% more peak RSS in a 3-round one.
 */
export const READ_PLAN = {
  http: { chunkSize: 1024 * 1024, budgetBytes: 8 * 1024 * 1024 },
  https: { chunkSize: 1024 * 1024, budgetBytes: 8 * 1024 * 1024 },
} as const;

/** The process-wide budget of one listener kind (plain or TLS) and read size: every image app of that kind shares it. */
export function sharedBudget(listener: string, chunkSize: number, totalBytes: number): BufferBudget {
  // one per listener kind and read size: HTTPS readers, slower to drain, never queue plain ones
  const key = `${listener}/${chunkSize}`;
  let b = shared.get(key);
  if (!b) shared.set(key, (b = new BufferBudget(chunkSize, Math.max(2, Math.floor(totalBytes / chunkSize)))));
  return b;
}

/**
 * Largest single write on a TLS connection. For a write of N bytes Node's TLS layer allocates one
 * ciphertext buffer of about N + 5% (NodeBIO's "TLS allocation hint") and keeps it for the
 * connection's life: 256 KiB writes left ~280 KiB of malloc'd memory per HTTPS connection (18 MiB
 * at 64 readers, heaptrack's largest peak consumer; 1 MiB writes, ~1.1 MiB each), so RSS grew
 * with HTTPS readers whatever our budget. In 64 KiB slices, each after the previous one left, a
 * connection keeps ~82 KiB. The price, measured in the same runs: ~15% more server CPU per GiB
 * over HTTPS (more, smaller writes); 128 KiB slices cost the same and kept 3 MiB more. With 1 MiB
 * reads, 256 KiB slices cost 0.88× the CPU per GiB for 1.14–1.37× the peak RSS at 64–256 readers.
 */
export const TLS_WRITE_SLICE = 64 * 1024;

const gone = () => Object.assign(new Error('client went away'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });

type Slot = 'idle' | 'reading' | 'ready' | 'writing';

/**
 * Streams one span of the file into the response: reads the next chunk while the previous one
 * is written when the budget allows a second buffer, else one chunk at a time. Callbacks, not a
 * promise per read and per write: this runs once per chunk, and every promise, closure and
 * listener it allocated was garbage that V8 kept in memory under load (issue 12).
 *
 * A buffer goes back to the budget when nothing can touch it any more: not while the thread pool
 * reads into it (even if the client left), and not while a write holds it, unless the response
 * closed (its writes were cancelled with the socket).
 */
export async function sendSpan(fd: number, res: ServerResponse, r: ByteRange, budget: BufferBudget, track: (n: number) => void, end: boolean): Promise<void> {
  const first = await budget.acquire();
  return new Promise<void>((resolve, reject) => {
    const chunkSize = budget.chunkSize;
    const slice = (res.socket as { encrypted?: boolean } | null)?.encrypted === true ? TLS_WRITE_SLICE : chunkSize;
    const slots = new Map<Buffer, Slot>([[first, 'idle']]);
    // a span that fits in one chunk needs no second buffer
    if (r.end - r.start + 1 > chunkSize) {
      const second = budget.tryAcquire();
      if (second) slots.set(second, 'idle');
    }
    const ready: { buf: Buffer; n: number }[] = [];
    let pos = r.start;
    let reading = false;
    let writing: { buf: Buffer; n: number; at: number } | undefined;
    let settled = false;

    const release = (b: Buffer) => {
      if (!slots.delete(b)) return;
      budget.release(b);
      if (settled && slots.size === 0) res.off('close', onClose);
    };
    const settle = (err?: Error) => {
      if (settled) return;
      settled = true;
      // what no read or write holds goes back now; the rest when its read or write is over
      for (const [b, slot] of [...slots]) if (slot === 'idle' || slot === 'ready') release(b);
      if (slots.size === 0) res.off('close', onClose);
      if (err) return reject(err);
      if (end) res.end();
      resolve();
    };
    function onClose() {
      settle(gone());
      // the socket is gone and its writes with it; a read in progress still owns its buffer
      for (const [b, slot] of [...slots]) if (slot !== 'reading') release(b);
    }
    const onRead = (buf: Buffer) => (err: Error | null, n: number) => {
      reading = false;
      if (settled) return release(buf);
      if (err) {
        slots.set(buf, 'idle');
        return settle(err);
      }
      if (n === 0) {
        slots.set(buf, 'idle');
        return settle(new Error(`image file shorter than its catalogue size (EOF at ${pos})`));
      }
      pos += n;
      slots.set(buf, 'ready');
      ready.push({ buf, n });
      step();
    };
    const writeSlice = (w: { buf: Buffer; n: number; at: number }) => {
      const len = Math.min(slice, w.n - w.at);
      const part = w.buf.subarray(w.at, w.at + len);
      w.at += len;
      track(len);
      res.write(part, onWritten);
    };
    const onWritten = (err?: Error | null) => {
      const w = writing!;
      if (!settled && !err && w.at < w.n) return writeSlice(w);
      writing = undefined;
      if (settled) return release(w.buf);
      slots.set(w.buf, 'idle');
      if (err) return settle(err);
      step();
    };
    function step(): void {
      if (settled) return;
      if (res.destroyed) return settle(gone());
      if (!reading && pos <= r.end) {
        for (const [b, slot] of slots) {
          if (slot !== 'idle') continue;
          reading = true;
          slots.set(b, 'reading');
          fsRead(fd, b, 0, Math.min(chunkSize, r.end - pos + 1), pos, onRead(b));
          break;
        }
      }
      if (!writing && ready.length > 0) {
        const next = ready.shift()!;
        slots.set(next.buf, 'writing');
        writeSlice((writing = { ...next, at: 0 }));
      }
      if (!reading && !writing && ready.length === 0 && pos > r.end) settle();
    }
    res.on('close', onClose);
    step();
  });
}
