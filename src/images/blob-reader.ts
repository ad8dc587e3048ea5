// Opening stored blobs for reading, safely and cheaply (issue 11 "Image store", issue 12).
//
// Safety. O_NOFOLLOW guards only the last path component: with <images>/sha256/ (or <images>/)
// replaced by a symlink, open() walks out of the store. Node has no openat(), so after opening we
// ask the kernel which file the descriptor really is (/proc/self/fd/N; realpath + inode match
// where there is no procfs) and refuse anything but <store root as resolved at start>/sha256/<hex>.
// Then the bytes are hashed once per file identity (dev, inode, size, mtime, ctime: ctime cannot
// be set back by a user, so a rewrite that restores mtime is still seen): a blob that does not
// hash to its name is refused until it changes, without hashing it again on every retry.
//
// Cost. A verified blob keeps its descriptor open (shared by every reader, reference-counted,
// closed after `idleMs` unused or when more than `maxOpen` are cached), so a BMC's thousands of
// range reads cost no open/close each; one synchronous fstat per request (no disk access on an
// open descriptor) sees an in-place change, after which the blob is verified again. A descriptor
// closed while idle is reopened without hashing when the file's identity is the one verified.
import { createHash } from 'node:crypto';
import { constants, fstatSync, read as fsRead, type BigIntStats } from 'node:fs';
import { open, readlink, realpath, stat, lstat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { ZtpError } from '../errors.js';

/** A verified blob, open for positional reads; call release() when the response is done. */
export interface BlobLease {
  readonly fd: number;
  readonly size: number;
  release(): void;
}

export type DamageReason = 'outside-store' | 'not-a-file' | 'digest-mismatch';

export interface BlobReadersOptions {
  /** close a cached descriptor unused this long, ms */
  idleMs?: number;
  /** cached descriptors kept at most (in-use ones are never closed) */
  maxOpen?: number;
  /** read size while verifying, bytes */
  hashChunk?: number;
}

interface Cached {
  handle: FileHandle;
  /** the file's identity when verified, compared on every request (sameIdentity) without building a string */
  stat: BigIntStats;
  size: number;
  refs: number;
  lastUsed: number;
  /** set when evicted while in use: close at the last release */
  retired: boolean;
}

function identityOf(st: BigIntStats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

function sameIdentity(a: BigIntStats, b: BigIntStats): boolean {
  return a.ino === b.ino && a.dev === b.dev && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;
}

/** File identities remembered as verified: far more than a lab's catalogue holds, ~200 bytes each. */
const MAX_VERIFIED = 10_000;

export class BlobReaders {
  private readonly open = new Map<string, Cached>();
  /** sha256 → identity of the file that failed verification (refused until it changes) */
  private readonly damaged = new Map<string, string>();
  private readonly verifying = new Map<string, Promise<Cached>>();
  /**
   * sha256 → identity of the file last found to hash to it (verified here, or hashed by an ingest
   * of this process while writing it). A descriptor closed after idleMs reopens the same file
   * without hashing it again: before, a BMC pausing longer than that between two reads made the
   * next one hash the whole ISO again on the event loop (issue 12: ~0.6–0.8 s of CPU per GiB, found
   * as HTTPS streams costing twice their usual CPU after a pause). Bounded; forget() drops one.
   */
  private readonly verified = new Map<string, string>();
  private anchor: Promise<string> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly idleMs: number;
  private readonly maxOpen: number;
  private readonly hashChunk: number;
  /** blobs hashed since start (each verification reads the whole file) */
  verifications = 0;

  constructor(
    private readonly root: string,
    options: BlobReadersOptions = {},
  ) {
    this.idleMs = options.idleMs ?? 30_000;
    this.maxOpen = options.maxOpen ?? 64;
    this.hashChunk = options.hashChunk ?? 1024 * 1024;
  }

  /**
   * The real path blobs must have: <realpath(root)>/sha256, fixed the first time it is asked
   * (the service asks at start). A blob directory that is itself a symlink is never trusted.
   */
  blobDirReal(): Promise<string> {
    this.anchor ??= (async () => {
      const dir = join(this.root, 'sha256');
      const st = await lstat(dir);
      if (!st.isDirectory()) throw damage('outside-store', `${dir} is not a directory of the store (a symlink?)`, { path: dir });
      return join(await realpath(this.root), 'sha256');
    })();
    // a failed anchor is retried next time (the directory may be repaired)
    this.anchor.catch(() => (this.anchor = undefined));
    return this.anchor;
  }

  /**
   * Opens the blob `sha256` (path `path`) for reading: inside the store, a regular file, hashing
   * to its name. Throws IMAGES_NOT_FOUND when absent, IMAGES_CONTENT_DAMAGED (details.reason,
   * details.firstSeen) when refused.
   */
  async acquire(sha256: string, path: string): Promise<BlobLease> {
    for (;;) {
      const hit = this.tryLease(sha256);
      if (hit) return hit;
      let pending = this.verifying.get(sha256);
      if (!pending) {
        pending = this.openAndVerify(sha256, path).finally(() => this.verifying.delete(sha256));
        this.verifying.set(sha256, pending);
      }
      const c = await pending;
      // dropped (forget, eviction) between verification and now: its descriptor may be closed
      if (c.retired) continue;
      const lease = this.lease(c);
      // evict only now that this blob is held, so it cannot be the one evicted
      this.trim();
      return lease;
    }
  }

  /**
   * The blob if its descriptor is cached and the file unchanged (one fstat, no disk access),
   * else undefined (then acquire() opens and verifies it). The per-request path of a BMC's reads.
   */
  tryLease(sha256: string): BlobLease | undefined {
    const cached = this.open.get(sha256);
    if (!cached || cached.retired) return undefined;
    let st: BigIntStats;
    try {
      st = fstatSync(cached.handle.fd, { bigint: true });
    } catch {
      // closed under us: the caller opens it afresh
      this.retire(sha256, cached);
      return undefined;
    }
    if (sameIdentity(st, cached.stat)) return this.lease(cached);
    this.retire(sha256, cached);
    return undefined;
  }

  /**
   * Records that the file now at `path` was hashed to `sha256` by this process (an ingest hashed
   * every byte it wrote), so its first serve needs no second pass over it. Only this file
   * identity is trusted: any later change to it is hashed again.
   */
  async noteHashed(sha256: string, path: string): Promise<void> {
    try {
      this.trust(sha256, identityOf(await lstat(path, { bigint: true })));
    } catch {
      // gone already: nothing to trust
    }
  }

  /** Drops a blob from the cache (removed or replaced); open leases keep reading until released. */
  forget(sha256: string): void {
    const c = this.open.get(sha256);
    if (c) this.retire(sha256, c);
    this.damaged.delete(sha256);
    this.verified.delete(sha256);
  }

  /** Closes every cached descriptor not in use; the rest close at their last release. */
  closeAll(): void {
    for (const [sha, c] of [...this.open]) this.retire(sha, c);
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Descriptors currently cached (for tests and metrics). */
  get openCount(): number {
    return this.open.size;
  }

  private lease(c: Cached): BlobLease {
    c.refs++;
    c.lastUsed = Date.now();
    let released = false;
    return {
      fd: c.handle.fd,
      size: c.size,
      release: () => {
        if (released) return;
        released = true;
        c.refs--;
        c.lastUsed = Date.now();
        if (c.retired && c.refs === 0) void c.handle.close().catch(() => undefined);
        else if (this.open.size > this.maxOpen) this.trim();
      },
    };
  }

  private retire(sha256: string, c: Cached): void {
    if (this.open.get(sha256) === c) this.open.delete(sha256);
    if (c.retired) return;
    c.retired = true;
    if (c.refs === 0) void c.handle.close().catch(() => undefined);
  }

  private async openAndVerify(sha256: string, path: string): Promise<Cached> {
    const anchor = await this.blobDirReal();
    let handle: FileHandle;
    try {
      // O_NOFOLLOW refuses a symlink as the last component; the real-path check below covers the rest.
      handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new ZtpError('IMAGES_NOT_FOUND', 'image content is missing from the store', { cause: err, details: { sha256 } });
      if (code === 'ELOOP') throw damage('not-a-file', 'the blob is a symlink', { sha256 }, this.firstSeen(sha256, 'symlink'));
      throw err;
    }
    let keep = false;
    try {
      const st = await handle.stat({ bigint: true });
      const identity = identityOf(st);
      if (!st.isFile()) throw damage('not-a-file', 'the blob is not a regular file', { sha256 }, this.firstSeen(sha256, identity));
      const real = await realPathOfOpen(handle, path, st);
      if (real !== join(anchor, sha256)) throw damage('outside-store', 'the blob resolves outside the image store', { sha256, resolved: real }, this.firstSeen(sha256, identity));
      if (this.damaged.get(sha256) === identity) throw damage('digest-mismatch', 'stored content does not hash to its sha256', { sha256 }, false);
      const trusted = this.verified.get(sha256) === identity;
      if (!trusted) this.verifications++;
      const actual = trusted ? sha256 : await hashOpen(handle, Number(st.size), this.hashChunk);
      // The file may have changed while we read it: hash what is there now, next time.
      const after = trusted ? identity : identityOf(await handle.stat({ bigint: true }));
      if (actual !== sha256 || after !== identity) {
        this.verified.delete(sha256);
        if (after !== identity) throw damage('digest-mismatch', 'the blob changed while it was being verified', { sha256 }, false);
        throw damage('digest-mismatch', `stored content hashes to ${actual}, not its name`, { sha256, actual }, this.firstSeen(sha256, identity));
      }
      this.damaged.delete(sha256);
      this.trust(sha256, identity);
      const c: Cached = { handle, stat: st, size: Number(st.size), refs: 0, lastUsed: Date.now(), retired: false };
      const old = this.open.get(sha256);
      if (old) this.retire(sha256, old);
      this.open.set(sha256, c);
      keep = true;
      this.startSweeper();
      return c;
    } finally {
      if (!keep) await handle.close().catch(() => undefined);
    }
  }

  /** Remembers that the file with `identity` hashes to `sha256` (most recent last; oldest dropped past the bound). */
  private trust(sha256: string, identity: string): void {
    this.verified.delete(sha256);
    this.verified.set(sha256, identity);
    if (this.verified.size > MAX_VERIFIED) this.verified.delete(this.verified.keys().next().value!);
  }

  /** true the first time a (blob, file identity) is refused, so logs and history say it once */
  private firstSeen(sha256: string, identity: string): boolean {
    if (this.damaged.get(sha256) === identity) return false;
    this.damaged.set(sha256, identity);
    return true;
  }

  private trim(): void {
    if (this.open.size <= this.maxOpen) return;
    const idle = [...this.open].filter(([, c]) => c.refs === 0).sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    for (const [sha, c] of idle) {
      if (this.open.size <= this.maxOpen) break;
      this.retire(sha, c);
    }
  }

  private startSweeper(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      const now = Date.now();
      for (const [sha, c] of [...this.open]) if (c.refs === 0 && now - c.lastUsed >= this.idleMs) this.retire(sha, c);
      if (this.open.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    }, Math.max(1000, Math.floor(this.idleMs / 2)));
    this.timer.unref();
  }
}

function damage(reason: DamageReason, message: string, details: Record<string, unknown>, firstSeen = true): ZtpError {
  return new ZtpError('IMAGES_CONTENT_DAMAGED', message, { details: { reason, firstSeen, ...details } });
}

/** The path of the file an open descriptor really is. */
async function realPathOfOpen(handle: FileHandle, path: string, st: BigIntStats): Promise<string> {
  try {
    return await readlink(`/proc/self/fd/${handle.fd}`);
  } catch {
    // No procfs: resolve the path and make sure it names the inode we opened.
    const real = await realpath(path);
    const again = await stat(real, { bigint: true });
    return again.dev === st.dev && again.ino === st.ino ? real : `${real} (another file)`;
  }
}

async function hashOpen(handle: FileHandle, size: number, chunk: number): Promise<string> {
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafeSlow(Math.min(chunk, Math.max(size, 1)));
  let pos = 0;
  while (pos < size) {
    const n = await new Promise<number>((resolve, reject) => fsRead(handle.fd, buf, 0, Math.min(buf.length, size - pos), pos, (err, got) => (err ? reject(err) : resolve(got))));
    if (n === 0) break;
    hash.update(buf.subarray(0, n));
    pos += n;
  }
  return hash.digest('hex');
}
