// A factory-fresh BMC (Base PasswordChangeRequired) in zero touch: the onboarding conductor and
// `ztp bmc <serial>` change the password through AccountService, keep the new one sealed in the
// device record before logging in again with it, record the step, and never show either password
// (logs, history, --json). Against the BMC emulator's factory-password fault; the refusal and
// lost-answer paths against a scripted BMC.
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { EXIT } from '../../src/cli/common.js';
import { validateConfig } from '../../src/config.js';
import { DeviceStore } from '../../src/devices/store.js';
import { isZtpError } from '../../src/errors.js';
import { createLogger, silentLogger } from '../../src/log.js';
import { Conductor } from '../../src/onboarding/conductor.js';
import { startBmcEmulator, ZERO_TIMING, type RunningBmcEmulator } from '../../src/redfish/emulator/index.js';
import { openBmcSession, type BmcEndpoint } from '../../src/redfish/index.js';
import { DEVICE, ISO_NAME, startImageServer, type ImageServer } from '../redfish-emulator/helpers.js';
import { TestBmc, redfishError, type Recorded, type Reply } from './server.js';
import { miniTree } from './tree.js';

const fast = { tuning: { headersTimeoutMs: 2_000, bodyTimeoutMs: 2_000, retries: 2, backoffBaseMs: 10, backoffCapMs: 50 }, timeouts: { mediaMs: 2_000, powerMs: 5_000, pollMs: 10, pollCapMs: 50, taskMs: 5_000 } };

function capture() {
  const lines: string[] = [];
  const stream = new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } });
  return { log: createLogger('debug', stream), text: () => lines.join('') };
}

async function ztp(dataDir: string, ...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['--data-dir', dataDir, ...args], { out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** The emulator accepts this password without asking for a change (no newPassword, no callback: it would throw). */
async function acceptedAsIs(endpoint: BmcEndpoint): Promise<boolean> {
  try {
    const s = await openBmcSession(endpoint, { log: silentLogger, ...fast });
    await s.close();
    return true;
  } catch (err) {
    if (isZtpError(err, 'REDFISH_AUTH_FAILED') || isZtpError(err, 'REDFISH_PASSWORD_CHANGE_REQUIRED')) return false;
    throw err;
  }
}

async function until(what: string, ms: number, probe: () => boolean): Promise<void> {
  const deadline = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('factory-default BMC password against the emulator (factory-password fault)', () => {
  let images: ImageServer;
  let emu: RunningBmcEmulator;
  beforeAll(async () => {
    images = await startImageServer();
  });
  afterAll(async () => {
    await emu?.close();
    await images?.stop();
  });

  // The factory password as the record's only password, or as its factory password alone (no
  // configured one): either way the conductor generates the new one.
  it.each(['password', 'factoryPassword'] as const)('record with bmc.%s = factory: the conductor changes it, seals the new one in the record before re-login, records the step, shows neither', async (field) => {
    const serial = `${DEVICE.serial}-${field}`;
    // A factory password that occurs nowhere else (the generic one, "password", is in every step name).
    emu = await startBmcEmulator({ count: 1, quirks: 'generic', timing: ZERO_TIMING, mediaCa: images.caPem, password: 'Factory-0penBmc-Q7', faults: { factoryPassword: true } });
    const ep = emu.endpoints[0]!;
    const factory = ep.password;
    const store = images.store;
    store.upsert({ serial: serial, bootImage: ISO_NAME, bmc: { address: ep.url, username: ep.username, [field]: factory } });
    const { log, text } = capture();
    let sealedAtRelogin: string | undefined;
    const conductor = new Conductor({
      store,
      db: images.db,
      log,
      settings: validateConfig({}).onboarding,
      // The service's connector is openBmcSession itself; here with the test's short deadlines,
      // and a look at the record at the moment the client logs in with the new password.
      connect: (endpoint, options) => openBmcSession(endpoint, {
        ...options,
        ...fast,
        onPasswordChange: async (pw) => {
          await options.onPasswordChange?.(pw);
          sealedAtRelogin = store.get(serial)!.bmc!.password;
        },
      }),
      imageUrlFor: () => images.deviceImageUrl(true),
      imageIdentity: () => ({ bootImage: ISO_NAME, sha256: null }),
    });
    conductor.start();
    try {
      expect(conductor.onboard([serial])[0]!.outcome).toBe('queued');
      await until('the BMC steps', 20_000, () => ['booting', 'complete'].includes(conductor.job(serial)!.step) || conductor.job(serial)!.status === 'failed');
      expect(conductor.job(serial)).toMatchObject({ step: 'booting', status: 'running' });
    } finally {
      await conductor.stop();
    }
    const bmcAccount = emu.emulator.bmcs[0]!.account;
    const stored = store.get(serial)!.bmc!.password!;
    expect(bmcAccount.passwordChangeRequired).toBe(false);
    expect(stored).not.toBe(factory);
    expect(stored).toBe(bmcAccount.password);
    expect(sealedAtRelogin).toBe(stored);
    expect(await acceptedAsIs({ url: ep.url, username: ep.username, password: stored })).toBe(true);
    expect(await acceptedAsIs({ url: ep.url, username: ep.username, password: factory })).toBe(false);
    // Sealed at rest: the row holds no clear password.
    const column = (images.db.prepare(`SELECT bmc FROM devices WHERE serial = ?`).get(serial) as { bmc: string }).bmc;
    expect(column).not.toContain(stored);
    const history = store.history(serial);
    expect(history.find((e) => e.source === 'redfish' && e.type === 'password-change')).toMatchObject({ data: { outcome: 'ok', via: 'account-service' } });
    expect(history.filter((e) => e.source === 'admin' && e.type === 'device-updated').at(-1)).toMatchObject({ data: { actor: 'onboarding', fields: ['bmc'] } });
    for (const secret of [stored, factory]) {
      expect(JSON.stringify(history)).not.toContain(secret);
      expect(text()).not.toContain(secret);
    }
    expect(text()).toContain('password-change');
    const dataDir = images.db.name.replace(/\/ztp\.db$/, '');
    for (const args of [['device', 'show', serial, '--json'], ['device', 'list', '--json']]) {
      const r = await ztp(dataDir, ...args);
      expect(r.code).toBe(EXIT.OK);
      for (const secret of [stored, factory]) expect(r.out + r.err).not.toContain(secret);
    }
    await emu.close();
  });

  it('a configured password and the factory one in the record: the conductor sets the configured one, keeps both sealed', async () => {
    await emu?.close();
    emu = await startBmcEmulator({ count: 1, quirks: 'generic', timing: ZERO_TIMING, mediaCa: images.caPem, password: 'Factory-Default-K2', faults: { factoryPassword: true } });
    const ep = emu.endpoints[0]!;
    const serial = 'SN-PW-CONF';
    const configured = 'Configured-By-Admin-55';
    const dataDir = images.db.name.replace(/\/ztp\.db$/, '');
    const add = await ztp(dataDir, 'device', 'add', serial, '--boot-image', ISO_NAME, '--bmc', ep.url, '--bmc-user', ep.username, '--bmc-password', configured, '--bmc-factory-password', ep.password, '--json');
    expect(add.code).toBe(EXIT.OK);
    const store = images.store;
    const { log, text } = capture();
    const conductor = new Conductor({
      store,
      db: images.db,
      log,
      settings: validateConfig({}).onboarding,
      connect: (endpoint, options) => openBmcSession(endpoint, { ...options, ...fast }),
      imageUrlFor: () => images.deviceImageUrl(true),
      imageIdentity: () => ({ bootImage: ISO_NAME, sha256: null }),
    });
    conductor.start();
    try {
      conductor.onboard([serial]);
      await until('the BMC steps', 20_000, () => conductor.job(serial)!.step === 'booting' || conductor.job(serial)!.status === 'failed');
      expect(conductor.job(serial)).toMatchObject({ step: 'booting', status: 'running' });
    } finally {
      await conductor.stop();
    }
    expect(emu.emulator.bmcs[0]!.account).toMatchObject({ password: configured, passwordChangeRequired: false });
    expect(store.get(serial)!.bmc).toMatchObject({ password: configured, factoryPassword: ep.password });
    const history = store.history(serial);
    expect(history.find((e) => e.type === 'password-change')).toMatchObject({ data: { outcome: 'ok', detail: 'configured password set' } });
    const column = (images.db.prepare(`SELECT bmc FROM devices WHERE serial = ?`).get(serial) as { bmc: string }).bmc;
    for (const secret of [configured, ep.password]) {
      expect(column).not.toContain(secret);
      expect(JSON.stringify(history)).not.toContain(secret);
      expect(text()).not.toContain(secret);
      expect(add.out).not.toContain(secret);
      expect((await ztp(dataDir, 'device', 'show', serial, '--json')).out).not.toContain(secret);
    }
    // A second run logs in with the configured password at once: no second change.
    expect(await acceptedAsIs({ url: ep.url, username: ep.username, password: configured })).toBe(true);
    await emu.close();
  });

  it('BlueField: the conductor changes root\'s factory password, sets the NIC mode the record asks for, boots by UEFI HTTP', async () => {
    await emu?.close();
    emu = await startBmcEmulator({ count: 1, quirks: 'bluefield', timing: ZERO_TIMING });
    const ep = emu.endpoints[0]!;
    const serial = 'SN-BF-MODE';
    const store = images.store;
    store.upsert({ serial, bootImage: ISO_NAME, bmc: { address: ep.url, username: ep.username, password: ep.password, operationMode: 'NIC' } });
    const conductor = new Conductor({
      store,
      db: images.db,
      log: silentLogger,
      settings: validateConfig({}).onboarding,
      connect: (endpoint, options) => openBmcSession(endpoint, { ...options, ...fast }),
      imageUrlFor: (_d, view) => `${images.http}/${view}/${ISO_NAME}`,
      imageIdentity: () => ({ bootImage: ISO_NAME, sha256: null }),
    });
    conductor.start();
    try {
      expect(conductor.onboard([serial])[0]!.outcome).toBe('queued');
      await until('the BMC steps', 20_000, () => conductor.job(serial)!.step === 'booting' || conductor.job(serial)!.status === 'failed');
      expect(conductor.job(serial)).toMatchObject({ step: 'booting', status: 'running', path: 'uefi-http' });
    } finally {
      await conductor.stop();
    }
    const bmc = emu.emulator.bmcs[0]!;
    expect(bmc.nvidia.mode).toBe('NicMode');
    expect(store.get(serial)!.bmc!.password).toBe(bmc.account.password);
    const types = store.history(serial).filter((e) => e.source === 'redfish').map((e) => e.type);
    expect(types.slice(0, 4)).toEqual(['password-change', 'login', 'inventory', 'operation-mode']);
    expect(types).toContain('boot-override');
    expect(JSON.stringify(store.history(serial))).not.toContain(bmc.account.password);
    await emu.close();
  });

  it('a record that asks for an operation mode the BMC does not have fails bmc-check with a typed reason', async () => {
    await emu?.close();
    emu = await startBmcEmulator({ count: 1, quirks: 'generic', timing: ZERO_TIMING });
    const ep = emu.endpoints[0]!;
    const serial = 'SN-NO-MODE';
    images.store.upsert({ serial, bootImage: ISO_NAME, bmc: { address: ep.url, username: ep.username, password: ep.password, operationMode: 'DPU' } });
    const conductor = new Conductor({
      store: images.store,
      db: images.db,
      log: silentLogger,
      settings: validateConfig({}).onboarding,
      connect: (endpoint, options) => openBmcSession(endpoint, { ...options, ...fast }),
      imageUrlFor: () => images.deviceImageUrl(true),
      imageIdentity: () => ({ bootImage: ISO_NAME, sha256: null }),
    });
    conductor.start();
    try {
      conductor.onboard([serial]);
      await until('the failure', 20_000, () => conductor.job(serial)!.status === 'failed');
      expect(conductor.job(serial)).toMatchObject({ failedStep: 'bmc-check', reason: expect.stringMatching(/asks for DPU mode/) });
    } finally {
      await conductor.stop();
    }
    await until('the session logged out', 5_000, () => emu.emulator.bmcs[0]!.openSessions === 0);
    await emu.close();
  });

  it('ztp bmc inventory <serial>: a generated password is kept in the record; --factory-password sets the given one', async () => {
    emu = await startBmcEmulator({ count: 1, quirks: 'idrac', timing: ZERO_TIMING, password: 'calvin-factory-Z3', faults: { factoryPassword: true } });
    const ep = emu.endpoints[0]!;
    const dataDir = images.db.name.replace(/\/ztp\.db$/, '');
    const store = images.store;
    const serial = 'SN-PW-CLI';
    store.upsert({ serial, bmc: { address: ep.url, username: ep.username, password: ep.password } });
    const r = await ztp(dataDir, 'bmc', 'inventory', serial, '--json');
    expect(r.err).toBe('');
    expect(r.code).toBe(EXIT.OK);
    const stored = new DeviceStore(images.db).get(serial)!.bmc!.password!;
    expect(stored).not.toBe(ep.password);
    expect(stored).toBe(emu.emulator.bmcs[0]!.account.password);
    expect(await acceptedAsIs({ url: ep.url, username: ep.username, password: stored })).toBe(true);
    const history = store.history(serial);
    expect(history.filter((e) => e.source === 'redfish').map((e) => e.type)).toEqual(['password-change', 'login', 'inventory']);
    for (const secret of [stored, ep.password]) {
      expect(r.out).not.toContain(secret);
      expect(JSON.stringify(history)).not.toContain(secret);
    }
    await emu.close();

    // An operator who wants a given password: --factory-password logs in, --password is set and kept.
    emu = await startBmcEmulator({ count: 1, quirks: 'openbmc', timing: ZERO_TIMING, faults: { factoryPassword: true } });
    const ep2 = emu.endpoints[0]!;
    store.upsert({ serial, bmc: { address: ep2.url, username: ep2.username, password: 'old-record-pw' } });
    const chosen = 'Operator-Chosen-Pw-31';
    const r2 = await ztp(dataDir, 'bmc', 'inventory', serial, '--factory-password', ep2.password, '--password', chosen, '--json');
    expect(r2.code).toBe(EXIT.OK);
    expect(emu.emulator.bmcs[0]!.account.password).toBe(chosen);
    expect(new DeviceStore(images.db).get(serial)!.bmc!.password).toBe(chosen);
    expect(r2.out + r2.err).not.toContain(chosen);
    expect(JSON.stringify(store.history(serial))).not.toContain(chosen);
    await emu.close();

    // The record holds a configured password and the factory one: the configured one is set.
    emu = await startBmcEmulator({ count: 1, quirks: 'supermicro', timing: ZERO_TIMING, password: 'ADMIN-factory-M4', faults: { factoryPassword: true } });
    const ep3 = emu.endpoints[0]!;
    const configured = 'Configured-For-Cli-77';
    store.upsert({ serial, bmc: { address: ep3.url, username: ep3.username, password: configured, factoryPassword: ep3.password } });
    const r3 = await ztp(dataDir, 'bmc', 'power', serial, '--json');
    expect(r3.err).toBe('');
    expect(r3.code).toBe(EXIT.OK);
    expect(emu.emulator.bmcs[0]!.account.password).toBe(configured);
    expect(new DeviceStore(images.db).get(serial)!.bmc).toMatchObject({ password: configured, factoryPassword: ep3.password });
    for (const secret of [configured, ep3.password]) expect(r3.out + JSON.stringify(store.history(serial))).not.toContain(secret);
  });

  it('a bare BMC URL has nowhere to keep a generated password: typed error, the BMC untouched', async () => {
    await emu?.close();
    emu = await startBmcEmulator({ count: 1, quirks: 'generic', timing: ZERO_TIMING, faults: { factoryPassword: true } });
    const ep = emu.endpoints[0]!;
    const dataDir = images.db.name.replace(/\/ztp\.db$/, '');
    const r = await ztp(dataDir, 'bmc', 'power', ep.url, '--user', ep.username, '--password', ep.password, '--json');
    expect(r.code).toBe(EXIT.ERROR);
    expect(JSON.parse(r.err).error.code).toBe('REDFISH_PASSWORD_CHANGE_REQUIRED');
    expect(emu.emulator.bmcs[0]!.account).toMatchObject({ password: ep.password, passwordChangeRequired: true });
    expect(emu.emulator.bmcs[0]!.openSessions).toBe(0);
  });
});

describe('the new password is kept before the PATCH, and handed back when it did not take', () => {
  let bmc: TestBmc | undefined;
  afterAll(async () => {
    await bmc?.close();
  });

  /** A factory-fresh BMC whose account PATCH does what `onPatch` says. */
  function factoryBmc(onPatch: (r: Recorded, apply: () => void) => Reply) {
    const state = { current: 'factory-pw' };
    const handler = (r: Recorded): Reply | undefined => {
      if (r.method === 'POST' && r.path === '/redfish/v1/SessionService/Sessions') {
        const body = r.body as { Password: string };
        if (body.Password !== state.current) return { status: 401, body: redfishError('Base.1.8.NoValidSession', 'bad') };
        const must = state.current === 'factory-pw';
        return {
          status: 201,
          headers: { 'x-auth-token': must ? 'tok-restricted' : 'tok-full', location: `/redfish/v1/SessionService/Sessions/${must ? 1 : 2}` },
          body: must ? { '@Message.ExtendedInfo': [{ MessageId: 'Base.1.8.PasswordChangeRequired', MessageArgs: ['/redfish/v1/AccountService/Accounts/1'], Severity: 'Critical' }] } : {},
        };
      }
      if (r.method === 'DELETE') return { status: 204 };
      if (r.method === 'PATCH' && r.path === '/redfish/v1/AccountService/Accounts/1') return onPatch(r, () => (state.current = (r.body as { Password: string }).Password));
      if (r.headers['x-auth-token'] === 'tok-restricted' && r.path !== '/redfish/v1') return { status: 403, body: redfishError('Base.1.8.PasswordChangeRequired', 'change it') };
      return undefined;
    };
    return { state, handler };
  }

  it('a refused change: the callback gets the new password, then the old one back; typed error', async () => {
    const { state, handler } = factoryBmc(() => ({ status: 400, body: redfishError('Base.1.8.PropertyValueFormatError', 'password policy') }));
    bmc = await TestBmc.start({ tree: miniTree(), handler });
    const kept: string[] = [];
    const err = await openBmcSession({ url: bmc.url, username: 'root', password: 'factory-pw' }, { log: silentLogger, ...fast, onPasswordChange: (pw) => void kept.push(pw) }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(isZtpError(err)).toBe(true);
    expect(kept).toHaveLength(2);
    expect(kept[0]).not.toBe('factory-pw');
    expect(kept[1]).toBe('factory-pw');
    expect(state.current).toBe('factory-pw');
    expect(bmc.liveSessions.size).toBe(0);
    await bmc.close();
    bmc = undefined;
  });

  it('a change whose answer is lost: the new password logs in, so it is kept', async () => {
    const { state, handler } = factoryBmc((_r, apply) => {
      apply();
      return { status: 200, hang: true };
    });
    bmc = await TestBmc.start({ tree: miniTree(), handler });
    const kept: string[] = [];
    const session = await openBmcSession(
      { url: bmc.url, username: 'root', password: 'factory-pw' },
      { log: silentLogger, ...fast, tuning: { ...fast.tuning, headersTimeoutMs: 200, retries: 0 }, onPasswordChange: (pw) => void kept.push(pw) },
    );
    try {
      expect(await session.powerState()).toBe('Off');
    } finally {
      await session.close();
    }
    expect(kept).toHaveLength(1);
    expect(state.current).toBe(kept[0]);
    expect(kept[0]).toMatch(/^[A-Za-z0-9_-]{24}Aa1!$/);
  });
});
