// The file pump: positional reads of an open blob into pooled buffers, written to the response
// with backpressure. Memory is bounded for the whole process, not per response (issue 12: RSS
// grew with concurrent readers): every read buffer comes from one BufferBudget; a response waits
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

const shared = new Map<number, BufferBudget>();
/** 16 MiB of read buffers for the whole process, whatever the number of readers. */
export const DEFAULT_BUFFER_BYTES = 16 * 1024 * 1024;

/** The process-wide budget for one chunk size (both image listeners share it). */
export function sharedBudget(chunkSize: number, totalBytes = DEFAULT_BUFFER_BYTES): BufferBudget {
  let b = shared.get(chunkSize);
  if (!b) shared.set(chunkSize, (b = new BufferBudget(chunkSize, Math.max(2, Math.floor(totalBytes / chunkSize)))));
  return b;
}

function readAt(fd: number, buf: Buffer, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => fsRead(fd, buf, 0, length, position, (err, n) => (err ? reject(err) : resolve(n))));
}

const gone = () => Object.assign(new Error('client went away'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });

/** res.write resolving once the chunk was handed to the kernel (so its buffer may be reused). */
function writeChunk(res: ServerResponse, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    if (res.destroyed) return reject(gone());
    const onClose = () => reject(gone());
    res.once('close', onClose);
    res.write(chunk, (err) => {
      res.off('close', onClose);
      if (err) reject(err);
      else resolve();
    });
  });
}

/**
 * Streams one span of the file into the response: reads the next chunk while the previous one
 * is written when the budget allows a second buffer, else one chunk at a time.
 */
export async function sendSpan(fd: number, res: ServerResponse, r: ByteRange, budget: BufferBudget, track: (n: number) => void, end: boolean): Promise<void> {
  const chunkSize = budget.chunkSize;
  const held: Buffer[] = [await budget.acquire()];
  const total = r.end - r.start + 1;
  // a span that fits in one chunk needs no second buffer
  if (total > chunkSize) {
    const second = budget.tryAcquire();
    if (second) held.push(second);
  }
  let writing: Promise<void> | undefined;
  let pos = r.start;
  let which = 0;
  try {
    while (pos <= r.end) {
      if (res.destroyed) throw gone();
      const buf = held[which]!;
      which = (which + 1) % held.length;
      // with one buffer, the previous write must finish before it is refilled
      if (held.length === 1 && writing) await writing;
      const n = await readAt(fd, buf, Math.min(chunkSize, r.end - pos + 1), pos);
      if (n === 0) throw new Error(`image file shorter than its catalogue size (EOF at ${pos})`);
      if (writing) await writing;
      writing = writeChunk(res, buf.subarray(0, n));
      // a rejected write is observed by the next await; keep it from being reported unhandled meanwhile
      writing.catch(() => undefined);
      pos += n;
      track(n);
    }
    if (writing) await writing;
  } finally {
    // Only buffers no write still holds go back.
    if (writing) await writing.catch(() => undefined);
    for (const b of held) budget.release(b);
  }
  if (end) res.end();
}
