// The emulator's core semantics through inject(): service root, sessions and Basic auth, the
// power state machine (transitions take time, then emit 'power' and 'booting'), boot override
// with allowable values, virtual media that really fetches its URL from the project's image
// server (and fails with ExtendedInfo when it cannot), ETags, task monitors, and fleet identity.
import { describe, expect, it } from 'vitest';
import { buildBmcEmulatorApp, ZERO_TIMING, type BootingEvent, type PowerEvent } from '../../src/redfish/emulator/index.js';
import { missingShared, sharedPath } from '../helpers/shared.js';
import { DEVICE, emulatorTestFixture, ISO, messageId, Rf, until } from './helpers.js';

const t = emulatorTestFixture();

const smartnic = missingShared('redfish', 'mockups', 'public-smartnic');

describe('service root and sessions', () => {
  it('answers the service root anonymously and everything else only with a session or Basic', async () => {
    t.emu = buildBmcEmulatorApp({ timing: ZERO_TIMING });
    const rf = new Rf(t.emu);
    const root = await rf.get('/redfish/v1');
    expect(root.status).toBe(200);
    expect(root.headers['odata-version']).toBe('4.0');
    expect((root.body!.Links as { Sessions: { '@odata.id': string } }).Sessions['@odata.id']).toBe(`${rf.prefix}/redfish/v1/SessionService/Sessions`);
    const denied = await rf.get('/redfish/v1/Systems');
    expect(denied.status).toBe(401);
    expect(messageId(denied.body)).toBe('Base.1.16.0.NoValidSession');

    const bad = await rf.login('admin', 'wrong');
    expect(bad.status).toBe(401);
    const ok = await rf.login();
    expect(ok.status).toBe(201);
    expect(ok.headers.location).toMatch(new RegExp(`^${rf.prefix}/redfish/v1/SessionService/Sessions/[0-9a-f]+$`));
    expect((await rf.get('/redfish/v1/Systems')).status).toBe(200);
    expect(t.emu.bmcs[0]!.openSessions).toBe(1);
    expect((await rf.req('DELETE', String(ok.headers.location))).status).toBe(204);
    expect(t.emu.bmcs[0]!.openSessions).toBe(0);
    expect((await rf.get('/redfish/v1/Systems')).status).toBe(401);

    rf.token = undefined;
    const basic = 'Basic ' + Buffer.from('admin:password').toString('base64');
    expect((await rf.get('/redfish/v1/Systems', { authorization: basic })).status).toBe(200);
  });

  it('refuses malformed JSON and unknown paths with Redfish error bodies, not 500s', async () => {
    t.emu = buildBmcEmulatorApp({ timing: ZERO_TIMING });
    const rf = new Rf(t.emu);
    const malformed = await rf.req('POST', '/redfish/v1/SessionService/Sessions', '{"UserName":');
    expect(malformed.status).toBe(400);
    expect(messageId(malformed.body)).toBe('Base.1.16.0.MalformedJSON');
    await rf.login();
    const missing = await rf.get('/redfish/v1/Nowhere');
    expect(missing.status).toBe(404);
    expect(messageId(missing.body)).toBe('Base.1.16.0.ResourceMissingAtURI');
    expect((await t.emu.app.inject({ url: '/bmc/no-such-bmc/redfish/v1' })).statusCode).toBe(404);
    const put = await rf.req('PUT', '/redfish/v1/Systems/DPU', {});
    expect(put.status).toBe(405);
  });
});

describe('power state machine', () => {
  it('takes the configured time to power on, then emits power and booting events', async () => {
    t.emu = buildBmcEmulatorApp({ timing: { ...ZERO_TIMING, powerOnMs: 60, powerOffMs: 30 } });
    const rf = new Rf(t.emu);
    await rf.login();
    const sys = await rf.get('/redfish/v1/Systems/DPU');
    expect(sys.body!.PowerState).toBe('Off');
    const reset = (sys.body!.Actions as Record<string, { target: string; 'ResetType@Redfish.AllowableValues': string[] }>)['#ComputerSystem.Reset']!;
    expect(reset['ResetType@Redfish.AllowableValues']).toContain('ForceRestart');
    const power: PowerEvent[] = [];
    const booting: BootingEvent[] = [];
    t.emu.events.on('power', (e) => power.push(e));
    t.emu.events.on('booting', (e) => booting.push(e));

    expect((await rf.req('POST', reset.target, { ResetType: 'On' })).status).toBe(204);
    expect((await rf.get('/redfish/v1/Systems/DPU')).body!.PowerState).toBe('PoweringOn');
    await until(async () => (await rf.get('/redfish/v1/Systems/DPU')).body!.PowerState === 'On');
    expect(power.map((p) => p.state)).toEqual(['On']);
    expect(booting).toHaveLength(1);
    expect(booting[0]).toMatchObject({ bmcId: 'bmc-0001', systemId: 'DPU', via: 'disk', imageUrl: null, serial: t.emu.bmcs[0]!.identity.serial });

    // On while On is a no-op; a restart goes through Off and On again
    expect((await rf.req('POST', reset.target, { ResetType: 'On' })).status).toBe(204);
    expect((await rf.req('POST', reset.target, { ResetType: 'ForceRestart' })).status).toBe(204);
    await until(() => power.length === 3);
    expect(power.map((p) => p.state)).toEqual(['On', 'Off', 'On']);
    expect(booting).toHaveLength(2);

    const bad = await rf.req('POST', reset.target, { ResetType: 'Explode' });
    expect(bad.status).toBe(400);
    expect(messageId(bad.body)).toBe('Base.1.16.0.ActionParameterValueNotInList');
    const none = await rf.req('POST', reset.target, {});
    expect(messageId(none.body)).toBe('Base.1.16.0.ActionParameterMissing');
  });

  it('validates a boot override against its allowable values and consumes a Once override at boot', async () => {
    t.emu = buildBmcEmulatorApp({ timing: ZERO_TIMING });
    const rf = new Rf(t.emu);
    await rf.login();
    const sys = await rf.get('/redfish/v1/Systems/DPU');
    expect((sys.body!.Boot as Record<string, unknown>)['BootSourceOverrideTarget@Redfish.AllowableValues']).toContain('UefiHttp');
    const wrong = await rf.req('PATCH', '/redfish/v1/Systems/DPU', { Boot: { BootSourceOverrideTarget: 'Floppy' } });
    expect(wrong.status).toBe(400);
    expect(messageId(wrong.body)).toBe('Base.1.16.0.PropertyValueNotInList');
    expect((wrong.body!.error as { '@Message.ExtendedInfo': { RelatedProperties: string[] }[] })['@Message.ExtendedInfo'][0]!.RelatedProperties).toEqual(['#/Boot/BootSourceOverrideTarget']);
    const readOnly = await rf.req('PATCH', '/redfish/v1/Systems/DPU', { PowerState: 'On' });
    expect(messageId(readOnly.body)).toBe('Base.1.16.0.PropertyNotWritable');

    const uri = t.images.deviceImageUrl();
    expect((await rf.req('PATCH', '/redfish/v1/Systems/DPU', { Boot: { BootSourceOverrideTarget: 'UefiHttp', BootSourceOverrideEnabled: 'Once', BootSourceOverrideMode: 'UEFI', HttpBootUri: uri } })).status).toBe(204);
    const booting: BootingEvent[] = [];
    t.emu.events.on('booting', (e) => booting.push(e));
    await rf.req('POST', '/redfish/v1/Systems/DPU/Actions/ComputerSystem.Reset', { ResetType: 'On' });
    expect(booting[0]).toMatchObject({ via: 'uefi-http', imageUrl: uri, target: 'UefiHttp' });
    const after = (await rf.get('/redfish/v1/Systems/DPU')).body!.Boot as Record<string, unknown>;
    expect(after.BootSourceOverrideEnabled).toBe('Disabled');
  });
});

describe('virtual media', () => {
  it('fetches the image like a BMC (HEAD, then range reads) and boots it once', async () => {
    t.emu = buildBmcEmulatorApp({ timing: ZERO_TIMING });
    const rf = new Rf(t.emu);
    await rf.login();
    const manager = await rf.get('/redfish/v1/Managers/BMC');
    const collection = await rf.get(String((manager.body!.VirtualMedia as { '@odata.id': string })['@odata.id']));
    const cdPath = (collection.body!.Members as { '@odata.id': string }[])[0]!['@odata.id'];
    const cd = await rf.get(cdPath);
    expect(cd.body!.MediaTypes).toContain('CD');
    const insert = (cd.body!.Actions as Record<string, { target: string }>)['#VirtualMedia.InsertMedia']!.target;
    const before = t.images.store.history(DEVICE.serial).filter((e) => e.source === 'images' && e.type === 'download').length;

    const url = t.images.deviceImageUrl();
    expect((await rf.req('POST', insert, { Image: url })).status).toBe(204);
    const inserted = await rf.get(cdPath);
    expect(inserted.body).toMatchObject({ Image: url, Inserted: true, ConnectedVia: 'URI', TransferProtocolType: 'HTTP' });
    expect(t.emu.bmcs[0]!.stats.mounted).toEqual([url]);
    // the image server saw a BMC mount: ranged reads (8 × 64 KiB), attributed to the device, not the whole file
    const downloads = () => t.images.store.history(DEVICE.serial).filter((e) => e.source === 'images' && e.type === 'download').slice(before) as unknown as { data: { bytes: number; requests: number; completed: boolean; mac: string; image: string } }[];
    const sum = (k: 'bytes' | 'requests') => downloads().reduce((n, e) => n + Number(e.data[k]), 0);
    await until(() => sum('bytes') >= 8 * 64 * 1024);
    expect(downloads().every((e) => e.data.completed && e.data.mac === DEVICE.mac && e.data.image === 'dpu-installer.iso')).toBe(true);
    expect(sum('requests')).toBe(8);
    expect(sum('bytes')).toBe(8 * 64 * 1024);
    expect(sum('bytes')).toBeLessThan(ISO.length);

    // a second insert over an inserted slot is refused until ejected
    const again = await rf.req('POST', insert, { Image: url });
    expect(again.status).toBe(409);

    const booting: BootingEvent[] = [];
    t.emu.events.on('booting', (e) => booting.push(e));
    await rf.req('PATCH', '/redfish/v1/Systems/DPU', { Boot: { BootSourceOverrideTarget: 'Cd', BootSourceOverrideEnabled: 'Once' } });
    await rf.req('POST', '/redfish/v1/Systems/DPU/Actions/ComputerSystem.Reset', { ResetType: 'On' });
    expect(booting[0]).toMatchObject({ via: 'virtual-media', imageUrl: url, target: 'Cd' });

    const eject = (cd.body!.Actions as Record<string, { target: string }>)['#VirtualMedia.EjectMedia']!.target;
    expect((await rf.req('POST', eject)).status).toBe(204);
    expect((await rf.get(cdPath)).body).toMatchObject({ Image: null, Inserted: false });
  });

  it('fetches over HTTPS with the CA it is given, and fails the insert without it', async () => {
    t.emu = buildBmcEmulatorApp({ timing: ZERO_TIMING, mediaCa: t.images.caPem });
    const rf = new Rf(t.emu);
    await rf.login();
    const slot = '/redfish/v1/Managers/BMC/VirtualMedia/CD1';
    const url = t.images.deviceImageUrl(true);
    expect(url.startsWith('https://')).toBe(true);
    expect((await rf.req('POST', `${slot}/Actions/VirtualMedia.InsertMedia`, { Image: url })).status).toBe(204);
    expect((await rf.get(slot)).body).toMatchObject({ Inserted: true, TransferProtocolType: 'HTTPS' });
    await t.emu.close();

    t.emu = buildBmcEmulatorApp({ timing: ZERO_TIMING });
    const untrusting = new Rf(t.emu);
    await untrusting.login();
    const refused = await untrusting.req('POST', `${slot}/Actions/VirtualMedia.InsertMedia`, { Image: url });
    expect(refused.status).toBe(400);
    expect(messageId(refused.body)).toBe('Base.1.16.0.CouldNotEstablishConnection');
  });

  it('fails the insert with ExtendedInfo when the URL is unreachable or missing', async () => {
    t.emu = buildBmcEmulatorApp({ timing: ZERO_TIMING, mediaTimeoutMs: 2000 });
    const rf = new Rf(t.emu);
    await rf.login();
    const insert = '/redfish/v1/Managers/BMC/VirtualMedia/CD1/Actions/VirtualMedia.InsertMedia';
    const closedPort = `http://127.0.0.1:1/nothing.iso`;
    const unreachable = await rf.req('POST', insert, { Image: closedPort });
    expect(unreachable.status).toBe(400);
    const info = (unreachable.body!.error as { '@Message.ExtendedInfo': { MessageId: string; MessageArgs: string[]; RelatedProperties: string[] }[] })['@Message.ExtendedInfo'][0]!;
    expect(info).toMatchObject({ MessageId: 'Base.1.16.0.CouldNotEstablishConnection', MessageArgs: [closedPort], RelatedProperties: ['#/Image'] });
    const notFound = await rf.req('POST', insert, { Image: `${t.images.http}/images/no-such.iso` });
    expect(notFound.status).toBe(400);
    expect(messageId(notFound.body)).toBe('Base.1.16.0.CouldNotEstablishConnection');
    expect((await rf.get('/redfish/v1/Managers/BMC/VirtualMedia/CD1')).body).toMatchObject({ Inserted: false, Image: null });
    const noImage = await rf.req('POST', insert, {});
    expect(messageId(noImage.body)).toBe('Base.1.16.0.ActionParameterMissing');
    const notUrl = await rf.req('POST', insert, { Image: 'not a url' });
    expect(messageId(notUrl.body)).toBe('Base.1.16.0.ActionParameterValueFormatError');
  });
});

describe('ETags and tasks', () => {
  it('checks If-Match strongly and answers 412 for an old ETag', async () => {
    t.emu = buildBmcEmulatorApp({ timing: ZERO_TIMING });
    const rf = new Rf(t.emu);
    await rf.login();
    const first = await rf.get('/redfish/v1/Systems/DPU');
    const etag = String(first.headers.etag);
    expect(etag).toMatch(/^"[0-9a-f]+"$/);
    expect(first.body!['@odata.etag']).toBe(etag);
    expect((await rf.req('PATCH', '/redfish/v1/Systems/DPU', { Boot: { BootSourceOverrideTarget: 'Pxe' } }, { 'if-match': etag })).status).toBe(204);
    const stale = await rf.req('PATCH', '/redfish/v1/Systems/DPU', { Boot: { BootSourceOverrideTarget: 'Cd' } }, { 'if-match': etag });
    expect(stale.status).toBe(412);
    expect(messageId(stale.body)).toBe('Base.1.16.0.PreconditionFailed');
    expect((await rf.req('PATCH', '/redfish/v1/Systems/DPU', { Boot: { BootSourceOverrideTarget: 'Cd' } }, { 'if-match': `W/${etag}` })).status).toBe(412);
    expect((await rf.req('PATCH', '/redfish/v1/Systems/DPU', { Boot: { BootSourceOverrideTarget: 'Cd' } }, { 'if-match': '*' })).status).toBe(204);
  });

  it('runs a SimpleUpdate as a task: 202, Location, Retry-After, monitor until done', async () => {
    t.emu = buildBmcEmulatorApp({ timing: { ...ZERO_TIMING, taskMs: 80 } });
    const rf = new Rf(t.emu);
    await rf.login();
    const res = await rf.req('POST', '/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate', { ImageURI: t.images.deviceImageUrl() });
    expect(res.status).toBe(202);
    expect(res.headers['retry-after']).toBe('1');
    const monitor = String(res.headers.location);
    expect(monitor).toMatch(/\/TaskService\/Tasks\/\d+\/Monitor$/);
    expect((await rf.get(monitor)).status).toBe(202);
    await until(async () => (await rf.get(monitor)).status === 200);
    const done = await rf.get(monitor);
    expect(done.body).toMatchObject({ TaskState: 'Completed', PercentComplete: 100 });
  });
});

describe.skipIf(smartnic)('DMTF public-smartnic mockup as the starting tree', () => {
  it('serves the mockup with each BMC its own serial and MACs, and picks the DPU system', async () => {
    t.emu = buildBmcEmulatorApp({ count: 3, mockupDir: sharedPath('redfish', 'mockups', 'public-smartnic'), timing: ZERO_TIMING });
    const serials = new Set<string>();
    const macs = new Set<string>();
    for (const bmc of t.emu.bmcs) {
      const rf = new Rf(t.emu, bmc.id);
      await rf.login();
      const systems = await rf.get('/redfish/v1/Systems');
      expect((systems.body!.Members as unknown[]).length).toBe(2);
      const dpu = await rf.get('/redfish/v1/Systems/Card1-SoC');
      expect(dpu.body).toMatchObject({ SystemType: 'DPU', SerialNumber: bmc.identity.serial });
      const card = await rf.get('/redfish/v1/Chassis/Card1');
      expect(card.body!.SerialNumber).toBe(bmc.identity.serial);
      const fn = await rf.get('/redfish/v1/Chassis/Card1/NetworkAdapters/Slot1/NetworkDeviceFunctions/SC2KP1F0');
      const mac = (fn.body!.Ethernet as { MACAddress: string }).MACAddress;
      expect(bmc.identity.macs).toContain(mac);
      expect(fn.body!['@odata.id']).toBe(`${rf.prefix}/redfish/v1/Chassis/Card1/NetworkAdapters/Slot1/NetworkDeviceFunctions/SC2KP1F0`);
      serials.add(bmc.identity.serial);
      macs.add(mac);
      // static sensors of the mockup are served as they are (prefixed)
      expect((await rf.get('/redfish/v1/Chassis/1U/Sensors/AmbientTemp')).status).toBe(200);
    }
    expect(serials.size).toBe(3);
    expect(macs.size).toBe(3);
    // the same id gives the same DPU, run after run
    const again = buildBmcEmulatorApp({ count: 1, mockupDir: sharedPath('redfish', 'mockups', 'public-smartnic') });
    expect(again.bmcs[0]!.identity).toEqual(t.emu.bmcs[0]!.identity);
    await again.close();
  });
});
