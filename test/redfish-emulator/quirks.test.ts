// Each quirk mode behaves like its vendor line in ../shared/REDFISH.md, so a client's fallbacks
// are exercised by something that refuses what that vendor refuses (inject(), zero delays unless
// a quirk needs a window).
import { describe, expect, it } from 'vitest';
import { buildBmcEmulatorApp, ZERO_TIMING, type BmcEmulatorOptions, type BootingEvent, type QuirkMode } from '../../src/redfish/emulator/index.js';
import { emulatorTestFixture, messageId, Rf, until } from './helpers.js';

const t = emulatorTestFixture();

async function open(quirks: QuirkMode, extra: BmcEmulatorOptions = {}): Promise<Rf> {
  t.emu = buildBmcEmulatorApp({ timing: ZERO_TIMING, mediaCa: t.images.caPem, ...extra, quirks });
  const rf = new Rf(t.emu);
  const login = await rf.login();
  expect(login.status).toBe(201);
  return rf;
}

const actions = (body: Record<string, unknown> | undefined) => (body?.Actions ?? {}) as Record<string, { target: string }>;

describe('quirk modes', () => {
  it('idrac: media on the System slot 1, SYS518 once, Inserted lingers after eject, 412 on If-Match for actions, 409 on On while On', async () => {
    const rf = await open('idrac', { timing: { ...ZERO_TIMING, ejectLagMs: 150, offSettleMs: 150 } });
    const sys = await rf.get('/redfish/v1/Systems/System.Embedded.1');
    expect((sys.body!.VirtualMedia as { '@odata.id': string })['@odata.id']).toBe(`${rf.prefix}/redfish/v1/Systems/System.Embedded.1/VirtualMedia`);
    expect((await rf.get('/redfish/v1/Managers/iDRAC.Embedded.1')).body!.VirtualMedia).toBeUndefined();
    const slot = '/redfish/v1/Systems/System.Embedded.1/VirtualMedia/1';
    const insert = actions((await rf.get(slot)).body)['#VirtualMedia.InsertMedia']!.target;
    const url = t.images.deviceImageUrl();
    const notReady = await rf.req('POST', insert, { Image: url });
    expect(notReady.status).toBe(400);
    expect(messageId(notReady.body)).toBe('IDRAC.2.8.SYS518');
    expect((await rf.req('POST', insert, { Image: url })).status).toBe(204);
    expect((await rf.req('POST', `${slot}/Actions/VirtualMedia.EjectMedia`)).status).toBe(204);
    expect((await rf.get(slot)).body!.Inserted).toBe(true); // still ejecting
    expect((await rf.req('POST', insert, { Image: url })).status).toBe(500);
    await until(async () => (await rf.get(slot)).body!.Inserted === false);
    expect((await rf.req('POST', insert, { Image: url })).status).toBe(204);

    const etag = String((await rf.get('/redfish/v1/Systems/System.Embedded.1')).headers.etag);
    const reset = '/redfish/v1/Systems/System.Embedded.1/Actions/ComputerSystem.Reset';
    expect((await rf.req('POST', reset, { ResetType: 'On' }, { 'if-match': etag })).status).toBe(412);
    expect((await rf.req('POST', reset, { ResetType: 'On' })).status).toBe(204);
    expect((await rf.req('POST', reset, { ResetType: 'On' })).status).toBe(409);
    expect((await rf.req('POST', reset, { ResetType: 'ForceOff' })).status).toBe(204);
    expect((await rf.req('POST', reset, { ResetType: 'On' })).status).toBe(409); // transient, right after power-off
    await new Promise((r) => setTimeout(r, 160));
    expect((await rf.req('POST', reset, { ResetType: 'On' })).status).toBe(204);
    // a PATCH with the right ETag is still checked, not refused
    const fresh = String((await rf.get('/redfish/v1/Systems/System.Embedded.1')).headers.etag);
    expect((await rf.req('PATCH', '/redfish/v1/Systems/System.Embedded.1', { Boot: { BootSourceOverrideTarget: 'Cd', BootSourceOverrideEnabled: 'Once' } }, { 'if-match': fresh })).status).toBe(204);
  });

  it('ilo: EjectMedia needs {}, weak ETags wanting the strong form, trailing slashes, no boot change in POST', async () => {
    const rf = await open('ilo', { timing: { ...ZERO_TIMING, postMs: 200 } });
    const sys = await rf.get('/redfish/v1/Systems/1/');
    expect(sys.body!['@odata.id']).toBe(`${rf.prefix}/redfish/v1/Systems/1/`);
    const etag = String(sys.headers.etag);
    expect(etag).toMatch(/^W\/"[0-9a-f]+"$/);
    const boot = { Boot: { BootSourceOverrideTarget: 'Cd', BootSourceOverrideEnabled: 'Once' } };
    expect((await rf.req('PATCH', '/redfish/v1/Systems/1/', boot, { 'if-match': etag })).status).toBe(412);
    expect((await rf.req('PATCH', '/redfish/v1/Systems/1/', boot, { 'if-match': etag.slice(2) })).status).toBe(204);

    const slot = '/redfish/v1/Managers/1/VirtualMedia/2';
    const cd = await rf.get(slot);
    expect(cd.body!.MediaTypes).toContain('CD');
    expect((await rf.req('POST', `${slot}/Actions/VirtualMedia.InsertMedia`, { Image: t.images.deviceImageUrl() })).status).toBe(204);
    expect((await rf.req('POST', `${slot}/Actions/VirtualMedia.EjectMedia`)).status).toBe(415);
    expect((await rf.req('POST', `${slot}/Actions/VirtualMedia.EjectMedia`, {})).status).toBe(204);

    await rf.req('POST', '/redfish/v1/Systems/1/Actions/ComputerSystem.Reset', { ResetType: 'On' });
    const inPost = await rf.req('PATCH', '/redfish/v1/Systems/1/', boot);
    expect(inPost.status).toBe(400);
    expect(messageId(inPost.body)).toBe('iLO.2.14.UnableToModifyDuringSystemPOST');
    await new Promise((r) => setTimeout(r, 210));
    expect((await rf.req('PATCH', '/redfish/v1/Systems/1/', boot)).status).toBe(204);
  });

  it('supermicro: UsbCd, TransferProtocolType asked for, Inserted/WriteProtected refused, Enabled required, stale Image blocks', async () => {
    const rf = await open('supermicro', { faults: { mediaNeverInserted: true } });
    const boot = (await rf.get('/redfish/v1/Systems/1')).body!.Boot as Record<string, string[]>;
    expect(boot['BootSourceOverrideTarget@Redfish.AllowableValues']).toContain('UsbCd');
    expect(boot['BootSourceOverrideTarget@Redfish.AllowableValues']).not.toContain('Cd');
    expect(messageId((await rf.req('PATCH', '/redfish/v1/Systems/1', { Boot: { BootSourceOverrideTarget: 'UsbCd' } })).body)).toBe('Base.1.16.0.PropertyMissing');
    expect((await rf.req('PATCH', '/redfish/v1/Systems/1', { Boot: { BootSourceOverrideTarget: 'UsbCd', BootSourceOverrideEnabled: 'Once' } })).status).toBe(204);

    const insert = '/redfish/v1/Managers/1/VirtualMedia/CD1/Actions/VirtualMedia.InsertMedia';
    const url = t.images.deviceImageUrl();
    const withInserted = await rf.req('POST', insert, { Image: url, Inserted: true, WriteProtected: true, TransferProtocolType: 'HTTP' });
    expect(messageId(withInserted.body)).toBe('Base.1.16.0.ActionParameterNotSupported');
    const bare = await rf.req('POST', insert, { Image: url });
    expect(bare.status).toBe(400);
    const info = (bare.body!.error as { '@Message.ExtendedInfo': { MessageId: string; RelatedProperties: string[] }[] })['@Message.ExtendedInfo'][0]!;
    expect(info).toMatchObject({ MessageId: 'Base.1.16.0.ActionParameterMissing', RelatedProperties: ['#/TransferProtocolType'] });
    expect((await rf.req('POST', insert, { Image: url, TransferProtocolType: 'HTTP' })).status).toBe(204);
    // the media never reported inserted (fault) and its Image now blocks a new insert until ejected
    expect((await rf.get('/redfish/v1/Managers/1/VirtualMedia/CD1')).body).toMatchObject({ Inserted: false, Image: url });
    expect((await rf.req('POST', insert, { Image: url, TransferProtocolType: 'HTTP' })).status).toBe(409);
    expect((await rf.req('POST', '/redfish/v1/Managers/1/VirtualMedia/CD1/Actions/VirtualMedia.EjectMedia')).status).toBe(204);
    expect((await rf.req('POST', insert, { Image: url, TransferProtocolType: 'HTTP' })).status).toBe(204);
  });

  it('xcc: no media actions, PATCH on a URL-capable slot, Once/Disabled only', async () => {
    const rf = await open('xcc');
    const rdoc = await rf.get('/redfish/v1/Managers/1/VirtualMedia/RDOC1');
    expect(rdoc.body!.Actions).toBeUndefined();
    expect(rdoc.headers.allow).toBe('GET, PATCH');
    expect((await rf.req('POST', '/redfish/v1/Managers/1/VirtualMedia/RDOC1/Actions/VirtualMedia.InsertMedia', { Image: 'http://x/y.iso' })).status).toBe(404);
    const body = { Image: t.images.deviceImageUrl(), Inserted: true, WriteProtected: true, TransferProtocolType: 'HTTP' };
    expect((await rf.req('PATCH', '/redfish/v1/Managers/1/VirtualMedia/RDOC1', body)).status).toBe(400);
    expect((await rf.req('PATCH', '/redfish/v1/Managers/1/VirtualMedia/EXT1', body)).status).toBe(204);
    expect((await rf.get('/redfish/v1/Managers/1/VirtualMedia/EXT1')).body).toMatchObject({ Inserted: true, Image: body.Image });
    expect((await rf.req('PATCH', '/redfish/v1/Managers/1/VirtualMedia/EXT1', { Image: null, Inserted: false })).status).toBe(204);
    expect((await rf.get('/redfish/v1/Managers/1/VirtualMedia/EXT1')).body).toMatchObject({ Inserted: false, Image: null });
    expect((await rf.req('PATCH', '/redfish/v1/Systems/1', { Boot: { BootSourceOverrideTarget: 'Cd', BootSourceOverrideEnabled: 'Continuous' } })).status).toBe(400);
  });

  it('openbmc: media on the Manager, https only, the proxy slot refuses URLs, If-Match always 412', async () => {
    const rf = await open('openbmc');
    const mgr = await rf.get('/redfish/v1/Managers/bmc');
    expect((mgr.body!.VirtualMedia as { '@odata.id': string })['@odata.id']).toBe(`${rf.prefix}/redfish/v1/Managers/bmc/VirtualMedia`);
    const slot0 = '/redfish/v1/Managers/bmc/VirtualMedia/Slot_0/Actions/VirtualMedia.InsertMedia';
    const slot1 = '/redfish/v1/Managers/bmc/VirtualMedia/Slot_1/Actions/VirtualMedia.InsertMedia';
    expect((await rf.get('/redfish/v1/Managers/bmc/VirtualMedia/Slot_0')).body!.TransferProtocolType).toBe('OEM');
    expect(messageId((await rf.req('POST', slot1, { Image: t.images.deviceImageUrl(false) })).body)).toBe('Base.1.16.0.ActionParameterValueFormatError');
    expect((await rf.req('POST', slot0, { Image: t.images.deviceImageUrl(true) })).status).toBe(400);
    expect((await rf.req('POST', slot1, { Image: t.images.deviceImageUrl(true) })).status).toBe(204);
    const etag = String((await rf.get('/redfish/v1/Systems/system')).headers.etag);
    expect((await rf.req('PATCH', '/redfish/v1/Systems/system', { Boot: { BootSourceOverrideTarget: 'Cd' } }, { 'if-match': etag })).status).toBe(412);
    expect((await rf.req('PATCH', '/redfish/v1/Systems/system', { Boot: { BootSourceOverrideTarget: 'Cd' } })).status).toBe(204);
  });

  it('ami: the override goes to the future-state SD object with mode, enabled and target, applied at reset', async () => {
    const rf = await open('ami');
    const sys = await rf.get('/redfish/v1/Systems/Self');
    expect((sys.body!['@Redfish.Settings'] as { SettingsObject: { '@odata.id': string } }).SettingsObject['@odata.id']).toBe(`${rf.prefix}/redfish/v1/Systems/Self/SD`);
    expect(messageId((await rf.req('PATCH', '/redfish/v1/Systems/Self', { Boot: { BootSourceOverrideTarget: 'Cd' } })).body)).toBe('Base.1.16.0.PropertyNotWritable');
    expect(messageId((await rf.req('PATCH', '/redfish/v1/Systems/Self/SD', { Boot: { BootSourceOverrideTarget: 'Cd', BootSourceOverrideEnabled: 'Once' } })).body)).toBe('Base.1.16.0.PropertyMissing');
    expect((await rf.req('PATCH', '/redfish/v1/Systems/Self/SD', { Boot: { BootSourceOverrideTarget: 'Cd', BootSourceOverrideEnabled: 'Once', BootSourceOverrideMode: 'UEFI' } })).status).toBe(204);
    expect(((await rf.get('/redfish/v1/Systems/Self')).body!.Boot as Record<string, string>).BootSourceOverrideTarget).toBe('None');
    expect(((await rf.get('/redfish/v1/Systems/Self/SD')).body!.Boot as Record<string, string>).BootSourceOverrideTarget).toBe('Cd');
    const url = t.images.deviceImageUrl();
    expect((await rf.req('POST', '/redfish/v1/Managers/Self/VirtualMedia/CD1/Actions/VirtualMedia.InsertMedia', { Image: url })).status).toBe(204);
    const booting: BootingEvent[] = [];
    t.emu!.events.on('booting', (e) => booting.push(e));
    await rf.req('POST', '/redfish/v1/Systems/Self/Actions/ComputerSystem.Reset', { ResetType: 'On' });
    expect(booting[0]).toMatchObject({ via: 'virtual-media', target: 'Cd', imageUrl: url, systemId: 'Self' });
  });

  it('bluefield: its own ids, DPU only, Members null, empty UUID, factory password to change, settings object, BFB over RShim', async () => {
    t.emu = buildBmcEmulatorApp({ quirks: 'bluefield', timing: ZERO_TIMING });
    const rf = new Rf(t.emu);
    const login = await rf.login('root', '0penBmc');
    expect(login.status).toBe(201);
    expect(messageId(login.body)).toBe('Base.1.16.0.PasswordChangeRequired');
    const blocked = await rf.get('/redfish/v1/Systems');
    expect(blocked.status).toBe(403);
    expect(messageId(blocked.body)).toBe('Base.1.16.0.PasswordChangeRequired');
    expect((await rf.req('PATCH', '/redfish/v1/AccountService/Accounts/1', { Password: 'short' })).status).toBe(400);
    expect((await rf.req('PATCH', '/redfish/v1/AccountService/Accounts/1', { Password: '0penBmc' })).status).toBe(400);
    expect((await rf.req('PATCH', '/redfish/v1/AccountService/Accounts/1', { Password: 'N3w-lab-secret' })).status).toBe(200);
    expect((await rf.get('/redfish/v1/Systems')).status).toBe(200);
    expect((await rf.login('root', '0penBmc')).status).toBe(401);
    expect((await rf.login('root', 'N3w-lab-secret')).status).toBe(201);

    const systems = await rf.get('/redfish/v1/Systems');
    expect((systems.body!.Members as { '@odata.id': string }[]).map((m) => m['@odata.id'])).toEqual([`${rf.prefix}/redfish/v1/Systems/Bluefield`]);
    const sys = await rf.get('/redfish/v1/Systems/Bluefield');
    expect(sys.body!.UUID).toBe('');
    expect((await rf.get('/redfish/v1/Managers/Bluefield_BMC')).status).toBe(200);
    expect((await rf.get('/redfish/v1/Managers/Bluefield_BMC/VirtualMedia')).body!.Members).toBeNull();
    expect((await rf.get('/redfish/v1/TaskService/Tasks')).body!.Members).toBeNull();
    expect((await rf.req('PATCH', '/redfish/v1/Systems/Bluefield/Settings', { Boot: { BootSourceOverrideTarget: 'UefiHttp', BootSourceOverrideEnabled: 'Once', HttpBootUri: t.images.deviceImageUrl() } })).status).toBe(204);
    expect(((await rf.get('/redfish/v1/Systems/Bluefield/Oem/Nvidia')).body!.Mode)).toBe('DpuMode');

    // a BFB push fails while the BMC does not own RShim, then installs and boots the DPU
    const push = { TransferProtocol: 'HTTP', ImageURI: t.images.deviceImageUrl(), Targets: ['redfish/v1/UpdateService/FirmwareInventory/DPU_OS'] };
    const refused = await rf.req('POST', '/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate', push);
    expect(refused.status).toBe(202);
    await until(async () => (await rf.get(String(refused.headers.location))).status === 200);
    expect((await rf.get(String(refused.headers.location))).body!.TaskState).toBe('Exception');
    expect((await rf.req('PATCH', '/redfish/v1/Managers/Bluefield_BMC/Oem/Nvidia', { BmcRShim: { BmcRShimEnabled: true } })).status).toBe(204);
    const booting: BootingEvent[] = [];
    t.emu.events.on('booting', (e) => booting.push(e));
    const task = await rf.req('POST', '/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate', push);
    await until(async () => (await rf.get(String(task.headers.location))).status === 200);
    expect((await rf.get(String(task.headers.location))).body!.TaskState).toBe('Completed');
    expect(booting[0]).toMatchObject({ via: 'bfb', imageUrl: push.ImageURI, systemId: 'Bluefield', serial: t.emu.bmcs[0]!.identity.serial });
    expect(t.emu.bmcs[0]!.stats.mounted).toEqual([push.ImageURI]);
  });

  it('bluefield boot options: BootOptions, BootOrder and BootNext on the Settings object, checked, applied at reset, BootNext consumed', async () => {
    t.emu = buildBmcEmulatorApp({ quirks: 'bluefield', timing: ZERO_TIMING });
    const rf = new Rf(t.emu);
    await rf.login('root', '0penBmc');
    expect((await rf.req('PATCH', '/redfish/v1/AccountService/Accounts/1', { Password: 'N3w-lab-secret' })).status).toBe(200);
    const sys = '/redfish/v1/Systems/Bluefield';
    const settings = `${sys}/Settings`;
    const system = (await rf.get(sys)).body!;
    const boot = system.Boot as Record<string, unknown>;
    expect(boot.BootOrder).toEqual(['Boot0000', 'Boot0001', 'Boot0002', 'Boot0003']);
    expect(boot.BootNext).toBeNull();
    expect(boot['BootSourceOverrideTarget@Redfish.AllowableValues']).toContain('UefiBootNext');
    expect(typeof system.LastResetTime).toBe('string');
    const options = (await rf.get(`${sys}/BootOptions`)).body!;
    expect((options.Members as { '@odata.id': string }[]).length).toBe(4);
    expect((await rf.get(`${sys}/BootOptions/Boot0002`)).body).toMatchObject({ BootOptionReference: 'Boot0002', DisplayName: 'NET-OOB-IPV4' });
    // BootOrder must be a permutation of the options; BootNext one of them; UefiBootNext needs a BootNext
    expect(messageId((await rf.req('PATCH', settings, { Boot: { BootOrder: ['Boot0002', 'Boot0000'] } })).body)).toBe('Base.1.16.0.PropertyValueIncorrect');
    expect(messageId((await rf.req('PATCH', settings, { Boot: { BootOrder: ['Boot0002', 'Boot0002', 'Boot0001', 'Boot0003'] } })).body)).toBe('Base.1.16.0.PropertyValueIncorrect');
    expect(messageId((await rf.req('PATCH', settings, { Boot: { BootNext: 'Boot0009' } })).body)).toBe('Base.1.16.0.PropertyValueNotInList');
    expect(messageId((await rf.req('PATCH', settings, { Boot: { BootSourceOverrideTarget: 'UefiBootNext', BootSourceOverrideEnabled: 'Once' } })).body)).toBe('Base.1.16.0.PropertyMissing');
    expect((await rf.req('PATCH', settings, { Boot: { BootOrder: ['Boot0003', 'Boot0000', 'Boot0001', 'Boot0002'] } })).status).toBe(204);
    // pending until the next reset
    expect(((await rf.get(sys)).body!.Boot as Record<string, unknown>).BootOrder).toEqual(['Boot0000', 'Boot0001', 'Boot0002', 'Boot0003']);
    expect(((await rf.get(settings)).body!.Boot as Record<string, unknown>).BootOrder).toEqual(['Boot0003', 'Boot0000', 'Boot0001', 'Boot0002']);
    const booting: BootingEvent[] = [];
    t.emu.events.on('booting', (e) => booting.push(e));
    expect((await rf.req('POST', `${sys}/Actions/ComputerSystem.Reset`, { ResetType: 'On' })).status).toBe(204);
    expect(booting.at(-1)).toMatchObject({ via: 'uefi-http', imageUrl: null, target: null, bootOption: { reference: 'Boot0003', name: 'NET-OOB-IPV4-HTTP' } });
    const after = (await rf.get(sys)).body!;
    expect((after.Boot as Record<string, unknown>).BootOrder).toEqual(['Boot0003', 'Boot0000', 'Boot0001', 'Boot0002']);
    expect(Date.parse(String(after.LastResetTime))).toBeGreaterThan(Date.parse(String(system.LastResetTime)));
    // BootNext once: booted, then gone
    expect((await rf.req('PATCH', settings, { Boot: { BootNext: 'Boot0001', BootSourceOverrideTarget: 'UefiBootNext', BootSourceOverrideEnabled: 'Once' } })).status).toBe(204);
    expect((await rf.req('POST', `${sys}/Actions/ComputerSystem.Reset`, { ResetType: 'ForceRestart' })).status).toBe(204);
    expect(booting.at(-1)).toMatchObject({ via: 'pxe', target: 'UefiBootNext', bootOption: { reference: 'Boot0001', name: 'NET-NIC_P0-IPV4' } });
    expect((await rf.get(sys)).body!.Boot).toMatchObject({ BootNext: null, BootSourceOverrideEnabled: 'Disabled' });
    // no-boot-next: an older firmware without the target
    t.emu.bmcs[0]!.setFaults({ noBootNext: true });
    expect(((await rf.get(sys)).body!.Boot as Record<string, unknown>)['BootSourceOverrideTarget@Redfish.AllowableValues']).not.toContain('UefiBootNext');
    expect(messageId((await rf.req('PATCH', settings, { Boot: { BootNext: 'Boot0001', BootSourceOverrideTarget: 'UefiBootNext', BootSourceOverrideEnabled: 'Once' } })).body)).toBe('Base.1.16.0.PropertyValueNotInList');
  });

  it('ipu: TransferMethod Upload, no eject, Cd/None only, Graceful resets only', async () => {
    const rf = await open('ipu');
    const slot = '/redfish/v1/Systems/1/VirtualMedia/CD1';
    expect(Object.keys(actions((await rf.get(slot)).body))).toEqual(['#VirtualMedia.InsertMedia']);
    const url = t.images.deviceImageUrl();
    const bare = await rf.req('POST', `${slot}/Actions/VirtualMedia.InsertMedia`, { Image: url });
    expect((bare.body!.error as { '@Message.ExtendedInfo': { RelatedProperties: string[] }[] })['@Message.ExtendedInfo'][0]!.RelatedProperties).toEqual(['#/TransferMethod']);
    expect((await rf.req('POST', `${slot}/Actions/VirtualMedia.InsertMedia`, { Image: url, TransferMethod: 'Stream' })).status).toBe(400);
    expect((await rf.req('POST', `${slot}/Actions/VirtualMedia.InsertMedia`, { Image: url, TransferMethod: 'Upload' })).status).toBe(204);
    expect((await rf.req('POST', `${slot}/Actions/VirtualMedia.InsertMedia`, { Image: url, TransferMethod: 'Upload' })).status).toBe(204); // replaces
    expect((await rf.req('POST', `${slot}/Actions/VirtualMedia.EjectMedia`)).status).toBe(404);
    const sys = await rf.get('/redfish/v1/Systems/1');
    expect((sys.body!.Boot as Record<string, string[]>)['BootSourceOverrideTarget@Redfish.AllowableValues']).toEqual(['Cd', 'None']);
    const reset = '/redfish/v1/Systems/1/Actions/ComputerSystem.Reset';
    expect((await rf.req('POST', reset, { ResetType: 'On' })).status).toBe(400);
    expect((await rf.req('POST', reset, { ResetType: 'GracefulRestart' })).status).toBe(204);
    expect((await rf.get('/redfish/v1/Systems/1')).body!.PowerState).toBe('On');
  });
});
