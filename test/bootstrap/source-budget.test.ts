// Issue 11, budget per client: one address rotating serials escapes the (serial, address) limit
// (each guess is a new key, each worth a ~90 ms scrypt). A budget per address alone refuses it
// with 429 before any password check; a per-address cap on verification slots leaves the other
// slots to other hosts.
import { describe, expect, it } from 'vitest';
import { PasswordVerifier } from '../../src/bootstrap/auth.js';
import { DUMMY_PASSWORD_HASH } from '../../src/devices/password.js';
import { basic, bootstrapFixture, GBD, JSON_TYPE, type BootstrapFixture } from '../helpers/bootstrap.js';

const input = JSON.stringify({ 'ietf-sztp-bootstrap-server:input': {} });
const gbd = (f: BootstrapFixture, authorization: string, remoteAddress = '192.0.2.10') =>
  f.app.inject({ method: 'POST', url: GBD, remoteAddress, headers: { authorization, 'content-type': JSON_TYPE }, payload: input });

describe('failed authentications per source address (any serial)', () => {
  it('past sourceFailureLimit an address rotating serials gets 429 + Retry-After before any password check', async () => {
    let now = Date.parse('2030-01-01T00:00:00Z');
    const f = await bootstrapFixture({ now: () => now, config: { failureWindow: 60, failureLimit: 10, sourceFailureLimit: 3, passwordChecks: 1, passwordQueue: 0 } });
    f.store.upsert({ serial: 'GOOD-1', password: 'right', config: 'c' });
    f.store.upsert({ serial: 'GOOD-2', password: 'right', config: 'c' });
    // a password verified before the flood (the cache: no scrypt needed later)
    expect((await gbd(f, basic('GOOD-1', 'right'))).statusCode).toBe(200);
    // three guesses, three serials (one registered, two unknown): each its own (serial, address) key
    for (const serial of ['GOOD-2', 'ROT-1', 'ROT-2']) expect((await gbd(f, basic(serial, 'guess'))).statusCode).toBe(401);
    now += 15_000;
    const limited = await gbd(f, basic('ROT-3', 'guess'));
    expect(limited.statusCode).toBe(429);
    expect(limited.headers['retry-after']).toBe('45');
    expect(JSON.parse(limited.body)['ietf-restconf:errors'].error[0]['error-tag']).toBe('resource-denied');
    // The address is refused for anything needing a scrypt, right password included...
    expect((await gbd(f, basic('GOOD-2', 'right'))).statusCode).toBe(429);
    // ...but a credential verified before still passes, and other addresses are unaffected.
    expect((await gbd(f, basic('GOOD-1', 'right'))).statusCode).toBe(200);
    expect((await gbd(f, basic('ROT-4', 'guess'), '192.0.2.77')).statusCode).toBe(401);
    expect((await gbd(f, basic('GOOD-2', 'right'), '192.0.2.78')).statusCode).toBe(200);
    // Refusals hold no slot: with one slot and no queue, a rotating flood is all 429, never 503.
    const flood = await Promise.all(Array.from({ length: 12 }, (_, i) => gbd(f, basic(`ROT-F${i}`, 'guess'))));
    expect(flood.map((r) => r.statusCode)).toEqual(Array(12).fill(429));
    // The window ends: the address may try again.
    now += 46_000;
    expect((await gbd(f, basic('ROT-5', 'guess'))).statusCode).toBe(401);
  });

  it('checks from one address queued before its budget ran out are refused 429 at their turn, without scrypt', async () => {
    const f = await bootstrapFixture({ config: { failureLimit: 100, sourceFailureLimit: 3, passwordChecks: 1, passwordQueue: 100 } });
    const replies = await Promise.all(Array.from({ length: 10 }, (_, i) => gbd(f, basic(`QROT-${i}`, 'guess'))));
    const count = (status: number) => replies.filter((r) => r.statusCode === status).length;
    // As for the per-serial limit: a fourth check may have started before the third failure was counted.
    expect(count(401)).toBeGreaterThanOrEqual(3);
    expect(count(401)).toBeLessThanOrEqual(4);
    expect(count(429)).toBe(10 - count(401));
  });
});

describe('verification slots per source address', () => {
  // The order in which checks get a slot, read from the gate (it runs when a check's turn comes).
  async function startOrder(perSource: number): Promise<string[]> {
    const verifier = new PasswordVerifier(2, 100, 10_000, perSource);
    const order: string[] = [];
    const check = (name: string, source: string) => verifier.verify('guess', DUMMY_PASSWORD_HASH, () => (order.push(name), undefined), source);
    await Promise.all([check('A1', '192.0.2.1'), check('A2', '192.0.2.1'), check('A3', '192.0.2.1'), check('B1', '192.0.2.2')]);
    return order;
  }

  it('with passwordChecksPerSource 1, a host flooding checks holds one of two slots; another host gets the other at once', async () => {
    expect(await startOrder(1)).toEqual(['A1', 'B1', 'A2', 'A3']);
  });

  it('without it (0, the default), the flood takes both slots first: FIFO', async () => {
    expect(await startOrder(0)).toEqual(['A1', 'A2', 'A3', 'B1']);
  });

  it('waiting behind its source counts towards the queue bound (503 past passwordChecks + passwordQueue)', async () => {
    const verifier = new PasswordVerifier(1, 1, 10_000, 1);
    const outcomes = await Promise.allSettled([0, 1, 2].map(() => verifier.verify('guess', DUMMY_PASSWORD_HASH, undefined, '192.0.2.1')));
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
    expect(outcomes[2]).toMatchObject({ reason: { code: 'SZTP_BUSY' } });
  });
});
