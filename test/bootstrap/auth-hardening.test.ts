// Issue 11, bootstrap-server authentication: password checks off the event loop and bounded,
// the same scrypt work for unknown serials, presented credentials checked whatever the mode,
// failed attempts coalesced in the history and rate-limited per (serial, source address).
import { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ClientCertificate, Credentials } from '../../src/bootstrap/auth.js';
import { DeviceAuthenticator } from '../../src/bootstrap/auth.js';
import { FailureLimiter, type FailureRecord, type FailureSummary } from '../../src/bootstrap/failures.js';
import { openDatabase } from '../../src/db/database.js';
import { DeviceStore } from '../../src/devices/store.js';
import { issueDeviceIdentity, splitPem } from '../../src/pki/lab.js';
import { basic, bootstrapFixture, GBD, JSON_TYPE, labPki, PROGRESS, type BootstrapFixture } from '../helpers/bootstrap.js';

const input = JSON.stringify({ 'ietf-sztp-bootstrap-server:input': {} });
const gbd = (f: BootstrapFixture, authorization: string, remoteAddress = '192.0.2.10') =>
  f.app.inject({ method: 'POST', url: GBD, remoteAddress, headers: { authorization, 'content-type': JSON_TYPE }, payload: input });

const errorsOf = (f: BootstrapFixture, serial: string) => f.store.history(serial).filter((e) => e.type === 'request' && e.data.result === 'error');

describe('password checks run off the event loop, a bounded number at a time', () => {
  it('the event loop keeps turning while a wrong password is verified (scryptSync blocked it ~90 ms)', async () => {
    const f = await bootstrapFixture();
    f.store.upsert({ serial: 'LOOP-1', password: 'right' });
    let turns = 0;
    let done = false;
    const spin = () => {
      if (done) return;
      turns++;
      setImmediate(spin);
    };
    setImmediate(spin);
    const res = await gbd(f, basic('LOOP-1', 'wrong'));
    done = true;
    expect(res.statusCode).toBe(401);
    // Each turn is one pass of the loop; a synchronous scrypt allows only the few before it starts.
    expect(turns).toBeGreaterThan(20);
  });

  it('past passwordChecks + passwordQueue, checks are refused at once with 503 and Retry-After', async () => {
    const f = await bootstrapFixture({ config: { passwordChecks: 1, passwordQueue: 2, failureLimit: 1000 } });
    for (let i = 0; i < 8; i++) f.store.upsert({ serial: `BUSY-${i}`, password: 'right' });
    const replies = await Promise.all(Array.from({ length: 8 }, (_, i) => gbd(f, basic(`BUSY-${i}`, 'wrong'))));
    const statuses = replies.map((r) => r.statusCode).sort();
    // one running, two waiting: three wrong-password 401s; the other five refused without scrypt
    expect(statuses).toEqual([401, 401, 401, 503, 503, 503, 503, 503]);
    const busy = replies.find((r) => r.statusCode === 503)!;
    expect(Number(busy.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(busy.body)['ietf-restconf:errors'].error[0]['error-tag']).toBe('resource-denied');
    // and once the queue has drained, checks are admitted again
    expect((await gbd(f, basic('BUSY-0', 'right'))).statusCode).toBe(200);
  });

  it('a check that waited passwordWaitMs for a slot is refused 503, and its scrypt is skipped', async () => {
    const store = new DeviceStore(openDatabase({ file: ':memory:' }));
    store.upsert({ serial: 'WAIT-1', password: 'right' });
    const auth = new DeviceAuthenticator(store, { mode: 'basic', serialFrom: 'serialNumber', passwordChecks: 1, passwordQueue: 10, passwordWaitMs: 1 });
    const creds = (password: string): Credentials => ({ basic: { serial: 'WAIT-1', password } });
    // The first holds the slot for a whole scrypt (~90 ms); the others wait more than 1 ms.
    const outcomes = await Promise.allSettled([auth.authenticate(creds('wrong')), auth.authenticate(creds('wrong')), auth.authenticate(creds('right'))]);
    expect(outcomes[0]).toMatchObject({ status: 'rejected', reason: { code: 'SZTP_ACCESS_DENIED' } });
    for (const o of outcomes.slice(1)) expect(o).toMatchObject({ status: 'rejected', reason: { code: 'SZTP_BUSY', details: { retryAfter: 1 } } });
    expect(String((outcomes[1] as PromiseRejectedResult).reason.details.reason)).toMatch(/waited 1 ms/);
  });

  it('the verified-credential cache is kept: a known good password skips scrypt', async () => {
    const f = await bootstrapFixture({ config: { passwordChecks: 1, passwordQueue: 0 } });
    f.store.upsert({ serial: 'CACHE-1', password: 'right' });
    f.store.upsert({ serial: 'CACHE-2', password: 'right' });
    expect((await gbd(f, basic('CACHE-1', 'right'))).statusCode).toBe(200);
    // A wrong password holds the only slot; the cached credential does not need it.
    const [wrong, again, uncached] = await Promise.all([gbd(f, basic('CACHE-2', 'wrong')), gbd(f, basic('CACHE-1', 'right')), gbd(f, basic('CACHE-2', 'right'))]);
    expect(wrong.statusCode).toBe(401);
    expect(again.statusCode).toBe(200);
    expect(uncached.statusCode).toBe(503);
  });
});

describe('unknown serials cost the same scrypt as wrong passwords (timing oracle)', () => {
  it('an unknown serial, a passwordless device and a wrong password each take one verification slot', async () => {
    // With one slot and no queue, a request that needs scrypt while another holds the slot is
    // refused busy. Before the fix, unknown serials answered 401 at once, without scrypt.
    const f = await bootstrapFixture({ config: { passwordChecks: 1, passwordQueue: 0, failureLimit: 1000 } });
    f.store.upsert({ serial: 'KNOWN-1', password: 'right' });
    f.store.upsert({ serial: 'NOPW-1' });
    for (const probe of [basic('NOBODY-1', 'x'), basic('NOPW-1', 'x'), basic('KNOWN-1', 'also-wrong')]) {
      const [holder, other] = await Promise.all([gbd(f, basic('KNOWN-1', 'wrong')), gbd(f, probe)]);
      expect(holder.statusCode).toBe(401);
      expect(other.statusCode).toBe(503);
      // alone, each is a plain 401 (the same answer whatever the reason)
      const alone = await gbd(f, probe);
      expect(alone.statusCode).toBe(401);
      expect(alone.body).toBe(holder.body);
    }
  });
});

describe('presented credentials must be right whatever the mode', () => {
  let cert: ClientCertificate;
  beforeAll(async () => {
    const { pki } = await labPki();
    const id = await issueDeviceIdentity(pki, 'CERT-1');
    const pem = splitPem(id.certPem)[0]!;
    cert = { authorized: true, pem, x509: new X509Certificate(pem) };
  });

  const withCert = (f: BootstrapFixture, authorization?: string) =>
    f.app.inject({ method: 'POST', url: GBD, headers: { ...(authorization ? { authorization } : {}), 'content-type': JSON_TYPE }, payload: input });

  for (const mode of ['cert', 'cert-or-basic', 'cert-and-basic'] as const) {
    it(`auth=${mode}: a valid certificate with a wrong Basic password is 401, with the right one 200`, async () => {
      const f = await bootstrapFixture({ config: { auth: mode }, credentialsOf: (req) => ({ certificate: cert, ...(req.headers.authorization ? { basic: { serial: 'CERT-1', password: Buffer.from(req.headers.authorization.slice(6), 'base64').toString().split(':')[1]! } } : {}) }) });
      f.store.upsert({ serial: 'CERT-1', password: 'right', config: 'c' });
      expect((await withCert(f, basic('CERT-1', 'wrong'))).statusCode).toBe(401);
      expect(errorsOf(f, 'CERT-1').at(-1)!.data.error).toBe('wrong password');
      expect((await withCert(f, basic('CERT-1', 'right'))).statusCode).toBe(200);
      if (mode !== 'cert-and-basic') expect((await withCert(f)).statusCode).toBe(200);
    });
  }

  it('auth=cert: the authenticator reports cert+basic when both were presented and checked', async () => {
    const store = new DeviceStore(openDatabase({ file: ':memory:' }));
    store.upsert({ serial: 'CERT-1', password: 'right' });
    const auth = new DeviceAuthenticator(store, { mode: 'cert', serialFrom: 'serialNumber' });
    const creds = (password: string): Credentials => ({ certificate: cert, basic: { serial: 'CERT-1', password } });
    await expect(auth.authenticate(creds('wrong'))).rejects.toMatchObject({ code: 'SZTP_ACCESS_DENIED', details: { reason: 'wrong password' } });
    await expect(auth.authenticate(creds('right'))).resolves.toMatchObject({ serial: 'CERT-1', method: 'cert+basic' });
  });
});

describe('failed attempts: coalesced per (serial, address) and rate-limited', () => {
  it('a burst of 16 wrong passwords writes the first at once, then one summary row when the window closes', async () => {
    let now = Date.parse('2030-01-01T00:00:00Z');
    const f = await bootstrapFixture({ now: () => now, config: { failureWindow: 60, failureLimit: 1000, passwordChecks: 2, passwordQueue: 1000 } });
    f.store.upsert({ serial: 'BURST-1', password: 'right' });
    const replies = [];
    for (let i = 0; i < 2; i++) replies.push(...(await Promise.all(Array.from({ length: 8 }, () => gbd(f, basic('BURST-1', 'wrong'))))));
    expect(replies.every((r) => r.statusCode === 401)).toBe(true);
    // Before: 16 rows. Now: the first, at once.
    expect(errorsOf(f, 'BURST-1')).toHaveLength(1);
    expect(errorsOf(f, 'BURST-1')[0]!.data).toMatchObject({ result: 'error', error: 'wrong password', ip: '192.0.2.10' });
    // Another address is its own burst, audited at once.
    await gbd(f, basic('BURST-1', 'wrong'), '192.0.2.99');
    expect(errorsOf(f, 'BURST-1')).toHaveLength(2);
    // The window closes: one summary for the 15 that were counted.
    now += 61_000;
    await gbd(f, basic('BURST-1', 'wrong')); // the next failure closes the old window and opens a new one
    const rows = errorsOf(f, 'BURST-1');
    const summary = rows.find((e) => e.data.rpc === 'summary')!;
    expect(summary.data).toMatchObject({ result: 'error', repeated: 15, rateLimited: 0, codes: { SZTP_ACCESS_DENIED: 15 }, ip: '192.0.2.10', windowSeconds: 60 });
    expect(rows).toHaveLength(4); // first, other address's first, summary, the new window's first
    await f.app.close();
    // shutdown closes the open windows: the other address had nothing after its first, so no row
    expect(errorsOf(f, 'BURST-1')).toHaveLength(4);
  });

  it('a new reason within the window is written at once (the audit trail shows each kind of failure)', async () => {
    const now = Date.parse('2030-01-01T00:00:00Z');
    const f = await bootstrapFixture({ now: () => now, config: { failureLimit: 1000 } });
    f.store.upsert({ serial: 'KINDS-1', password: 'right' });
    await gbd(f, basic('KINDS-1', 'wrong'));
    await gbd(f, basic('KINDS-1', 'wrong'));
    const badBody = await f.app.inject({ method: 'POST', url: PROGRESS, remoteAddress: '192.0.2.10', headers: { authorization: basic('KINDS-1', 'right'), 'content-type': JSON_TYPE }, payload: '{' });
    expect(badBody.statusCode).toBe(400);
    expect(errorsOf(f, 'KINDS-1').map((e) => e.data.code)).toEqual(['SZTP_ACCESS_DENIED', 'SZTP_MALFORMED_MESSAGE']);
  });

  it('past failureLimit a (serial, address) gets 429 with Retry-After, before any password check; others are unaffected', async () => {
    let now = Date.parse('2030-01-01T00:00:00Z');
    const f = await bootstrapFixture({ now: () => now, config: { failureWindow: 30, failureLimit: 3, passwordChecks: 1, passwordQueue: 0 } });
    f.store.upsert({ serial: 'LIMIT-1', password: 'right', config: 'c' });
    for (let i = 0; i < 3; i++) expect((await gbd(f, basic('LIMIT-1', 'wrong'))).statusCode).toBe(401);
    now += 10_000;
    const heldFrom = performance.now();
    const limited = await gbd(f, basic('LIMIT-1', 'wrong'));
    // Held ~1 s before it is sent, so a client looping on 429 cannot spin the event loop.
    expect(performance.now() - heldFrom).toBeGreaterThanOrEqual(990);
    expect(limited.statusCode).toBe(429);
    expect(limited.headers['retry-after']).toBe('20');
    expect(JSON.parse(limited.body)['ietf-restconf:errors'].error[0]['error-tag']).toBe('resource-denied');
    // Even the right password waits out the window from that address (no oracle for guesses)...
    expect((await gbd(f, basic('LIMIT-1', 'right'))).statusCode).toBe(429);
    // ...while the same device from another address, and other RPCs' callers, go on.
    expect((await gbd(f, basic('LIMIT-1', 'right'), '192.0.2.77')).statusCode).toBe(200);
    // 429s hold no verification slot: with one slot and no queue, a flood of them is never 503
    const flood = await Promise.all(Array.from({ length: 20 }, () => gbd(f, basic('LIMIT-1', 'wrong'))));
    expect(flood.every((r) => r.statusCode === 429)).toBe(true);
    now += 21_000;
    expect((await gbd(f, basic('LIMIT-1', 'right'))).statusCode).toBe(200);
    const summary = errorsOf(f, 'LIMIT-1').find((e) => e.data.rpc === 'summary')!;
    expect(summary.data).toMatchObject({ repeated: 24, rateLimited: 22, codes: { SZTP_ACCESS_DENIED: 2, SZTP_RATE_LIMITED: 22 } });
  });

  it('checks queued before the limit was hit are refused 429 when their turn comes, without scrypt', async () => {
    const f = await bootstrapFixture({ config: { failureLimit: 3, passwordChecks: 1, passwordQueue: 100 } });
    f.store.upsert({ serial: 'QUEUED-1', password: 'right' });
    // Ten guesses at once: all pass the first limit check and queue for the single slot.
    const replies = await Promise.all(Array.from({ length: 10 }, () => gbd(f, basic('QUEUED-1', 'wrong'))));
    const count = (status: number) => replies.filter((r) => r.statusCode === status).length;
    // The limit is 3; a fourth check may already have started before the third failure was
    // counted (p-limit starts the next task a few microtasks before the route records the
    // failure). Before the gate, all ten ran scrypt and answered 401.
    expect(count(401)).toBeGreaterThanOrEqual(3);
    expect(count(401)).toBeLessThanOrEqual(4);
    expect(count(429)).toBe(10 - count(401));
  });

  it('authenticated devices sending bad bodies are coalesced too, but never rate-limited', async () => {
    const now = Date.parse('2030-01-01T00:00:00Z');
    const f = await bootstrapFixture({ now: () => now, config: { failureLimit: 2 } });
    f.store.upsert({ serial: 'BODY-1', password: 'right' });
    for (let i = 0; i < 5; i++) {
      const res = await f.app.inject({ method: 'POST', url: PROGRESS, remoteAddress: '192.0.2.10', headers: { authorization: basic('BODY-1', 'right'), 'content-type': JSON_TYPE }, payload: '{"x":' });
      expect(res.statusCode).toBe(400);
    }
    expect(errorsOf(f, 'BODY-1')).toHaveLength(1);
    await f.app.close();
    expect(errorsOf(f, 'BODY-1').at(-1)!.data).toMatchObject({ rpc: 'summary', repeated: 4, codes: { SZTP_MALFORMED_MESSAGE: 4 } });
  });
});

describe('password hashes', () => {
  it('a stored hash with an empty or short digest matches nothing (async and sync)', async () => {
    const { verifyPassword, verifyPasswordAsync } = await import('../../src/devices/password.js');
    for (const stored of ['scrypt$16384$8$1$c2FsdA==$', 'scrypt$16384$8$1$c2FsdA==$AAAA', 'scrypt$3$8$1$c2FsdA==$' + 'A'.repeat(44), 'bcrypt$x']) {
      expect(await verifyPasswordAsync('', stored)).toBe(false);
      expect(verifyPassword('', stored)).toBe(false);
    }
  });
});

describe('FailureLimiter (policy, injected clock)', () => {
  it('sweep() closes ended windows; maxKeys bounds memory by closing the oldest early', () => {
    let now = 0;
    const firsts: FailureRecord[] = [];
    const summaries: FailureSummary[] = [];
    const limiter = new FailureLimiter({ first: (r) => firsts.push(r), summary: (s) => summaries.push(s) }, { windowMs: 1000, limit: 2, maxKeys: 3, now: () => now });
    const rec = (serial: string): FailureRecord => ({ serial, ip: '10.0.0.1', rpc: 'get-bootstrapping-data', code: 'SZTP_ACCESS_DENIED', error: 'wrong password' });
    for (const s of ['A', 'A', 'A', 'B', 'C']) limiter.failed(rec(s), { authentication: true });
    expect(firsts.map((r) => r.serial)).toEqual(['A', 'B', 'C']);
    expect(limiter.retryAfter('A', '10.0.0.1')).toBe(1);
    expect(limiter.retryAfter('B', '10.0.0.1')).toBeUndefined();
    limiter.failed(rec('D'), { authentication: true }); // a fourth key: A's window closes early
    expect(summaries.map((s) => [s.serial, s.count])).toEqual([['A', 2]]);
    expect(limiter.size).toBe(3);
    now = 1000;
    limiter.sweep();
    expect(limiter.size).toBe(0);
    expect(summaries).toHaveLength(1); // B, C, D had no repeats
  });
});
