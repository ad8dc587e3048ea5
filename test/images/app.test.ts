// The image server through fastify inject(): RFC 9110 ranges and conditionals, traversal refusals,
// client-certificate policy, and the download records in a device's history.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { symlinkSync, unlinkSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { buildImagesApp, classifyView, type PeerIdentity } from '../../src/images/app.js';
import { DownloadRecorder } from '../../src/images/recorder.js';
import { silentLogger } from '../../src/log.js';
import { addBuffer, makeEnv, pattern, sha256, type ImagesEnv } from './helpers.js';

const SIZE = 10_000;
const DATA = pattern(SIZE);
const DIGEST = sha256(DATA);
const NOW = Date.parse('2030-01-01T00:00:00Z');

/** The download record is written when the response has been handed to the socket, just after inject() resolves. */
const tick = () => new Promise((res) => setTimeout(res, 20));

let env: ImagesEnv;
let app: FastifyInstance;
let recorder: DownloadRecorder;
let peer: PeerIdentity;

async function build(images: Parameters<typeof makeEnv>[0] = {}) {
  env = makeEnv(images);
  await addBuffer(env, 'os.iso', DATA, { osName: 'linux', osVersion: '1.0' });
  recorder = new DownloadRecorder(env.store, silentLogger, { idleMs: 60_000 });
  peer = { tls: false, authorized: false };
  app = await buildImagesApp({ catalogue: env.catalogue, store: env.store, recorder, log: silentLogger, config: env.config, scheme: 'http', now: () => NOW, peerIdentity: () => peer });
}

beforeEach(async () => build());
afterEach(async () => {
  await app.close();
  env.cleanup();
});

describe('GET and HEAD', () => {
  it('serves the whole image with validators and Accept-Ranges', async () => {
    const r = await app.inject({ url: '/images/os.iso' });
    expect(r.statusCode).toBe(200);
    expect(r.rawPayload.equals(DATA)).toBe(true);
    expect(r.headers['content-length']).toBe(String(SIZE));
    expect(r.headers['accept-ranges']).toBe('bytes');
    expect(r.headers.etag).toBe(`"${DIGEST}"`);
    expect(r.headers['last-modified']).toMatch(/GMT$/);
    expect(r.headers['content-type']).toBe('application/x-iso9660-image');
    expect(r.headers['repr-digest']).toBe(`sha-256=:${Buffer.from(DIGEST, 'hex').toString('base64')}:`);
    expect(r.headers['cache-control']).toBe('no-cache');
  });

  it('serves by digest with immutable caching, upper-case digest too', async () => {
    const r = await app.inject({ url: `/sha256/${DIGEST.toUpperCase()}` });
    expect(r.statusCode).toBe(200);
    expect(r.headers['cache-control']).toContain('immutable');
  });

  it('HEAD gives the headers and no body, and ignores Range (RFC 9110 §14.2)', async () => {
    const r = await app.inject({ method: 'HEAD', url: '/images/os.iso', headers: { range: 'bytes=0-9' } });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-length']).toBe(String(SIZE));
    expect(r.rawPayload.length).toBe(0);
  });

  it('answers 404 for an unknown image and 405 with Allow for other methods', async () => {
    expect((await app.inject({ url: '/images/nope.iso' })).statusCode).toBe(404);
    const r = await app.inject({ method: 'PUT', url: '/images/os.iso', payload: 'x' });
    expect(r.statusCode).toBe(405);
    expect(r.headers.allow).toBe('GET, HEAD');
  });

  it('health check', async () => {
    expect((await app.inject({ url: '/healthz' })).body).toBe('ok\n');
  });
});

describe('Range (RFC 9110 §14)', () => {
  it('single range → 206 with Content-Range', async () => {
    const r = await app.inject({ url: '/images/os.iso', headers: { range: 'bytes=100-199' } });
    expect(r.statusCode).toBe(206);
    expect(r.headers['content-range']).toBe(`bytes 100-199/${SIZE}`);
    expect(r.rawPayload.equals(DATA.subarray(100, 200))).toBe(true);
  });

  it('suffix and open-ended ranges', async () => {
    const s = await app.inject({ url: '/images/os.iso', headers: { range: 'bytes=-10' } });
    expect(s.headers['content-range']).toBe(`bytes ${SIZE - 10}-${SIZE - 1}/${SIZE}`);
    expect(s.rawPayload.equals(DATA.subarray(SIZE - 10))).toBe(true);
    const o = await app.inject({ url: '/images/os.iso', headers: { range: 'bytes=9990-' } });
    expect(o.rawPayload.equals(DATA.subarray(9990))).toBe(true);
  });

  it('multi-range → multipart/byteranges with exact Content-Length', async () => {
    const r = await app.inject({ url: '/images/os.iso', headers: { range: 'bytes=0-9, 5000-5009, -5' } });
    expect(r.statusCode).toBe(206);
    const m = /^multipart\/byteranges; boundary=(\S+)$/.exec(String(r.headers['content-type']));
    expect(m).not.toBeNull();
    expect(Number(r.headers['content-length'])).toBe(r.rawPayload.length);
    const parts = parseMultipart(r.rawPayload, m![1]!);
    expect(parts.map((p) => p.range)).toEqual([`bytes 0-9/${SIZE}`, `bytes 5000-5009/${SIZE}`, `bytes 9995-9999/${SIZE}`]);
    expect(parts[1]!.body.equals(DATA.subarray(5000, 5010))).toBe(true);
    expect(parts[2]!.body.equals(DATA.subarray(9995))).toBe(true);
    expect(parts.every((p) => p.type === 'application/x-iso9660-image')).toBe(true);
  });

  it('overlapping ranges are coalesced into one part', async () => {
    const r = await app.inject({ url: '/images/os.iso', headers: { range: 'bytes=0-99, 50-149, 100-199' } });
    expect(r.statusCode).toBe(206);
    expect(r.headers['content-range']).toBe(`bytes 0-199/${SIZE}`);
  });

  it('unsatisfiable → 416 with Content-Range bytes */size', async () => {
    const r = await app.inject({ url: '/images/os.iso', headers: { range: `bytes=${SIZE}-` } });
    expect(r.statusCode).toBe(416);
    expect(r.headers['content-range']).toBe(`bytes */${SIZE}`);
  });

  it('bogus, unknown-unit and too-many ranges are ignored → 200 whole file', async () => {
    for (const range of ['bytes=abc', 'bytes=5-1', 'items=0-1', 'bytes', Array.from({ length: 100 }, (_, i) => `${i * 10}-${i * 10 + 1}`).join(',').replace(/^/, 'bytes=')]) {
      const r = await app.inject({ url: '/images/os.iso', headers: { range } });
      expect(r.statusCode, range).toBe(200);
      expect(r.rawPayload.length).toBe(SIZE);
    }
  });
});

describe('conditional requests (RFC 9110 §13)', () => {
  it('If-None-Match with the ETag → 304; weak form matches too', async () => {
    expect((await app.inject({ url: '/images/os.iso', headers: { 'if-none-match': `"${DIGEST}"` } })).statusCode).toBe(304);
    expect((await app.inject({ url: '/images/os.iso', headers: { 'if-none-match': `"x", W/"${DIGEST}"` } })).statusCode).toBe(304);
    expect((await app.inject({ url: '/images/os.iso', headers: { 'if-none-match': '"other"' } })).statusCode).toBe(200);
  });

  it('If-Modified-Since: 304 when not modified since, 200 when older', async () => {
    const lm = (await app.inject({ method: 'HEAD', url: '/images/os.iso' })).headers['last-modified'] as string;
    expect((await app.inject({ url: '/images/os.iso', headers: { 'if-modified-since': lm } })).statusCode).toBe(304);
    expect((await app.inject({ url: '/images/os.iso', headers: { 'if-modified-since': 'Sat, 01 Jan 2000 00:00:00 GMT' } })).statusCode).toBe(200);
    // If-None-Match takes precedence (§13.2.2 step 3 before 4)
    expect((await app.inject({ url: '/images/os.iso', headers: { 'if-modified-since': lm, 'if-none-match': '"other"' } })).statusCode).toBe(200);
  });

  it('If-Match mismatch → 412', async () => {
    expect((await app.inject({ url: '/images/os.iso', headers: { 'if-match': '"other"' } })).statusCode).toBe(412);
    expect((await app.inject({ url: '/images/os.iso', headers: { 'if-match': `"${DIGEST}"` } })).statusCode).toBe(200);
  });

  it('If-Range: the strong ETag keeps the range, a weak or stale one sends the whole file', async () => {
    const ok = await app.inject({ url: '/images/os.iso', headers: { range: 'bytes=0-9', 'if-range': `"${DIGEST}"` } });
    expect(ok.statusCode).toBe(206);
    const weak = await app.inject({ url: '/images/os.iso', headers: { range: 'bytes=0-9', 'if-range': `W/"${DIGEST}"` } });
    expect(weak.statusCode).toBe(200);
    const stale = await app.inject({ url: '/images/os.iso', headers: { range: 'bytes=0-9', 'if-range': '"old"' } });
    expect(stale.statusCode).toBe(200);
    const lm = ok.headers['last-modified'] as string;
    expect((await app.inject({ url: '/images/os.iso', headers: { range: 'bytes=0-9', 'if-range': lm } })).statusCode).toBe(206);
  });
});

describe('bad paths', () => {
  it.each([
    // inject() resolves dot segments like a browser would (→ /ztp.db, 404); curl --path-as-is
    // sends them raw (curl.test.ts) and parseTarget refuses them (paths.test.ts).
    ['/images/../ztp.db', 404],
    ['/images/%2e%2e/ztp.db', 404],
    ['/images/..%2fztp.db', 400],
    ['/images/%2e%2e%2fztp.db', 400],
    ['/sha256/..%5c..%5cetc', 400],
    ['/images/.hidden', 400],
    ['/images/%2ehidden', 400],
    ['/images//etc/passwd', 400],
    ['/images/a%00b', 400],
    ['/images/%ff', 400],
    ['/etc/passwd', 404],
    ['/sha256/' + 'g'.repeat(64), 400],
    ['/by-mac/zz/os.iso', 400],
  ])('%s → %i', async (url, status) => {
    const r = await app.inject({ url });
    expect(r.statusCode).toBe(status);
    expect(r.body).not.toContain('SQLite');
  });

  it('a symlink planted in the blob store is not followed', async () => {
    const path = env.catalogue.pathOf({ sha256: DIGEST });
    unlinkSync(path);
    symlinkSync('/etc/passwd', path);
    const r = await app.inject({ url: '/images/os.iso' });
    expect(r.statusCode).toBe(500);
    expect(r.body).not.toContain('root:');
  });

  it('a huge URL → 414', async () => {
    expect((await app.inject({ url: '/images/' + 'a'.repeat(5000) })).statusCode).toBe(414);
  });
});

describe('client certificates', () => {
  it('globally required: refused without a verified certificate, served with one', async () => {
    await app.close();
    env.cleanup();
    await build({ requireClientCert: true });
    expect((await app.inject({ url: '/images/os.iso' })).statusCode).toBe(403);
    peer = { tls: true, authorized: false, serial: 'X', error: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' };
    expect((await app.inject({ url: '/images/os.iso' })).statusCode).toBe(403);
    peer = { tls: true, authorized: true, serial: 'SN1' };
    expect((await app.inject({ url: '/images/os.iso' })).statusCode).toBe(200);
  });

  it('per image', async () => {
    env.catalogue.updateMeta('os.iso', { requireClientCert: true });
    expect((await app.inject({ url: '/images/os.iso' })).statusCode).toBe(403);
    peer = { tls: true, authorized: true };
    expect((await app.inject({ url: '/images/os.iso' })).statusCode).toBe(200);
  });
});

describe('download records', () => {
  it('a per-device URL download lands in the device history and moves it to image-fetched', async () => {
    env.store.upsert({ serial: 'SN1', macs: ['aa:bb:cc:dd:ee:01'] });
    const r = await app.inject({ url: '/by-mac/AA-BB-CC-DD-EE-01/os.iso' });
    expect(r.statusCode).toBe(200);
    await tick();
    const ev = env.store.history('SN1').find((e) => e.type === 'download');
    expect(ev?.source).toBe('images');
    expect(ev?.data).toMatchObject({ image: 'os.iso', sha256: DIGEST, bytes: SIZE, completed: true, view: 'device', mac: 'aa:bb:cc:dd:ee:01' });
    expect(env.store.get('SN1')?.state).toBe('image-fetched');
  });

  it('a certificate serial attributes the download', async () => {
    env.store.upsert({ serial: 'SN2' });
    peer = { tls: true, authorized: true, serial: 'SN2' };
    await app.inject({ url: '/images/os.iso' });
    await tick();
    expect(env.store.history('SN2').some((e) => e.type === 'download' && e.data.certSerial === 'SN2')).toBe(true);
  });

  it('range reads of one client are coalesced into one session event', async () => {
    env.store.upsert({ serial: 'SN3', macs: ['aa:bb:cc:dd:ee:03'] });
    for (let i = 0; i < 20; i++) await app.inject({ url: '/by-mac/aa:bb:cc:dd:ee:03/os.iso', headers: { range: `bytes=${i * 100}-${i * 100 + 99}` } });
    await tick();
    expect(env.store.history('SN3').filter((e) => e.type === 'download')).toHaveLength(0);
    recorder.flush();
    const evs = env.store.history('SN3').filter((e) => e.type === 'download');
    expect(evs).toHaveLength(1);
    expect(evs[0]!.data).toMatchObject({ bytes: 2000, requests: 20, completed: true, view: 'bmc' });
  });

  it('HEAD and 304 are not downloads', async () => {
    env.store.upsert({ serial: 'SN4', macs: ['aa:bb:cc:dd:ee:04'] });
    await app.inject({ method: 'HEAD', url: '/by-mac/aa:bb:cc:dd:ee:04/os.iso' });
    await app.inject({ url: '/by-mac/aa:bb:cc:dd:ee:04/os.iso', headers: { 'if-none-match': '*' } });
    recorder.flush();
    expect(env.store.history('SN4').filter((e) => e.type === 'download')).toHaveLength(0);
  });
});

describe('classifyView', () => {
  it('matches the Host header against the configured base URLs', async () => {
    const { config } = env;
    config.images.bmcUrl = 'https://10.0.0.1:8444';
    config.images.deviceUrl = 'http://192.168.1.1:8080';
    expect(classifyView(config, '10.0.0.1:8444', 'https', false)).toBe('bmc');
    expect(classifyView(config, '192.168.1.1:8080', 'http', true)).toBe('device');
    expect(classifyView(config, 'other', 'http', true)).toBe('bmc');
    expect(classifyView(config, 'other', 'http', false)).toBe('device');
  });
});

/** Minimal multipart/byteranges reader for assertions. */
export function parseMultipart(body: Buffer, boundary: string): { type: string; range: string; body: Buffer }[] {
  const parts: { type: string; range: string; body: Buffer }[] = [];
  const delim = Buffer.from(`\r\n--${boundary}`);
  let at = body.indexOf(delim);
  while (at >= 0) {
    const after = at + delim.length;
    if (body.subarray(after, after + 2).toString() === '--') break;
    const headEnd = body.indexOf('\r\n\r\n', after);
    const head = body.subarray(after + 2, headEnd).toString();
    const next = body.indexOf(delim, headEnd + 4);
    const fields = Object.fromEntries(head.split('\r\n').map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
    parts.push({ type: fields['content-type'] ?? '', range: fields['content-range'] ?? '', body: body.subarray(headEnd + 4, next) });
    at = next;
  }
  return parts;
}
