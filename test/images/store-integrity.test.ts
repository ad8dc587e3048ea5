// Issue 11, "Image store": the server must never serve bytes from outside the content-addressed
// store, nor bytes that do not hash to the blob's name. Real sockets (the app listening on port
// 0, fetched over loopback); each case failed before blob-reader.ts (the old open() with
// O_NOFOLLOW followed a symlinked sha256/ or images/ directory and served whatever it found).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { closeSync, copyFileSync, mkdirSync, openSync, readSync, renameSync, statSync, symlinkSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { buildImagesApp } from '../../src/images/app.js';
import { BlobReaders } from '../../src/images/blob-reader.js';
import { DownloadRecorder } from '../../src/images/recorder.js';
import { createLogger } from '../../src/log.js';
import { addBuffer, makeEnv, pattern, sha256, type ImagesEnv } from './helpers.js';

const DATA = pattern(256 * 1024 + 17);
const SECRET = Buffer.from('ADMIN-TOKEN-0123456789abcdef-do-not-serve\n');

let env: ImagesEnv;
let app: FastifyInstance;
let base = '';
let lines: Record<string, unknown>[];

async function start(): Promise<void> {
  lines = [];
  const log = createLogger('info', { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  const recorder = new DownloadRecorder(env.store, log, { idleMs: 20 });
  app = await buildImagesApp({ catalogue: env.catalogue, store: env.store, recorder, log, config: env.config, scheme: 'http' });
  // where blobs must live is fixed at start, as the service does
  await env.catalogue.blobs.readers.blobDirReal();
  await app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
}

async function get(path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Buffer }> {
  const res = await fetch(`${base}${path}`, { headers, signal: AbortSignal.timeout(30_000) });
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
}

/** A directory outside the store holding a file named like the blob. */
function decoyDir(name: string, content: Buffer): string {
  const dir = join(env.dir, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, sha256(DATA)), content);
  return dir;
}

/** The admin token padded to the image's size, so no size check can catch it. */
const secretSized = () => Buffer.concat([SECRET, Buffer.alloc(DATA.length - SECRET.length, 0x20)]);

beforeEach(async () => {
  env = makeEnv();
  await addBuffer(env, 'os.iso', DATA);
  env.store.upsert({ serial: 'SN-STORE', macs: ['02:00:00:00:00:aa'] });
  await start();
});

afterEach(async () => {
  await app.close();
  env.catalogue.blobs.readers.closeAll();
  env.cleanup();
});

describe('image store integrity (issue 11)', () => {
  it('serves a stored image (control: the setup works)', async () => {
    const r = await get('/images/os.iso');
    expect(r.status).toBe(200);
    expect(r.body.equals(DATA)).toBe(true);
  });

  it('sha256/ replaced by a symlink to a directory holding the admin token: refused, never served', async () => {
    const blobDir = env.catalogue.blobs.blobDir;
    renameSync(blobDir, `${blobDir}.real`);
    symlinkSync(decoyDir('attacker', secretSized()), blobDir);
    const r = await get('/by-mac/02:00:00:00:00:aa/os.iso');
    expect(r.status).toBe(500);
    expect(r.body.includes(SECRET)).toBe(false);
    expect(JSON.parse(r.body.toString()).error.code).toBe('IMAGES_CONTENT_DAMAGED');
    const line = lines.find((l) => l.msg?.toString().startsWith('image server: refused to serve a damaged blob'));
    expect(line).toMatchObject({ level: 50, image: 'os.iso', reason: 'outside-store', serial: 'SN-STORE' });
    expect(env.store.history('SN-STORE').filter((e) => e.type === 'integrity-error')).toHaveLength(1);
  });

  it('sha256/ symlinked to an exact copy elsewhere: refused by the path check alone (the digest would match)', async () => {
    const blobDir = env.catalogue.blobs.blobDir;
    renameSync(blobDir, `${blobDir}.real`);
    symlinkSync(decoyDir('copy', DATA), blobDir);
    const r = await get('/images/os.iso');
    expect(r.status).toBe(500);
    expect(lines.some((l) => l.reason === 'outside-store')).toBe(true);
  });

  it('the store root images/ replaced by a symlink after start: refused', async () => {
    const root = env.catalogue.imagesDir;
    const elsewhere = join(env.dir, 'elsewhere');
    mkdirSync(join(elsewhere, 'sha256'), { recursive: true });
    writeFileSync(join(elsewhere, 'sha256', sha256(DATA)), secretSized());
    renameSync(root, `${root}.real`);
    symlinkSync(elsewhere, root);
    const r = await get('/images/os.iso');
    expect(r.status).toBe(500);
    expect(r.body.includes(SECRET)).toBe(false);
  });

  it('a blob that is itself a symlink is refused (O_NOFOLLOW, kept)', async () => {
    const path = env.catalogue.pathOf({ sha256: sha256(DATA) });
    copyFileSync(path, join(env.dir, 'moved'));
    renameSync(path, `${path}.gone`);
    symlinkSync(join(env.dir, 'moved'), path);
    expect((await get('/images/os.iso')).status).toBe(500);
  });

  it('a blob altered in place (same size) is refused once verified content changes; re-adding the image repairs it', async () => {
    expect((await get('/images/os.iso', { range: 'bytes=0-9' })).status).toBe(206);
    const path = env.catalogue.pathOf({ sha256: sha256(DATA) });
    const { atime, mtime } = statSync(path);
    const fd = openSync(path, 'r+');
    writeSync(fd, Buffer.from([DATA[1000]! ^ 0xff]), 0, 1, 1000);
    closeSync(fd);
    // put mtime back: ctime still moves, so the change is seen
    utimesSync(path, atime, mtime);
    const bad = await get('/by-mac/02:00:00:00:00:aa/os.iso', { range: 'bytes=990-1009' });
    expect(bad.status).toBe(500);
    expect(JSON.parse(bad.body.toString()).error.code).toBe('IMAGES_CONTENT_DAMAGED');
    // refused again without a second error line or history row (no flood from a retrying BMC)
    expect((await get('/by-mac/02:00:00:00:00:aa/os.iso')).status).toBe(500);
    expect(lines.filter((l) => l.reason === 'digest-mismatch' && l.level === 50)).toHaveLength(1);
    expect(lines.find((l) => l.reason === 'digest-mismatch')).toMatchObject({ actual: expect.stringMatching(/^[0-9a-f]{64}$/), sha256: sha256(DATA) });
    const events = env.store.history('SN-STORE').filter((e) => e.type === 'integrity-error');
    expect(events).toHaveLength(1);
    expect(events[0]!.data).toMatchObject({ image: 'os.iso', reason: 'digest-mismatch' });
    // the operator re-adds the same image: the fresh bytes replace the damaged blob
    const again = await env.catalogue.add(Readable.from([DATA]), { name: 'os.iso' });
    expect(again.storedNewContent).toBe(false);
    const fixed = await get('/images/os.iso');
    expect(fixed.status).toBe(200);
    expect(fixed.body.equals(DATA)).toBe(true);
  });

  it('an image just added is served without hashing it again; a change after the add is still caught', async () => {
    const readers = env.catalogue.blobs.readers;
    const before = readers.verifications;
    expect((await get('/images/os.iso')).body.equals(DATA)).toBe(true);
    expect(readers.verifications - before).toBe(0);
    readers.closeAll();
    const path = env.catalogue.pathOf({ sha256: sha256(DATA) });
    const fd = openSync(path, 'r+');
    writeSync(fd, Buffer.from('X'), 0, 1, 0);
    closeSync(fd);
    expect((await get('/images/os.iso')).status).toBe(500);
    expect(readers.verifications - before).toBe(1);
  });

  it('a blob this process did not write (as after a restart) is hashed once, not per request, and its descriptor is reused', async () => {
    const readers = env.catalogue.blobs.readers;
    readers.forget(sha256(DATA));
    const before = readers.verifications;
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => get('/images/os.iso', { range: `bytes=${i * 100}-${i * 100 + 99}` })));
    for (const [i, r] of results.entries()) expect(r.body.equals(DATA.subarray(i * 100, i * 100 + 100))).toBe(true);
    expect(readers.verifications - before).toBe(1);
    expect(readers.openCount).toBe(1);
  });
});

describe('verified descriptor cache', () => {
  it('with more blobs in use than maxOpen, none is closed under its reader (eviction waits for the lease)', async () => {
    const root = join(env.dir, 'cache-store');
    mkdirSync(join(root, 'sha256'), { recursive: true });
    const blobs = [pattern(70_000, 1), pattern(90_000, 2), pattern(50_000, 3)];
    for (const b of blobs) writeFileSync(join(root, 'sha256', sha256(b)), b);
    const readers = new BlobReaders(root, { maxOpen: 1 });
    try {
      const leases = await Promise.all(blobs.map((b) => readers.acquire(sha256(b), join(root, 'sha256', sha256(b)))));
      for (const [i, lease] of leases.entries()) {
        const got = Buffer.alloc(lease.size);
        expect(readSync(lease.fd, got, 0, lease.size, 0)).toBe(lease.size);
        expect(got.equals(blobs[i]!)).toBe(true);
      }
      for (const l of leases) l.release();
      // released and over the cap: trimmed back
      expect(readers.openCount).toBe(1);
    } finally {
      readers.closeAll();
    }
  });

  it('a descriptor closed after idleMs reopens the same file without hashing it again; a change made while it was closed is still hashed and refused', async () => {
    // Issue 12: the identity verified used to live only as long as the open descriptor, so a BMC
    // pausing longer than idleMs between two reads made the next one hash the whole ISO again.
    const root = join(env.dir, 'idle-store');
    mkdirSync(join(root, 'sha256'), { recursive: true });
    const blob = pattern(300_000, 7);
    const path = join(root, 'sha256', sha256(blob));
    writeFileSync(path, blob);
    const readers = new BlobReaders(root, { idleMs: 50 });
    try {
      const read = async () => {
        const lease = await readers.acquire(sha256(blob), path);
        try {
          const got = Buffer.alloc(lease.size);
          readSync(lease.fd, got, 0, lease.size, 0);
          return got;
        } finally {
          lease.release();
        }
      };
      expect((await read()).equals(blob)).toBe(true);
      expect(readers.verifications).toBe(1);
      // the idle sweep (every max(1 s, idleMs / 2)) closes the unused descriptor
      for (let i = 0; i < 60 && readers.openCount > 0; i++) await new Promise((r) => setTimeout(r, 50));
      expect(readers.openCount).toBe(0);
      expect((await read()).equals(blob)).toBe(true);
      expect(readers.verifications).toBe(1);
      // closed again, then changed in place: the new identity is hashed, and refused
      readers.closeAll();
      const fd = openSync(path, 'r+');
      writeSync(fd, Buffer.from('X'), 0, 1, 0);
      closeSync(fd);
      await expect(readers.acquire(sha256(blob), path)).rejects.toMatchObject({ code: 'IMAGES_CONTENT_DAMAGED', details: { reason: 'digest-mismatch' } });
      expect(readers.verifications).toBe(2);
      // put back: the restored bytes (a new ctime, so a new identity) are hashed and served
      writeFileSync(path, blob);
      expect((await read()).equals(blob)).toBe(true);
      expect(readers.verifications).toBe(3);
    } finally {
      readers.closeAll();
    }
  });
});
