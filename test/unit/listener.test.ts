// What every HTTP listener gets (src/http/): the per-source token bucket, /healthz and /readyz
// with per-service readiness, and the http.* settings' cross-checks. Built without listening
// and tested with inject(); the real-socket timeouts are in slow-clients.test.ts.
import { connect as netConnect, type AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config.js';
import { buildImagesApp } from '../../src/images/app.js';
import { DownloadRecorder } from '../../src/images/recorder.js';
import { createHttpListeners } from '../../src/http/listener.js';
import { TokenBuckets } from '../../src/http/rate-limit.js';
import { silentLogger } from '../../src/log.js';
import type { ServiceReadiness } from '../../src/service.js';
import { makeEnv, type ImagesEnv } from '../images/helpers.js';
import { startTestSuite, type TestSuite } from '../helpers/suite.js';

describe('TokenBuckets (per-source request budget)', () => {
  it('allows a burst, then one request per 1/rate seconds, with the wait as Retry-After', () => {
    let now = 1_000_000;
    const b = new TokenBuckets(2, 3, () => now);
    expect([1, 2, 3].map(() => b.take('10.0.0.1').allowed)).toEqual([true, true, true]);
    const refused = b.take('10.0.0.1');
    expect(refused).toEqual({ allowed: false, retryAfter: 1, firstRefusal: true });
    // only the first refusal in a minute is flagged (one log line, not one per request)
    expect(b.take('10.0.0.1').firstRefusal).toBe(false);
    // another source has its own bucket
    expect(b.take('10.0.0.2').allowed).toBe(true);
    now += 500; // half a second at 2/s: one token
    expect(b.take('10.0.0.1').allowed).toBe(true);
    expect(b.take('10.0.0.1').allowed).toBe(false);
    const again = b.take('10.0.0.1');
    // allowed and refused in turn (a client just over its rate): still no new log line
    expect(again).toMatchObject({ allowed: false, firstRefusal: false });
    now += 10_000; // refills to the burst, never beyond
    expect([1, 2, 3, 4].map(() => b.take('10.0.0.1').allowed)).toEqual([true, true, true, false]);
    now += 60_000;
    expect([1, 2, 3, 4].map(() => b.take('10.0.0.1').firstRefusal)).toEqual([false, false, false, true]);
  });

  it('a slow rate says how many whole seconds to wait', () => {
    const b = new TokenBuckets(0.1, 1, () => 0);
    expect(b.take('a').allowed).toBe(true);
    expect(b.take('a').retryAfter).toBe(10);
  });

  it('keeps at most maxSources buckets (a spoofing flood cannot grow the map)', () => {
    let now = 0;
    const b = new TokenBuckets(1, 1, () => now, 100);
    for (let i = 0; i < 1000; i++) {
      b.take(`s${i}`);
      now += 1;
    }
    expect(b.sources).toBeLessThanOrEqual(100);
  });
});

const settings = (over: Record<string, unknown> = {}) => validateConfig({ http: over }).http;

describe('listener hardening on an app (inject)', () => {
  const waiting: Record<string, ServiceReadiness> = {
    bootstrap: { ready: true, state: 'running' },
    dhcp: { ready: false, state: 'waiting', reason: 'interface eth9 does not exist' },
  };

  it('/healthz is 200 and /readyz 503 naming the service that is not ready and why', async () => {
    const app = Fastify();
    createHttpListeners(settings(), silentLogger, () => waiting).harden(app, 'test');
    expect((await app.inject({ url: '/healthz' })).json()).toEqual({ status: 'ok' });
    const ready = await app.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toEqual({ status: 'not-ready', services: waiting });
    await app.close();
  });

  it('/readyz is 200 once every service is ready', async () => {
    const app = Fastify();
    createHttpListeners(settings(), silentLogger, () => ({ dhcp: { ready: true, state: 'disabled' } })).harden(app, 'test');
    const ready = await app.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toMatchObject({ status: 'ready' });
    await app.close();
  });

  it("keeps an app's own /healthz and adds /readyz beside it", async () => {
    const app = Fastify();
    app.get('/healthz', async () => 'own');
    createHttpListeners(settings(), silentLogger, () => waiting).harden(app, 'test');
    expect((await app.inject({ url: '/healthz' })).body).toBe('own');
    expect((await app.inject({ url: '/readyz' })).statusCode).toBe(503);
    await app.close();
  });

  it('over its budget a source gets 429 with Retry-After; health routes stay exempt; other sources are served', async () => {
    const app = Fastify();
    app.get('/work', async () => ({ done: true }));
    createHttpListeners(settings({ rateLimit: 1, rateBurst: 2 }), silentLogger, () => ({})).harden(app, 'test');
    const from = (remoteAddress: string) => ({ url: '/work', remoteAddress });
    expect((await app.inject(from('192.0.2.1'))).statusCode).toBe(200);
    expect((await app.inject(from('192.0.2.1'))).statusCode).toBe(200);
    const limited = await app.inject(from('192.0.2.1'));
    expect(limited.statusCode).toBe(429);
    expect(limited.headers['retry-after']).toBe('1');
    expect(limited.json()).toMatchObject({ error: { code: 'HTTP_RATE_LIMITED' } });
    expect((await app.inject({ url: '/healthz', remoteAddress: '192.0.2.1' })).statusCode).toBe(200);
    expect((await app.inject(from('192.0.2.2'))).statusCode).toBe(200);
    await app.close();
  });

  it('rateLimit 0 (the default) limits nothing', async () => {
    const app = Fastify();
    app.get('/work', async () => ({ done: true }));
    createHttpListeners(settings({ rateBurst: 1 }), silentLogger, () => ({})).harden(app, 'test');
    const codes = await Promise.all(Array.from({ length: 20 }, () => app.inject({ url: '/work' }).then((r) => r.statusCode)));
    expect(new Set(codes)).toEqual(new Set([200]));
    await app.close();
  });
});

describe('http.maxConnectionsPerSource (real sockets)', () => {
  it('closes a source\'s connections beyond the cap on accept, and accepts again once one closes', async () => {
    const app = Fastify();
    createHttpListeners(settings({ maxConnectionsPerSource: 3 }), silentLogger, () => ({})).harden(app, 'test');
    await app.listen({ host: '127.0.0.1', port: 0 });
    const port = (app.server.address() as AddressInfo).port;
    const open = () => {
      const s = netConnect({ host: '127.0.0.1', port });
      s.on('error', () => undefined);
      s.resume();
      const closed = new Promise<boolean>((r) => {
        s.once('close', () => r(true));
        setTimeout(() => r(false), 1500).unref();
      });
      return { s, closed };
    };
    const first = [open(), open(), open()];
    await Promise.all(first.map((c) => new Promise((r) => c.s.once('connect', r))));
    await new Promise((r) => setTimeout(r, 100)); // the server has accepted all three
    const extra = open();
    expect(await extra.closed).toBe(true);
    first[0]!.s.destroy();
    await first[0]!.closed;
    await new Promise((r) => setTimeout(r, 100));
    const again = open();
    expect(await again.closed).toBe(false);
    // the three held all along were never touched
    for (const c of [first[1]!, first[2]!, again]) {
      expect(c.s.destroyed).toBe(false);
      c.s.destroy();
    }
    await app.close();
  });
});

describe('the image server gets /readyz (its catch-all route keeps everything else)', () => {
  let env: ImagesEnv | undefined;
  afterEach(() => env?.cleanup());

  it('answers /readyz from the suite and still refuses unknown paths', async () => {
    env = makeEnv();
    const recorder = new DownloadRecorder(env.store, silentLogger, {});
    const app = await buildImagesApp({ catalogue: env.catalogue, store: env.store, recorder, log: silentLogger, config: env.config, scheme: 'http' });
    createHttpListeners(settings(), silentLogger, () => ({ images: { ready: true, state: 'running' }, dhcp: { ready: false, state: 'waiting', reason: 'no carrier' } })).harden(app, 'images-http');
    const ready = await app.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toMatchObject({ services: { dhcp: { reason: 'no carrier' } } });
    expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/images/none.img' })).statusCode).toBe(404);
    recorder.stop();
    await app.close();
  });
});

describe('readiness of a started suite', () => {
  let t: TestSuite | undefined;
  afterEach(async () => {
    await t?.suite.stop();
    t = undefined;
  });

  it('every listener says DHCP is waiting for its interface, and why', async () => {
    t = await startTestSuite('ztp-ready-', {
      config: { dhcp: { interface: 'ztpnone0', port: 0, summaryInterval: 0, subnets: [{ subnet: '127.0.0.0/8', pools: [{ start: '127.0.5.1', end: '127.0.5.9' }] }] } },
    });
    for (const l of t.suite.listeners) {
      const url = `${l.protocol}://127.0.0.1:${l.port}/readyz`;
      const { Agent, request } = await import('undici');
      const dispatcher = new Agent({ connect: { rejectUnauthorized: false } });
      const res = await request(url, { dispatcher });
      const body = (await res.body.json()) as { status: string; services: Record<string, ServiceReadiness> };
      await dispatcher.close();
      expect(res.statusCode, `${l.service} ${l.protocol}`).toBe(503);
      expect(body.status).toBe('not-ready');
      expect(body.services.dhcp).toMatchObject({ ready: false, state: 'waiting' });
      expect(body.services.dhcp!.reason).toMatch(/ztpnone0/);
      expect(body.services.bootstrap).toEqual({ ready: true, state: 'running' });
      // TFTP is off by default: started, doing nothing, and saying why.
      expect(body.services.tftp).toEqual({ ready: true, state: 'disabled', reason: 'tftp.enabled is false' });
    }
  }, 60_000);
});

describe('http.* settings', () => {
  it('a header timeout longer than the request timeout is refused, naming the key', () => {
    expect(() => validateConfig({ http: { headersTimeout: 30, requestTimeout: 10 } })).toThrow(/http\.headersTimeout/);
    expect(() => validateConfig({ http: { keepAliveTimeout: 90, idleTimeout: 60 } })).toThrow(/http\.keepAliveTimeout/);
    expect(() => validateConfig({ http: { maxConnections: 0 } })).toThrow(/http\.maxConnections/);
  });
});
