// Catalogue and upload API: dedup, idempotence, digest checks, references, aborted uploads,
// disk full (a 1 MiB tmpfs), URLs for both audiences.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import { validateConfig } from '../../src/config.js';
import { imagesApiRoutes } from '../../src/images/api.js';
import { ImageCatalogue } from '../../src/images/catalogue.js';
import { imageUrl } from '../../src/images/urls.js';
import { silentLogger } from '../../src/log.js';
import { isRoot } from '../helpers/shared.js';
import { addBuffer, makeEnv, pattern, sha256, type ImagesEnv } from './helpers.js';

let env: ImagesEnv;
beforeEach(() => {
  env = makeEnv();
});
afterEach(() => env.cleanup());

const blobs = () => readdirSync(join(env.dir, 'images', 'sha256'));
const temps = () => (existsSync(join(env.dir, 'images', 'tmp')) ? readdirSync(join(env.dir, 'images', 'tmp')) : []);

describe('ImageCatalogue', () => {
  it('stores content once under its digest; same name+content twice is unchanged', async () => {
    const data = pattern(5000);
    const a = await addBuffer(env, 'a.iso', data, { osName: 'os', osVersion: '1' });
    expect(a.outcome).toBe('created');
    expect(a.entry).toMatchObject({ name: 'a.iso', sha256: sha256(data), size: 5000, osName: 'os', osVersion: '1' });
    expect((await addBuffer(env, 'a.iso', data)).outcome).toBe('unchanged');
    const b = await addBuffer(env, 'b.iso', data);
    expect(b.storedNewContent).toBe(false);
    expect(blobs()).toEqual([sha256(data)]);
    expect(env.catalogue.get(sha256(data).toUpperCase())?.name).toBe('a.iso');
    expect(env.catalogue.list().map((e) => e.name)).toEqual(['a.iso', 'b.iso']);
  });

  it('a name holding other content is refused unless replace; metadata changes are updates', async () => {
    await addBuffer(env, 'a.iso', pattern(100));
    await expect(addBuffer(env, 'a.iso', pattern(100, 1))).rejects.toMatchObject({ code: 'IMAGES_NAME_TAKEN' });
    expect(temps()).toEqual([]);
    const r = await addBuffer(env, 'a.iso', pattern(100, 1), { replace: true });
    expect(r.outcome).toBe('updated');
    expect(r.entry.sha256).toBe(sha256(pattern(100, 1)));
    expect((await addBuffer(env, 'a.iso', pattern(100, 1), { osVersion: '2' })).outcome).toBe('updated');
  });

  it('a declared sha256 that does not match is rejected and leaves nothing', async () => {
    await expect(addBuffer(env, 'x.img', pattern(100), { sha256: 'a'.repeat(64) })).rejects.toMatchObject({ code: 'IMAGES_DIGEST_MISMATCH', status: 422 });
    expect(env.catalogue.list()).toEqual([]);
    expect(blobs()).toEqual([]);
    expect(temps()).toEqual([]);
    const ok = await addBuffer(env, 'x.img', pattern(100), { sha256: sha256(pattern(100)).toUpperCase() });
    expect(ok.outcome).toBe('created');
  });

  it('a source that fails mid-stream leaves no entry and no temp file', async () => {
    const src = new PassThrough();
    const p = env.catalogue.add(src, { name: 'broken.iso' });
    src.write(pattern(64 * 1024));
    setTimeout(() => src.destroy(Object.assign(new Error('socket closed'), { code: 'ECONNRESET' })), 20);
    await expect(p).rejects.toMatchObject({ code: 'IMAGES_UPLOAD_ABORTED' });
    expect(env.catalogue.get('broken.iso')).toBeUndefined();
    expect(temps()).toEqual([]);
  });

  it('bad names are refused before reading anything', async () => {
    for (const name of ['../x', '.x', 'a/b', 'a'.repeat(200)]) await expect(addBuffer(env, name, pattern(1))).rejects.toMatchObject({ code: 'IMAGES_INVALID' });
  });

  it('remove refuses while a device references the image (by name or digest), unless forced', async () => {
    const { entry } = await addBuffer(env, 'os.iso', pattern(100));
    env.store.upsert({ serial: 'SN1', bootImage: 'os.iso' });
    await expect(env.catalogue.remove('os.iso')).rejects.toMatchObject({ code: 'IMAGES_IN_USE', status: 409 });
    env.store.upsert({ serial: 'SN1', bootImage: entry.sha256 });
    await expect(env.catalogue.remove('os.iso')).rejects.toMatchObject({ code: 'IMAGES_IN_USE' });
    const r = await env.catalogue.remove('os.iso', { force: true });
    expect(r).toEqual({ removed: true, contentDeleted: true, referencedBy: ['SN1'] });
    expect(blobs()).toEqual([]);
    expect((await env.catalogue.remove('os.iso')).removed).toBe(false);
  });

  it('content shared by two names survives removing one', async () => {
    await addBuffer(env, 'a', pattern(10));
    await addBuffer(env, 'b', pattern(10));
    expect((await env.catalogue.remove('a')).contentDeleted).toBe(false);
    expect(blobs()).toHaveLength(1);
    expect((await env.catalogue.remove('b')).contentDeleted).toBe(true);
  });

  it('addFile streams a local file; sweep drops stale temp files', async () => {
    const path = join(env.dir, 'local.iso');
    execFileSync('sh', ['-c', `head -c 300000 /dev/urandom > ${path}`]);
    const r = await env.catalogue.addFile(path, { name: 'local.iso' });
    expect(r.entry.source).toBe(path);
    mkdirSync(join(env.dir, 'images', 'tmp'), { recursive: true });
    execFileSync('sh', ['-c', `touch -d '2 hours ago' ${join(env.dir, 'images', 'tmp', 'old.part')}`]);
    expect(env.catalogue.sweep()).toBe(1);
  });
});

describe('imageUrl', () => {
  const entry = { name: 'os.iso', sha256: 'c'.repeat(64) };
  it('defaults: https on tlsPort for BMCs (OpenBMC), http on port for devices', () => {
    const config = validateConfig({});
    expect(imageUrl(config, 'ztp.lab', entry, 'bmc')).toBe('https://ztp.lab:8444/images/os.iso');
    expect(imageUrl(config, 'ztp.lab', entry, 'device')).toBe('http://ztp.lab:8080/images/os.iso');
    expect(imageUrl(config, 'ztp.lab', { ...entry, requireClientCert: true }, 'device')).toBe('https://ztp.lab:8444/images/os.iso');
    expect(imageUrl(config, 'fd00::1', entry, 'device', 'AA-BB-CC-DD-EE-FF')).toBe('http://[fd00::1]:8080/by-mac/aa:bb:cc:dd:ee:ff/os.iso');
    expect(imageUrl(config, 'ztp.lab', entry, 'bmc', undefined, 'sha256')).toBe(`https://ztp.lab:8444/sha256/${'c'.repeat(64)}`);
  });
  it('configured base URLs win (ZTP_IMAGES_BMC_URL / ZTP_IMAGES_DEVICE_URL)', () => {
    const config = validateConfig({ images: { bmcUrl: 'https://10.1.1.1:9443/', deviceUrl: 'http://dpu-net:81' } });
    expect(imageUrl(config, 'ztp.lab', entry, 'bmc')).toBe('https://10.1.1.1:9443/images/os.iso');
    expect(imageUrl(config, 'ztp.lab', entry, 'device', 'aabbccddeeff')).toBe('http://dpu-net:81/by-mac/aa:bb:cc:dd:ee:ff/os.iso');
  });
});

describe('upload API', () => {
  let app: FastifyInstance;
  beforeEach(async () => {
    app = Fastify({ bodyLimit: 1024 });
    await app.register(imagesApiRoutes, { prefix: '/api/v1', catalogue: env.catalogue, store: env.store, log: silentLogger, config: env.config, publicHost: 'ztp.lab' });
  });
  afterEach(async () => app.close());

  const upload = (query: string, payload: Buffer | string, type = 'application/octet-stream') =>
    app.inject({ method: 'POST', url: `/api/v1/images?${query}`, payload, headers: { 'content-type': type } });

  it('streams past the app bodyLimit, 201 then 200 unchanged, with URLs', async () => {
    const data = pattern(200_000);
    const r = await upload(`name=os.iso&osName=linux&osVersion=6.1&sha256=${sha256(data)}`, data);
    expect(r.statusCode).toBe(201);
    expect(r.json()).toMatchObject({ outcome: 'created', image: { name: 'os.iso', size: 200_000, urls: { bmc: 'https://ztp.lab:8444/images/os.iso' } } });
    expect((await upload('name=os.iso', data)).json().outcome).toBe('unchanged');
    const list = await app.inject({ url: '/api/v1/images' });
    expect(list.json().images).toHaveLength(1);
    const show = await app.inject({ url: `/api/v1/images/${sha256(data)}` });
    expect(show.json().image).toMatchObject({ name: 'os.iso', referencedBy: [] });
  });

  it('refuses a digest mismatch (422), a missing name (400), a wrong media type (415)', async () => {
    const mismatch = await upload(`name=x&sha256=${'0'.repeat(64)}`, 'hello');
    expect(mismatch.statusCode).toBe(422);
    expect(mismatch.json().error.code).toBe('IMAGES_DIGEST_MISMATCH');
    expect((await upload('', 'hello')).statusCode).toBe(400);
    expect((await upload('name=x', 'hello', 'text/plain')).statusCode).toBe(415);
    expect(env.catalogue.list()).toEqual([]);
  });

  it('DELETE: 409 while referenced, 200 with force, 404 after', async () => {
    await upload('name=os.iso', 'bytes');
    env.store.upsert({ serial: 'SN9', bootImage: 'os.iso' });
    expect((await app.inject({ method: 'DELETE', url: '/api/v1/images/os.iso' })).statusCode).toBe(409);
    expect((await app.inject({ method: 'DELETE', url: '/api/v1/images/os.iso?force=true' })).json()).toMatchObject({ removed: true, referencedBy: ['SN9'] });
    expect((await app.inject({ method: 'DELETE', url: '/api/v1/images/os.iso' })).statusCode).toBe(404);
    expect((await app.inject({ url: '/api/v1/images/os.iso' })).statusCode).toBe(404);
  });

  it('an upload aborted mid-stream on a real socket leaves no entry and no temp file', async () => {
    await app.listen({ host: '127.0.0.1', port: 0 });
    const port = (app.server.address() as { port: number }).port;
    const sock = connect(port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    sock.write(`POST /api/v1/images?name=partial.iso HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: ${50 * 1024 * 1024}\r\n\r\n`);
    sock.write(pattern(2 * 1024 * 1024));
    // the temp file exists while the upload runs
    for (let i = 0; i < 50 && temps().length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(temps()).toHaveLength(1);
    sock.destroy();
    for (let i = 0; i < 100 && temps().length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(temps()).toEqual([]);
    expect(env.catalogue.list()).toEqual([]);
    expect(blobs()).toEqual([]);
  });
});

describe.skipIf(!isRoot)('disk full', () => {
  it('ENOSPC during an upload → 507 IMAGES_STORAGE_FULL, nothing kept', async (ctx) => {
    const imagesDir = join(env.dir, 'small-images');
    mkdirSync(imagesDir);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', imagesDir]);
    } catch (err) {
      // a skip, reported as one (it used to return and count as passed)
      const reason = `cannot mount a tmpfs here (${String(err).split('\n')[0]}); skipping the ENOSPC test`;
      console.warn(reason);
      ctx.skip(reason);
    }
    try {
      const catalogue = new ImageCatalogue(env.db, imagesDir);
      const app = Fastify();
      const lines: string[] = [];
      const log = silentLogger.child({});
      log.error = ((obj: unknown, msg: string) => void lines.push(`${msg} ${JSON.stringify(obj)}`)) as typeof log.error;
      await app.register(imagesApiRoutes, { prefix: '/api/v1', catalogue, store: env.store, log: { child: () => log } as never, config: env.config, publicHost: 'h' });
      const r = await app.inject({ method: 'POST', url: '/api/v1/images?name=big.iso', payload: Readable.from([pattern(3 * 1024 * 1024)]), headers: { 'content-type': 'application/octet-stream' } });
      expect(r.statusCode).toBe(507);
      expect(r.json().error.code).toBe('IMAGES_STORAGE_FULL');
      expect(lines.some((l) => l.includes('storage full'))).toBe(true);
      expect(readdirSync(join(imagesDir, 'tmp'))).toEqual([]);
      expect(catalogue.list()).toEqual([]);
      // a small image still fits afterwards
      expect((await app.inject({ method: 'POST', url: '/api/v1/images?name=small', payload: 'ok', headers: { 'content-type': 'application/octet-stream' } })).statusCode).toBe(201);
      await app.close();
    } finally {
      execFileSync('umount', [imagesDir]);
    }
  });
});
