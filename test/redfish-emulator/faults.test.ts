// Injected faults, each deterministic: latency, 5xx bursts with Retry-After, requests never
// answered (on a real socket, closed cleanly at shutdown), dropped sessions, stale ETags, media that
// never reports inserted, a factory password to change first, async actions behind task monitors,
// and faults aimed at one BMC of a fleet. Plus the CLI's fault syntax.
import { describe, expect, it } from 'vitest';
import { request } from 'undici';
import { buildBmcEmulatorApp, parseFaults, startBmcEmulator, ZERO_TIMING } from '../../src/redfish/emulator/index.js';
import { isZtpError } from '../../src/errors.js';
import { emulatorTestFixture, messageId, Rf } from './helpers.js';

const t = emulatorTestFixture();

describe('fault injection', () => {
  it('latency delays every answer', async () => {
    t.emu = buildBmcEmulatorApp({ timing: ZERO_TIMING, faults: { latencyMs: 120 } });
    const rf = new Rf(t.emu);
    let answered = false;
    const pending = rf.get('/redfish/v1').then((r) => ((answered = true), r));
    await new Promise((r) => setTimeout(r, 40));
    expect(answered).toBe(false);
    expect((await pending).status).toBe(200);
  });

  it('5xx bursts: COUNT 503s with Retry-After at the start of every EVERY requests', async () => {
    t.emu = buildBmcEmulatorApp({ timing: ZERO_TIMING, faults: parseFaults('5xx=2/5:0').get('*')! });
    const rf = new Rf(t.emu);
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) {
      const r = await rf.get('/redfish/v1');
      statuses.push(r.status);
      if (r.status === 503) {
        expect(r.headers['retry-after']).toBe('0');
        expect(messageId(r.body)).toBe('Base.1.16.0.ServiceTemporarilyUnavailable');
      }
    }
    expect(statuses).toEqual([503, 503, 200, 200, 200, 503, 503, 200, 200, 200]);
  });

  it('timeout: an InsertMedia is never answered, and close() still ends the socket', async () => {
    const running = await startBmcEmulator({ timing: ZERO_TIMING, faults: { timeout: { on: 'insert', times: 1 } } });
    try {
      const base = running.endpoints[0]!.url;
      const auth = { authorization: 'Basic ' + Buffer.from('admin:password').toString('base64'), 'content-type': 'application/json' };
      const insert = `${base}/redfish/v1/Managers/BMC/VirtualMedia/CD1/Actions/VirtualMedia.InsertMedia`;
      const hung = request(insert, { method: 'POST', headers: auth, body: JSON.stringify({ Image: t.images.deviceImageUrl() }), headersTimeout: 300 });
      await expect(hung).rejects.toMatchObject({ code: 'UND_ERR_HEADERS_TIMEOUT' });
      // only the first: the next insert is answered
      const next = await request(insert, { method: 'POST', headers: auth, body: JSON.stringify({ Image: t.images.deviceImageUrl() }), headersTimeout: 5000 });
      expect(next.statusCode).toBe(204);
      await next.body.dump();
      // a second hung request is still open when the emulator closes
      running.emulator.bmcs[0]!.setFaults({ timeout: { on: 'get' } });
      const open = request(`${base}/redfish/v1/Systems`, { headers: auth, headersTimeout: 10_000 }).catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 50));
      await running.close();
      expect(await open).toBeInstanceOf(Error);
    } finally {
      await running.close();
    }
  });

  it('drop-session: the token dies after N requests; a new login works', async () => {
    t.emu = buildBmcEmulatorApp({ timing: ZERO_TIMING, faults: { dropSessionAfter: 2 } });
    const rf = new Rf(t.emu);
    await rf.login();
    expect((await rf.get('/redfish/v1/Systems')).status).toBe(200);
    expect((await rf.get('/redfish/v1/Systems/DPU')).status).toBe(200);
    const dropped = await rf.get('/redfish/v1/Systems');
    expect(dropped.status).toBe(401);
    expect(messageId(dropped.body)).toBe('Base.1.16.0.NoValidSession');
    expect(t.emu.bmcs[0]!.openSessions).toBe(0);
    await rf.login();
    expect((await rf.get('/redfish/v1/Systems')).status).toBe(200);
  });

  it('stale-etag: the ETag a GET shows is already old, so If-Match fails and no If-Match works', async () => {
    t.emu = buildBmcEmulatorApp({ timing: ZERO_TIMING, faults: { staleEtag: true } });
    const rf = new Rf(t.emu);
    await rf.login();
    const etag = String((await rf.get('/redfish/v1/Systems/DPU')).headers.etag);
    const boot = { Boot: { BootSourceOverrideTarget: 'Cd', BootSourceOverrideEnabled: 'Once' } };
    expect((await rf.req('PATCH', '/redfish/v1/Systems/DPU', boot, { 'if-match': etag })).status).toBe(412);
    expect((await rf.req('PATCH', '/redfish/v1/Systems/DPU', boot)).status).toBe(204);
  });

  it('media-never-inserted: the insert is accepted, the slot never says Inserted', async () => {
    t.emu = buildBmcEmulatorApp({ timing: ZERO_TIMING, faults: { mediaNeverInserted: true } });
    const rf = new Rf(t.emu);
    await rf.login();
    const slot = '/redfish/v1/Managers/BMC/VirtualMedia/CD1';
    expect((await rf.req('POST', `${slot}/Actions/VirtualMedia.InsertMedia`, { Image: t.images.deviceImageUrl() })).status).toBe(204);
    expect((await rf.get(slot)).body).toMatchObject({ Inserted: false, Image: t.images.deviceImageUrl() });
  });

  it('factory-password on any vendor: PasswordChangeRequired until the account password is changed', async () => {
    t.emu = buildBmcEmulatorApp({ quirks: 'idrac', timing: ZERO_TIMING, faults: { factoryPassword: true } });
    const rf = new Rf(t.emu);
    expect(messageId((await rf.login()).body)).toBe('Base.1.16.0.PasswordChangeRequired');
    expect((await rf.get('/redfish/v1/Systems/System.Embedded.1')).status).toBe(403);
    expect((await rf.get('/redfish/v1/AccountService/Accounts/1')).body!.PasswordChangeRequired).toBe(true);
    // Basic auth meets the same gate
    const basic = { authorization: 'Basic ' + Buffer.from('root:calvin').toString('base64') };
    rf.token = undefined;
    expect((await rf.get('/redfish/v1/Systems', basic)).status).toBe(403);
    expect((await rf.req('PATCH', '/redfish/v1/AccountService/Accounts/1', { Password: 'Lab-pass-2026' }, basic)).status).toBe(200);
    expect((await rf.get('/redfish/v1/Systems', { authorization: 'Basic ' + Buffer.from('root:Lab-pass-2026').toString('base64') })).status).toBe(200);
  });

  it('async-actions: Reset and InsertMedia answer 202 and a task monitor; a failed insert ends in Exception', async () => {
    t.emu = buildBmcEmulatorApp({ timing: ZERO_TIMING, faults: { asyncActions: true } });
    const rf = new Rf(t.emu);
    await rf.login();
    const reset = await rf.req('POST', '/redfish/v1/Systems/DPU/Actions/ComputerSystem.Reset', { ResetType: 'On' });
    expect(reset.status).toBe(202);
    expect(reset.headers['retry-after']).toBe('0');
    const done = await rf.get(String(reset.headers.location));
    expect(done.status).toBe(200);
    expect(done.body!.TaskState).toBe('Completed');
    expect((await rf.get('/redfish/v1/Systems/DPU')).body!.PowerState).toBe('On');
    const insert = await rf.req('POST', '/redfish/v1/Managers/BMC/VirtualMedia/CD1/Actions/VirtualMedia.InsertMedia', { Image: 'http://127.0.0.1:1/none.iso' });
    expect(insert.status).toBe(202);
    let task = await rf.get(String(insert.headers.location));
    for (let i = 0; i < 200 && task.status === 202; i++) {
      await new Promise((r) => setTimeout(r, 10));
      task = await rf.get(String(insert.headers.location));
    }
    expect(task.body!.TaskState).toBe('Exception');
    expect((task.body!.Messages as { MessageId: string }[]).map((m) => m.MessageId)).toContain('Base.1.16.0.CouldNotEstablishConnection');
  });

  it('identity-406: Accept-Encoding identity is refused (iLO Gen10 Plus), other encodings pass', async () => {
    t.emu = buildBmcEmulatorApp({ quirks: 'ilo', timing: ZERO_TIMING, faults: { refuseIdentityEncoding: true } });
    const rf = new Rf(t.emu);
    expect((await rf.get('/redfish/v1', { 'accept-encoding': 'identity' })).status).toBe(406);
    expect((await rf.get('/redfish/v1', { 'accept-encoding': 'gzip, deflate' })).status).toBe(200);
  });

  it('faults aimed at one BMC leave the others alone', async () => {
    t.emu = buildBmcEmulatorApp({ count: 2, timing: ZERO_TIMING, faults: parseFaults('bmc-0002@5xx=1/2') });
    expect((await new Rf(t.emu, 'bmc-0001').get('/redfish/v1')).status).toBe(200);
    expect((await new Rf(t.emu, 'bmc-0002').get('/redfish/v1')).status).toBe(503);
  });

  it('drop-connection: the socket of the first matching POST closes unanswered, before or after the BMC acted', async () => {
    const running = await startBmcEmulator({ timing: ZERO_TIMING, faults: parseFaults('drop-connection=reset').get('*')! });
    try {
      const base = running.endpoints[0]!.url;
      const bmc = running.emulator.bmcs[0]!;
      const auth = { authorization: 'Basic ' + Buffer.from('admin:password').toString('base64'), 'content-type': 'application/json' };
      const reset = `${base}/redfish/v1/Systems/DPU/Actions/ComputerSystem.Reset`;
      const post = () => request(reset, { method: 'POST', headers: auth, body: JSON.stringify({ ResetType: 'On' }), headersTimeout: 5000 });
      // a GET is not a target: answered
      const get = await request(`${base}/redfish/v1/Systems/DPU`, { headers: auth });
      expect(get.statusCode).toBe(200);
      await get.body.dump();
      await expect(post()).rejects.toMatchObject({ code: 'UND_ERR_SOCKET' });
      expect(bmc.stats).toMatchObject({ drops: 1, resets: 0 });
      expect(bmc.dpu.power).toBe('Off');
      const next = await post();
      expect(next.statusCode).toBe(204);
      await next.body.dump();
      expect(bmc.stats).toMatchObject({ drops: 1, resets: 1 });
      // after: the BMC acts, then the connection goes
      bmc.setFaults(parseFaults('drop-connection=reset:after').get('*')!);
      const off = request(reset, { method: 'POST', headers: auth, body: JSON.stringify({ ResetType: 'ForceOff' }), headersTimeout: 5000 });
      await expect(off).rejects.toMatchObject({ code: 'UND_ERR_SOCKET' });
      expect(bmc.stats).toMatchObject({ drops: 2, resets: 2 });
      expect(bmc.dpu.power).toBe('Off');
    } finally {
      await running.close();
    }
  });

  it('parses the CLI syntax and names the bad entry', () => {
    expect(parseFaults('drop-connection=reset, no-boot-next').get('*')).toEqual({ dropConnection: { on: 'reset', when: 'before', times: 1 }, noBootNext: true });
    expect(parseFaults('drop-connection=insert:after:2').get('*')).toEqual({ dropConnection: { on: 'insert', when: 'after', times: 2 } });
    for (const bad of ['drop-connection=sometimes', 'drop-connection=reset:later:1', 'drop-connection=reset:x']) expect(() => parseFaults(bad)).toThrow(/drop-connection/);
    const specs = parseFaults('latency=50, bmc-0002@timeout=insert:1, 5xx=2/10, drop-session=5, stale-etag, media-never-inserted, factory-password, async-actions, identity-406');
    expect(specs.get('*')).toEqual({ latencyMs: 50, burst5xx: { count: 2, every: 10, retryAfterS: 1 }, dropSessionAfter: 5, staleEtag: true, mediaNeverInserted: true, factoryPassword: true, asyncActions: true, refuseIdentityEncoding: true });
    expect(specs.get('bmc-0002')).toEqual({ timeout: { on: 'insert', times: 1 } });
    for (const bad of ['explode', 'latency=-1', '5xx=5/2', 'timeout=forever']) {
      try {
        parseFaults(bad);
        expect.unreachable();
      } catch (err) {
        expect(isZtpError(err, 'CONFIG_INVALID')).toBe(true);
        expect((err as Error).message).toContain(bad);
      }
    }
  });
});
