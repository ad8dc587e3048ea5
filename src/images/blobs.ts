// Content-addressed blob storage for images: <imagesDir>/sha256/<64 hex>, written once.
//
// An ingest streams into <imagesDir>/tmp/<random>.part (same filesystem, so the final rename is
// atomic), hashing on the way, with backpressure from the disk; then fsync, compare with the
// declared digest, rename into place, fsync the directory. Any failure (source error, client
// abort, size limit, digest mismatch, ENOSPC) removes the temp file: nothing half-written is ever
// visible under sha256/.
import { createHash, randomBytes } from 'node:crypto';
import { constants, createWriteStream, mkdirSync, readdirSync, statSync, unlinkSync } from 'node:fs';
import { open, rename, unlink, lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ZtpError } from '../errors.js';
import { BlobReaders, type BlobLease, type BlobReadersOptions } from './blob-reader.js';
import { SHA256_HEX } from './paths.js';

export interface IngestResult {
  sha256: string;
  size: number;
  /** false when identical content was already stored (the temp file was dropped) */
  stored: boolean;
}

export interface IngestOptions {
  /** lowercase hex the content must hash to, else IMAGES_DIGEST_MISMATCH */
  expectedSha256?: string | undefined;
  /** bytes; more and the ingest fails with IMAGES_TOO_LARGE */
  maxBytes?: number | undefined;
  signal?: AbortSignal | undefined;
}

/** 1 TiB: bigger than any installer ISO or boot image; a guard against endless streams. */
export const DEFAULT_MAX_IMAGE_BYTES = 1024 ** 4;

const DISK_FULL = new Set(['ENOSPC', 'EDQUOT', 'EFBIG']);

export class BlobStore {
  readonly blobDir: string;
  readonly tmpDir: string;
  /** verified, cached read descriptors (blob-reader.ts) */
  readonly readers: BlobReaders;

  constructor(
    readonly root: string,
    readerOptions: BlobReadersOptions = {},
  ) {
    this.blobDir = join(root, 'sha256');
    this.tmpDir = join(root, 'tmp');
    this.readers = new BlobReaders(root, readerOptions);
  }

  ensureDirs(): void {
    mkdirSync(this.blobDir, { recursive: true, mode: 0o755 });
    mkdirSync(this.tmpDir, { recursive: true, mode: 0o700 });
  }

  /**
   * Opens a blob for serving: inside the store and hashing to its name (verified once per file
   * identity), else IMAGES_CONTENT_DAMAGED; IMAGES_NOT_FOUND when absent. Release the lease.
   */
  openForRead(sha256: string): Promise<BlobLease> {
    // a cached, unchanged blob needs no path (and no string building) per request
    const hit = this.readers.tryLease(sha256);
    return hit ? Promise.resolve(hit) : this.readers.acquire(sha256, this.pathOf(sha256));
  }

  /** Path of a blob; the digest is validated, so no caller can steer this out of blobDir. */
  pathOf(sha256: string): string {
    if (!SHA256_HEX.test(sha256)) throw new ZtpError('IMAGES_BAD_PATH', 'not a sha256 digest', { details: { sha256 } });
    return join(this.blobDir, sha256);
  }

  /** True when the blob exists as a regular file (a symlink planted there does not count). */
  async has(sha256: string): Promise<boolean> {
    try {
      return (await lstat(this.pathOf(sha256))).isFile();
    } catch {
      return false;
    }
  }

  async ingest(source: Readable, options: IngestOptions = {}): Promise<IngestResult> {
    this.ensureDirs();
    const expected = options.expectedSha256?.toLowerCase();
    if (expected !== undefined && !SHA256_HEX.test(expected)) throw new ZtpError('IMAGES_INVALID', 'sha256 must be 64 hex digits', { details: { sha256: options.expectedSha256 } });
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_IMAGE_BYTES;
    const tmp = join(this.tmpDir, `${randomBytes(12).toString('hex')}.part`);
    const hash = createHash('sha256');
    let size = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _enc, done) {
        size += chunk.length;
        if (size > maxBytes) return done(new ZtpError('IMAGES_TOO_LARGE', `image is larger than ${maxBytes} bytes`, { details: { maxBytes } }));
        hash.update(chunk);
        done(null, chunk);
      },
    });
    try {
      // 'wx' is O_CREAT|O_EXCL: the temp name is fresh, and O_EXCL fails on anything already there,
      // a planted symlink included, so we never write through one.
      // flush: the stream fsyncs the file before closing it, so the rename publishes durable bytes.
      const sink = createWriteStream(tmp, {
        flags: 'wx',
        mode: 0o644,
        flush: true,
        highWaterMark: 1024 * 1024,
      });
      await pipeline(source, meter, sink, options.signal ? { signal: options.signal } : {});
      const sha256 = hash.digest('hex');
      if (expected !== undefined && expected !== sha256) {
        throw new ZtpError('IMAGES_DIGEST_MISMATCH', `content hashes to ${sha256}, not the declared ${expected}`, { details: { declared: expected, actual: sha256, size } });
      }
      const target = this.pathOf(sha256);
      const existed = await this.has(sha256);
      // Even when the blob exists, the fresh bytes (just hashed) replace it: re-adding an image
      // repairs a blob damaged on disk. The rename is atomic; readers holding the old file finish.
      await rename(tmp, target);
      await syncDir(this.blobDir);
      this.readers.forget(sha256);
      await this.readers.noteHashed(sha256, target);
      return { sha256, size, stored: !existed };
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw mapFsError(err, 'storing an image');
    }
  }

  async remove(sha256: string): Promise<void> {
    this.readers.forget(sha256);
    await unlink(this.pathOf(sha256)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }

  /** Removes temp files older than `olderThanMs` (left by a crash); returns how many. */
  sweepTemp(olderThanMs: number, now = Date.now()): number {
    let removed = 0;
    let names: string[] = [];
    try {
      names = readdirSync(this.tmpDir);
    } catch {
      return 0;
    }
    for (const name of names) {
      const path = join(this.tmpDir, name);
      try {
        if (now - statSync(path).mtimeMs >= olderThanMs) {
          unlinkSync(path);
          removed++;
        }
      } catch {
        // raced with the ingest that owns it: leave it
      }
    }
    return removed;
  }

  /** Digests present on disk (regular files named by a digest). */
  listDigests(): string[] {
    try {
      return readdirSync(this.blobDir).filter((n) => SHA256_HEX.test(n));
    } catch {
      return [];
    }
  }
}

async function syncDir(dir: string): Promise<void> {
  const h = await open(dir, constants.O_RDONLY);
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

/** ENOSPC and friends become IMAGES_STORAGE_FULL (507); aborts become IMAGES_UPLOAD_ABORTED. */
export function mapFsError(err: unknown, doing: string): unknown {
  if (err instanceof ZtpError) return err;
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code && DISK_FULL.has(code)) return new ZtpError('IMAGES_STORAGE_FULL', `image storage is full (${code}) while ${doing}`, { cause: err, details: { errno: code } });
  if (code === 'ABORT_ERR' || code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ECONNRESET' || (err as Error)?.name === 'AbortError') {
    return new ZtpError('IMAGES_UPLOAD_ABORTED', `upload was aborted while ${doing}`, { cause: err });
  }
  return err;
}
