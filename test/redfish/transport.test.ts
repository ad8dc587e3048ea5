// The Redfish transport on real sockets: timeouts, TLS (CA bundle, pinned fingerprint, insecure
// opt-in), sessions (re-login on 401, DELETE on every exit path), retries of transients only,
// paging, the ETag ladder, 202 task monitors, HTML and empty error bodies, the request queue.
import { X509Certificate } from 'node:crypto';
import { Writable } from 'node:stream';
import * as x509 from '@peculiar/x509';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openBmcSession } from '../../src/redfish/index.js';
import { RedfishTransport, realClock, type RedfishResponse } from '../../src/redfish/transport.js';
import { isZtpError, type ZtpError } from '../../src/errors.js';
import { createLogger, silentLogger } from '../../src/log.js';
import { issueUnder, selfSignedCa } from '../../src/pki/lab.js';
import type { PemKeyPair } from '../../src/pki/material.js';
import type { StepOutcome } from '../../src/redfish/api.js';
import { TestBmc, redfishError, type Recorded, type Reply } from './server.js';
import { basicActions, miniTree, paths } from './tree.js';

const creds = { username: 'root', password: 'secret-pw-1' };
const fast = { timeouts: { mediaMs: 1_000, powerMs: 2_000, pollMs: 10, pollCapMs: 50, taskMs: 5_000 }, tuning: { backoffBaseMs: 10, backoffCapMs: 50, retries: 2 } };
const P = paths();

function capture() {
  const lines: string[] = [];
  const stream = new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } });
  return { log: createLogger('debug', stream), lines };
}

async function rejection(p: Promise<unknown>): Promise<ZtpError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  if (!isZtpError(err)) throw new Error(`expected a ZtpError, got ${String(err)}`);
  return err;
}

let bmc: TestBmc | undefined;
afterEach(async () => {
  await bmc?.close();
  bmc = undefined;
});

function chain(...handlers: ((r: Recorded, b: TestBmc) => Reply | undefined)[]) {
  return (r: Recorded, b: TestBmc) => {
    for (const h of handlers) {
      const reply = h(r, b);
      if (reply) return reply;
    }
    return undefined;
  };
}

describe('sessions', () => {
  it('logs in with a session, uses its token, and DELETEs it on close', async () => {
    bmc = await TestBmc.start({ tree: miniTree(), sessions: creds });
    const session = await openBmcSession({ url: bmc.url, ...creds }, { log: silentLogger, ...fast });
    expect(session.sessionMode).toBe('session');
    await session.powerState();
    expect(bmc.requestsOf('GET', P.sys).at(-1)!.headers['x-auth-token']).toMatch(/^[0-9a-f]{32}$/);
    expect(bmc.liveSessions.size).toBe(1);
    await session.close();
    await session.close();
    expect(bmc.liveSessions.size).toBe(0);
    expect(bmc.deletedSessions).toEqual(['/redfish/v1/SessionService/Sessions/1']);
  });

  it('falls back to HTTP Basic when the BMC has no session service', async () => {
    bmc = await TestBmc.start({ tree: miniTree(), basic: creds });
    const session = await openBmcSession({ url: bmc.url, ...creds }, { log: silentLogger, ...fast });
    try {
      expect(session.sessionMode).toBe('basic');
      expect(await session.powerState()).toBe('Off');
      expect(bmc.requestsOf('GET', P.sys).at(-1)!.headers.authorization).toBe('Basic ' + Buffer.from('root:secret-pw-1').toString('base64'));
    } finally {
      await session.close();
    }
  });

  it('wrong credentials: REDFISH_AUTH_FAILED at login, nothing left logged in', async () => {
    bmc = await TestBmc.start({ tree: miniTree(), sessions: creds });
    const err = await rejection(openBmcSession({ url: bmc.url, username: 'root', password: 'nope' }, { log: silentLogger, ...fast }));
    expect(err.code).toBe('REDFISH_AUTH_FAILED');
    expect(err.details).toMatchObject({ httpStatus: 401, step: 'login', messageId: 'Base.1.8.NoValidSession' });
  });

  it('re-logs in once on a 401 (session dropped by the BMC), and a second 401 is AUTH_FAILED', async () => {
    bmc = await TestBmc.start({ tree: miniTree(), sessions: creds });
    const session = await openBmcSession({ url: bmc.url, ...creds }, { log: silentLogger, ...fast });
    try {
      bmc.dropSessions();
      expect(await session.powerState()).toBe('Off');
      expect(bmc.requestsOf('POST', '/SessionService/Sessions')).toHaveLength(2);
      // A BMC that keeps refusing: one re-login, then a typed error.
      bmc.options.handler = (r) => (r.method === 'GET' && r.path === P.sys ? { status: 401, body: redfishError('Base.1.8.NoValidSession', 'no') } : undefined);
      const err = await rejection(session.powerState());
      expect(err.code).toBe('REDFISH_AUTH_FAILED');
      expect(bmc.requestsOf('POST', '/SessionService/Sessions')).toHaveLength(3);
    } finally {
      await session.close();
    }
    expect(bmc.liveSessions.size).toBe(0);
  });

  it('a failure while probing after login still DELETEs the session', async () => {
    bmc = await TestBmc.start({ tree: miniTree(), sessions: creds, handler: (r) => (r.path === P.sys && r.method === 'GET' ? { status: 500, body: '' } : undefined) });
    const err = await rejection(openBmcSession({ url: bmc.url, ...creds }, { log: silentLogger, ...fast }));
    expect(err.code).toBe('REDFISH_BAD_RESPONSE');
    expect(err.details).toMatchObject({ httpStatus: 500, uri: P.sys });
    expect(bmc.deletedSessions).toHaveLength(1);
    expect(bmc.liveSessions.size).toBe(0);
  });

  it('an abort mid-operation rejects with REDFISH_ABORTED and logs the session out without close()', async () => {
    bmc = await TestBmc.start({ tree: miniTree(), sessions: creds });
    const ac = new AbortController();
    const session = await openBmcSession({ url: bmc.url, ...creds }, { log: silentLogger, signal: ac.signal, ...fast, timeouts: { ...fast.timeouts, powerMs: 60_000 } });
    const waiting = session.waitForPower('On');
    setTimeout(() => ac.abort(), 100);
    const err = await rejection(waiting);
    expect(err.code).toBe('REDFISH_ABORTED');
    await new Promise((r) => setTimeout(r, 100));
    expect(bmc.liveSessions.size).toBe(0);
    expect(bmc.deletedSessions).toHaveLength(1);
    await session.close();
  });

  it('an abort of a hung request ends it at once and still deletes the session', async () => {
    bmc = await TestBmc.start({ tree: miniTree(), sessions: creds });
    const session = await openBmcSession({ url: bmc.url, ...creds }, { log: silentLogger, ...fast });
    bmc.options.handler = (r) => (r.method === 'GET' && r.path === P.sys ? { status: 200, hang: true } : undefined);
    const ac = new AbortController();
    const pending = session.powerState({ signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    expect((await rejection(pending)).code).toBe('REDFISH_ABORTED');
    await session.close();
    expect(bmc.liveSessions.size).toBe(0);
  });

  it('factory-default password: PasswordChangeRequired → PATCH the account, log in again, record the step; passwords never logged', async () => {
    const { log, lines } = capture();
    let current = 'factory-0penBmc';
    bmc = await TestBmc.start({
      tree: miniTree(),
      handler: (r, b) => {
        if (r.method === 'POST' && r.path === '/redfish/v1/SessionService/Sessions') {
          const body = r.body as { Password: string };
          if (body.Password !== current) return { status: 401, body: redfishError('Base.1.8.NoValidSession', 'bad') };
          const must = current.startsWith('factory');
          return {
            status: 201,
            headers: { 'x-auth-token': must ? 'tok-restricted' : 'tok-full', location: '/redfish/v1/SessionService/Sessions/' + (must ? '1' : '2') },
            body: must ? { '@Message.ExtendedInfo': [{ MessageId: 'Base.1.8.PasswordChangeRequired', MessageArgs: ['/redfish/v1/AccountService/Accounts/1'], Severity: 'Critical' }] } : {},
          };
        }
        if (r.method === 'DELETE') return { status: 204 };
        if (r.headers['x-auth-token'] === 'tok-restricted') {
          if (r.method === 'PATCH' && r.path === '/redfish/v1/AccountService/Accounts/1') {
            current = (r.body as { Password: string }).Password;
            return { status: 204 };
          }
          if (r.path !== '/redfish/v1') return { status: 403, body: redfishError('Base.1.8.PasswordChangeRequired', 'change it') };
        }
        void b;
        return undefined;
      },
    });
    const steps: StepOutcome[] = [];
    const session = await openBmcSession({ url: bmc.url, username: 'root', password: 'factory-0penBmc', newPassword: 'Configured-Pw-9' }, { log, onStep: (s) => steps.push(s), ...fast });
    try {
      expect(current).toBe('Configured-Pw-9');
      expect(await session.powerState()).toBe('Off');
      expect(steps.map((s) => `${s.step}:${s.outcome}`)).toEqual(['password-change:ok', 'login:ok']);
      expect(steps[0]!.via).toBe('account-service');
    } finally {
      await session.close();
    }
    const text = lines.join('');
    expect(text).toContain('password-change');
    expect(text).not.toContain('Configured-Pw-9');
    expect(text).not.toContain('factory-0penBmc');
    expect(JSON.stringify(steps)).not.toContain('Configured-Pw-9');
  });

  it('PasswordChangeRequired and no new password configured: typed error, not a silent failure', async () => {
    bmc = await TestBmc.start({
      tree: miniTree(),
      handler: (r) => (r.method === 'POST' && r.path.endsWith('/Sessions')
        ? { status: 201, headers: { 'x-auth-token': 't', location: '/redfish/v1/SessionService/Sessions/1' }, body: { '@Message.ExtendedInfo': [{ MessageId: 'Base.1.8.PasswordChangeRequired', Severity: 'Critical' }] } }
        : r.method === 'DELETE' ? { status: 204 } : undefined),
    });
    const err = await rejection(openBmcSession({ url: bmc.url, username: 'root', password: 'x' }, { log: silentLogger, ...fast }));
    expect(err.code).toBe('REDFISH_PASSWORD_CHANGE_REQUIRED');
    expect(bmc.requestsOf('DELETE')).toHaveLength(1);
  });
});

describe('timeouts and transients', () => {
  it('a BMC that never answers: REDFISH_TIMEOUT after the headers timeout, retried only as configured', async () => {
    bmc = await TestBmc.start({ tree: miniTree(), handler: (r) => (r.path === '/redfish/v1/Systems' ? { status: 200, hang: true } : undefined) });
    const started = Date.now();
    const err = await rejection(openBmcSession({ url: bmc.url }, { log: silentLogger, ...fast, tuning: { ...fast.tuning, headersTimeoutMs: 150, retries: 1 } }));
    expect(err.code).toBe('REDFISH_TIMEOUT');
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(bmc.requestsOf('GET', '/redfish/v1/Systems')).toHaveLength(2);
  });

  it('a body that stalls: REDFISH_TIMEOUT from the body timeout', async () => {
    bmc = await TestBmc.start({ tree: miniTree(), handler: (r, b) => (r.path === P.sys ? { status: 200, body: b.resource(P.sys), stallBody: true } : undefined) });
    const err = await rejection(openBmcSession({ url: bmc.url }, { log: silentLogger, ...fast, tuning: { ...fast.tuning, bodyTimeoutMs: 150, retries: 0 } }));
    expect(err.code).toBe('REDFISH_TIMEOUT');
    expect(err.message).toMatch(/body/);
  });

  it('503 with Retry-After is waited out and retried; the same without Retry-After on a POST is not', async () => {
    let busy = 1;
    bmc = await TestBmc.start({
      tree: miniTree(),
      handler: chain((r) => (r.path === P.sys && r.method === 'GET' && busy-- > 0 ? { status: 503, headers: { 'retry-after': '1' }, body: redfishError('Base.1.8.ServiceTemporarilyUnavailable', 'busy') } : undefined), basicActions()),
    });
    const t0 = Date.now();
    const session = await openBmcSession({ url: bmc.url }, { log: silentLogger, ...fast });
    try {
      expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
      expect(bmc.requestsOf('GET', P.sys).length).toBeGreaterThanOrEqual(2);
      bmc.options.handler = (r) => (r.method === 'POST' ? { status: 503, body: '' } : undefined);
      const err = await rejection(session.reset('On'));
      expect(err.code).toBe('REDFISH_UNAVAILABLE');
      expect(bmc.requestsOf('POST', P.reset)).toHaveLength(1);
    } finally {
      await session.close();
    }
  });

  it('a connection reset is retried on GET; a POST action only after the BMC state shows it did not take, and once at most', async () => {
    let resets = 1;
    bmc = await TestBmc.start({ tree: miniTree(), handler: chain((r) => (r.path === P.sys && r.method === 'GET' && resets-- > 0 ? { status: 0, destroy: true } : undefined)) });
    const session = await openBmcSession({ url: bmc.url }, { log: silentLogger, ...fast });
    try {
      expect(bmc.requestsOf('GET', P.sys).length).toBe(2);
      bmc.options.handler = (r) => (r.method === 'POST' ? { status: 0, destroy: true } : undefined);
      const err = await rejection(session.reset('On'));
      expect(err.code).toBe('REDFISH_UNREACHABLE');
      // the first answer was lost, the system still Off: sent once more, and that one lost too
      expect(bmc.requestsOf('POST', P.reset)).toHaveLength(2);
    } finally {
      await session.close();
    }
  });

  it('a BMC "not ready" MessageId listed by a quirk (iDRAC SYS518) is retried like a 503', async () => {
    let notReady = 2;
    const tree = miniTree();
    (tree['/redfish/v1'] as Record<string, unknown>).Vendor = 'Dell';
    bmc = await TestBmc.start({
      tree,
      handler: chain((r) => (r.method === 'POST' && r.path === P.reset && notReady-- > 0 ? { status: 500, body: redfishError('IDRAC.2.8.SYS518', 'iDRAC is not ready. The configuration values cannot be accessed.') } : undefined), basicActions()),
    });
    const session = await openBmcSession({ url: bmc.url }, { log: silentLogger, ...fast });
    try {
      expect(session.quirkIds).toEqual(['idrac']);
      expect(await session.reset('On')).toEqual({ outcome: 'reset', resetType: 'On' });
      expect(bmc.requestsOf('POST', P.reset)).toHaveLength(3);
    } finally {
      await session.close();
    }
  });

  it('refused connections are UNREACHABLE, quickly', async () => {
    const probe = await TestBmc.start({ tree: miniTree() });
    const url = probe.url;
    await probe.close();
    const err = await rejection(openBmcSession({ url }, { log: silentLogger, ...fast, tuning: { ...fast.tuning, retries: 1 } }));
    expect(err.code).toBe('REDFISH_UNREACHABLE');
  });
});

describe('protocol details', () => {
  it('follows Members@odata.nextLink to find the DPU on page two', async () => {
    const tree = miniTree();
    tree['/redfish/v1/Systems'] = { Members: [{ '@odata.id': '/redfish/v1/Systems/Host' }], 'Members@odata.nextLink': '/redfish/v1/Systems?$skip=1' };
    tree['/redfish/v1/Systems/Host'] = { '@odata.id': '/redfish/v1/Systems/Host', Id: 'Host', SystemType: 'Physical' };
    bmc = await TestBmc.start({
      tree,
      handler: (r) => (r.path === '/redfish/v1/Systems' && r.query === '$skip=1' ? { status: 200, body: { Members: [{ '@odata.id': P.sys }] } } : undefined),
    });
    const session = await openBmcSession({ url: bmc.url }, { log: silentLogger, ...fast });
    try {
      expect((await session.inventory()).systemId).toBe('System1');
      expect(bmc.requestsOf('GET', '/redfish/v1/Systems').map((r) => r.query).slice(0, 2)).toEqual(['', '$skip=1']);
    } finally {
      await session.close();
    }
  });

  it('ETag ladder: weak If-Match → strong form on 412 → no If-Match', async () => {
    const tree = miniTree();
    bmc = await TestBmc.start({ tree, acceptPatch: true, etags: 'strong' });
    const transport = new RedfishTransport({ url: bmc.url }, { log: silentLogger, tuning: fast.tuning });
    try {
      const strong = bmc.etagOf(bmc.resource(P.sys));
      const first = await transport.patch(P.sys, { AssetTag: 'a' }, { etag: `W/${strong}` });
      expect(first.via).toBe('if-match-strong');
      expect(bmc.requestsOf('PATCH').map((r) => r.headers['if-match'])).toEqual([`W/${strong}`, strong]);
      // A BMC that rejects If-Match outright (OpenBMC, iDRAC10): the last rung sends none.
      bmc.options.handler = (r) => (r.method === 'PATCH' && r.headers['if-match'] ? { status: 412, body: redfishError('Base.1.8.PreconditionFailed', 'no') } : undefined);
      const second = await transport.patch(P.sys, { AssetTag: 'b' }, { etag: 'W/"whatever-gzip"' });
      expect(second.via).toBe('no-if-match');
      expect(bmc.requestsOf('PATCH').slice(2).map((r) => r.headers['if-match'])).toEqual(['W/"whatever"', '"whatever"', undefined]);
      expect(bmc.resource(P.sys)!.AssetTag).toBe('b');
    } finally {
      await transport.close();
    }
  });

  it('202 task monitor: polled with Retry-After until done; a task in Exception is REDFISH_TASK_FAILED with its message', async () => {
    let polls = 0;
    let outcome = 'Completed';
    bmc = await TestBmc.start({
      tree: miniTree(),
      handler: (r, b): Reply | undefined => {
        if (r.method === 'POST' && r.path === P.reset) {
          polls = 0;
          return { status: 202, headers: { location: '/redfish/v1/TaskService/TaskMonitors/7', 'retry-after': '0' }, body: {} };
        }
        if (r.path === '/redfish/v1/TaskService/TaskMonitors/7') {
          if (++polls < 3) return { status: 202, headers: { 'retry-after': '0' }, body: { TaskState: 'Running' } };
          if (outcome === 'Completed') b.resource(P.sys)!.PowerState = 'On';
          return { status: 200, body: { '@odata.id': '/redfish/v1/TaskService/Tasks/7', TaskState: outcome, Messages: outcome === 'Completed' ? [] : [{ MessageId: 'Base.1.8.InternalError', Message: 'power sequencer fault', Severity: 'Critical' }] } };
        }
        return undefined;
      },
    });
    const session = await openBmcSession({ url: bmc.url }, { log: silentLogger, ...fast });
    try {
      expect(await session.reset('On')).toMatchObject({ outcome: 'reset' });
      expect(polls).toBe(3);
      expect(await session.powerState()).toBe('On');
      outcome = 'Exception';
      const err = await rejection(session.reset('ForceRestart'));
      expect(err.code).toBe('REDFISH_TASK_FAILED');
      expect(err.details).toMatchObject({ taskState: 'Exception', messageId: 'Base.1.8.InternalError', step: 'reset' });
    } finally {
      await session.close();
    }
  });

  it('Retry-After: 0 on a task still running is not a licence to spin: every poll waits at least the backoff base (CI flake of client-emulator, issue 11)', async () => {
    // A BMC whose estimate has run out keeps answering 202 + Retry-After: 0. Polling at once
    // turned the BFB install into a busy loop that starved the BMC's own download under load.
    let polls = 0;
    bmc = await TestBmc.start({
      tree: miniTree(),
      handler: (r): Reply | undefined => {
        if (r.path !== '/redfish/v1/TaskService/TaskMonitors/9') return undefined;
        if (++polls < 6) return { status: 202, headers: { 'retry-after': '0' }, body: { TaskState: 'Running' } };
        return { status: 200, body: { '@odata.id': '/redfish/v1/TaskService/Tasks/9', TaskState: 'Completed' } };
      },
    });
    const sleeps: number[] = [];
    const clock = { now: () => Date.now(), sleep: (ms: number, signal?: AbortSignal) => (sleeps.push(ms), realClock.sleep(ms, signal)) };
    const transport = new RedfishTransport({ url: bmc.url }, { log: silentLogger, clock, tuning: { ...fast.tuning, backoffBaseMs: 40, retryAfterCapMs: 1_000 } });
    try {
      const first: RedfishResponse = { status: 202, headers: { location: '/redfish/v1/TaskService/TaskMonitors/9', 'retry-after': '0' }, text: '', json: {}, uri: '/redfish/v1/Systems/1', messages: [] };
      const end = await transport.awaitTask(first, { timeoutMs: 5_000 });
      expect(end.taskState).toBe('Completed');
      expect(polls).toBe(6);
      expect(sleeps).toHaveLength(6);
      expect(Math.min(...sleeps)).toBe(40);
    } finally {
      await transport.close();
    }
  });

  it('HTML and empty error bodies become typed errors with a readable message', async () => {
    bmc = await TestBmc.start({ tree: miniTree() });
    const transport = new RedfishTransport({ url: bmc.url }, { log: silentLogger, tuning: { ...fast.tuning, retries: 0 } });
    try {
      bmc.options.handler = () => ({ status: 502, headers: { 'content-type': 'text/html' }, body: '<html><head><title>502 Bad Gateway</title><style>x{}</style></head><body><h1>Bad Gateway</h1></body></html>' });
      const html = await rejection(transport.get(P.sys, { step: 'inventory' }));
      expect(html.code).toBe('REDFISH_BAD_RESPONSE');
      expect(html.message).toContain('502 Bad Gateway');
      expect(html.details).toMatchObject({ httpStatus: 502, uri: P.sys, step: 'inventory', messageId: null });
      bmc.options.handler = () => ({ status: 400 });
      const empty = await rejection(transport.request('POST', P.reset, { body: {} }));
      expect(empty.code).toBe('REDFISH_ACTION_FAILED');
      expect(empty.message).toContain('answered 400');
      bmc.options.handler = () => ({ status: 200, headers: { 'content-type': 'text/html' }, body: '<html>login page</html>' });
      expect((await rejection(transport.get(P.sys))).code).toBe('REDFISH_BAD_RESPONSE');
      // The most severe ExtendedInfo message wins.
      bmc.options.handler = () => ({ status: 400, body: { error: { code: 'Base.1.8.GeneralError', message: 'x', '@Message.ExtendedInfo': [{ MessageId: 'Base.1.8.Success', Severity: 'OK', Message: 'fine' }, { MessageId: 'Base.1.8.PropertyValueNotInList', Severity: 'Warning', Message: 'bad value' }] } } });
      const worst = await rejection(transport.request('PATCH', P.sys, { body: {} }));
      expect(worst.details).toMatchObject({ messageId: 'Base.1.8.PropertyValueNotInList', bmcMessage: 'bad value' });
    } finally {
      await transport.close();
    }
  });

  it('Accept-Encoding: identity is sent, and dropped after a 406 (iLO Gen10 Plus)', async () => {
    bmc = await TestBmc.start({ tree: miniTree(), handler: (r) => (r.headers['accept-encoding'] === 'identity' && r.path !== '/redfish/v1' ? { status: 406, body: '' } : undefined) });
    const session = await openBmcSession({ url: bmc.url }, { log: silentLogger, ...fast });
    try {
      expect(bmc.requests[0]!.headers['accept-encoding']).toBe('identity');
      expect(await session.powerState()).toBe('Off');
      expect(bmc.requests.at(-1)!.headers['accept-encoding']).toBeUndefined();
      expect(bmc.requests.filter((r) => r.path === '/redfish/v1/Systems')).toHaveLength(2);
    } finally {
      await session.close();
    }
  });

  it('one request in flight per BMC by default, even from parallel calls; more when configured', async () => {
    bmc = await TestBmc.start({ tree: miniTree(), handler: (r, b) => (r.path === P.sys ? { status: 200, body: b.resource(P.sys), delayMs: 20 } : undefined) });
    const session = await openBmcSession({ url: bmc.url }, { log: silentLogger, ...fast });
    await Promise.all(Array.from({ length: 6 }, () => session.powerState()));
    await session.close();
    expect(bmc.maxInFlight).toBe(1);
    const wide = await openBmcSession({ url: bmc.url, concurrency: 3 }, { log: silentLogger, ...fast });
    await Promise.all(Array.from({ length: 6 }, () => wide.powerState()));
    await wide.close();
    expect(bmc.maxInFlight).toBe(3);
  });

  it('a bad endpoint is REDFISH_INVALID_ENDPOINT before any socket', async () => {
    expect((await rejection(openBmcSession({ url: 'ftp://bmc' }, { log: silentLogger }))).code).toBe('REDFISH_INVALID_ENDPOINT');
    expect((await rejection(openBmcSession({ url: 'https://root:pw@bmc' }, { log: silentLogger }))).code).toBe('REDFISH_INVALID_ENDPOINT');
    expect((await rejection(openBmcSession({ url: 'https://127.0.0.1:1', fingerprint256: 'abc' }, { log: silentLogger }))).code).toBe('REDFISH_INVALID_ENDPOINT');
  });
});

describe('TLS', () => {
  let ca: PemKeyPair;
  let leaf: PemKeyPair;
  let otherCa: PemKeyPair;
  beforeAll(async () => {
    ca = (await selfSignedCa('CN=Test BMC CA', 1)).pair;
    otherCa = (await selfSignedCa('CN=Someone else', 1)).pair;
    leaf = await issueUnder(ca, 'CN=127.0.0.1', 2, [new x509.SubjectAlternativeNameExtension([{ type: 'ip', value: '127.0.0.1' }])]);
  });

  it('verifies against the per-BMC CA bundle, and refuses a certificate from another CA', async () => {
    bmc = await TestBmc.start({ tree: miniTree(), tls: leaf });
    const ok = await openBmcSession({ url: bmc.url, caBundle: ca.certPem }, { log: silentLogger, ...fast });
    expect(await ok.powerState()).toBe('Off');
    await ok.close();
    expect((await rejection(openBmcSession({ url: bmc.url, caBundle: otherCa.certPem }, { log: silentLogger, ...fast }))).code).toBe('REDFISH_TLS_FAILED');
    expect((await rejection(openBmcSession({ url: bmc.url }, { log: silentLogger, ...fast }))).code).toBe('REDFISH_TLS_FAILED');
  });

  it('pins the SHA-256 fingerprint of the leaf instead of a CA; a wrong pin is refused', async () => {
    bmc = await TestBmc.start({ tree: miniTree(), tls: leaf });
    const fp = new X509Certificate(leaf.certPem).fingerprint256;
    const ok = await openBmcSession({ url: bmc.url, fingerprint256: fp }, { log: silentLogger, ...fast });
    expect(await ok.powerState()).toBe('Off');
    await ok.close();
    const before = bmc.requests.length;
    const wrong = fp.replace(/^../, fp.startsWith('00') ? '11' : '00');
    const err = await rejection(openBmcSession({ url: bmc.url, fingerprint256: wrong.replace(/:/g, '').toLowerCase() }, { log: silentLogger, ...fast }));
    expect(err.code).toBe('REDFISH_TLS_FAILED');
    expect(bmc.requests).toHaveLength(before);
  });

  it('insecure only by opt-in, and logged as a warning each session', async () => {
    bmc = await TestBmc.start({ tree: miniTree(), tls: leaf });
    const { log, lines } = capture();
    for (let i = 0; i < 2; i++) {
      const s = await openBmcSession({ url: bmc.url, insecure: true }, { log, ...fast });
      await s.close();
    }
    const warnings = lines.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level === 40 && /TLS verification/.test(l.msg));
    expect(warnings.length).toBeGreaterThanOrEqual(2);
  });
});
