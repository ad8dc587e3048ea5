// `ztp bmc …` through main(): a device record's BMC is driven, its steps land in the device's
// history (and move it to bmc-booting), `inventory --record` matches a BMC to a device by MAC,
// and failures exit with the README's codes.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { EXIT } from '../../src/cli/common.js';
import { parseFaults, startBmcEmulator, ZERO_TIMING } from '../../src/redfish/emulator/index.js';
import { TestBmc } from './server.js';
import { basicActions, miniTree, paths } from './tree.js';

async function ztp(dataDir: string, ...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['--data-dir', dataDir, ...args], { out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join('\n'), err: err.join('\n'), json: () => JSON.parse(out.join('')) };
}

const P = paths();
const creds = { username: 'admin', password: 'bmc-secret-42' };

describe('ztp bmc', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ztp-bmc-cli-'));
  let bmc: TestBmc;
  beforeAll(async () => {
    const tree = miniTree();
    tree['/redfish/v1/Systems/System1/EthernetInterfaces'] = { Members: [{ '@odata.id': '/redfish/v1/Systems/System1/EthernetInterfaces/p0' }] };
    tree['/redfish/v1/Systems/System1/EthernetInterfaces/p0'] = { Id: 'p0', MACAddress: '02:AA:00:00:00:01' };
    (tree[P.sys] as Record<string, unknown>).EthernetInterfaces = { '@odata.id': '/redfish/v1/Systems/System1/EthernetInterfaces' };
    bmc = await TestBmc.start({ tree, sessions: creds, acceptPatch: true, handler: basicActions() });
  });
  afterAll(async () => {
    await bmc.close();
  });

  it('boot-iso <serial>: the record\'s BMC runs the whole sequence; every step is a history event; the device is bmc-booting', async () => {
    const add = await ztp(dir, 'device', 'add', 'SN-BMC-1', '--mac', '02:aa:00:00:00:01', '--bmc', bmc.url, '--bmc-user', creds.username, '--bmc-password', creds.password);
    expect(add.code).toBe(EXIT.OK);
    const r = await ztp(dir, 'bmc', 'boot-iso', 'SN-BMC-1', 'http://images.example/dpu.iso', '--json');
    expect(r.err).toBe('');
    expect(r.code).toBe(EXIT.OK);
    const result = r.json();
    expect(result).toMatchObject({ path: 'virtual-media', device: 'SN-BMC-1', image: 'http://images.example/dpu.iso' });
    expect(result.steps.map((s: { step: string; outcome: string }) => `${s.step}:${s.outcome}`)).toEqual([
      'eject:skipped', 'insert:ok', 'verify-inserted:ok', 'boot-override:ok', 'reset:ok', 'wait-power:ok', 'boot-requested:ok',
    ]);
    expect(bmc.resource(P.slot)).toMatchObject({ Image: 'http://images.example/dpu.iso', Inserted: true });
    expect(bmc.resource(P.sys)).toMatchObject({ PowerState: 'On', Boot: { BootSourceOverrideTarget: 'Cd', BootSourceOverrideEnabled: 'Once', BootSourceOverrideMode: 'UEFI' } });
    expect(bmc.liveSessions.size).toBe(0);
    const shown = (await ztp(dir, 'device', 'show', 'SN-BMC-1', '--json')).json();
    expect(shown.device.state).toBe('bmc-booting');
    const events = shown.history.filter((e: { source: string }) => e.source === 'redfish');
    expect(events.map((e: { type: string }) => e.type)).toEqual(['login', 'eject', 'insert', 'verify-inserted', 'boot-override', 'reset', 'wait-power', 'boot-requested']);
    expect(events[2].data).toMatchObject({ outcome: 'ok', via: 'action', bmc: bmc.url });
    expect(JSON.stringify(shown)).not.toContain(creds.password);
    // Resumed: the same image is already in the slot; the system is on, so it restarts.
    const again = (await ztp(dir, 'bmc', 'boot-iso', 'SN-BMC-1', 'http://images.example/dpu.iso', '--json')).json();
    expect(again.steps.find((s: { step: string }) => s.step === 'insert')).toMatchObject({ outcome: 'skipped' });
    expect(again.steps.find((s: { step: string }) => s.step === 'reset')).toMatchObject({ outcome: 'ok', detail: 'ForceRestart' });
  });

  it('power status|on|off and eject, human and --json', async () => {
    expect((await ztp(dir, 'bmc', 'power', 'SN-BMC-1')).out).toBe('power On');
    const on = await ztp(dir, 'bmc', 'power', 'SN-BMC-1', 'on', '--json');
    expect(on.json()).toMatchObject({ outcome: 'already-on', powerState: 'On' });
    const off = await ztp(dir, 'bmc', 'power', 'SN-BMC-1', 'off', '--wait', '--json');
    expect(off.json()).toMatchObject({ outcome: 'reset', resetType: 'ForceOff', powerState: 'Off' });
    const ej = await ztp(dir, 'bmc', 'eject', 'SN-BMC-1', '--json');
    expect(ej.code).toBe(EXIT.OK);
    expect(bmc.resource(P.slot)).toMatchObject({ Inserted: false });
    const clear = await ztp(dir, 'bmc', 'clear-boot', 'SN-BMC-1', '--json');
    expect(clear.json().steps.map((s: { step: string }) => s.step)).toEqual(['login', 'clear-boot']);
    expect(bmc.resource(P.sys)).toMatchObject({ Boot: { BootSourceOverrideEnabled: 'Disabled' } });
  });

  it('inventory <url> --record matches the BMC to the device by port MAC and records it', async () => {
    // The port MAC moves to a device with no BMC coordinates yet.
    expect((await ztp(dir, 'device', 'rm', 'SN-BMC-1')).code).toBe(EXIT.OK);
    expect((await ztp(dir, 'device', 'add', 'SN-BMC-2', '--mac', '02:aa:00:00:00:01')).code).toBe(EXIT.OK);
    const r = await ztp(dir, 'bmc', 'inventory', bmc.url, '--user', creds.username, '--password', creds.password, '--record', '--json');
    expect(r.code).toBe(EXIT.OK);
    expect(r.json()).toMatchObject({ device: 'SN-BMC-2', recorded: true, inventory: { serial: 'SN-TREE-1', macs: ['02:aa:00:00:00:01'] } });
    const shown = (await ztp(dir, 'device', 'show', 'SN-BMC-2', '--json')).json();
    expect(shown.device.bmc).toMatchObject({ address: bmc.url, username: creds.username, hasPassword: true, systemId: 'System1' });
    expect(shown.history.at(-1)).toMatchObject({ source: 'redfish', type: 'inventory', data: { matchedBy: 'mac' } });
    const human = await ztp(dir, 'bmc', 'inventory', 'SN-BMC-2');
    expect(human.out).toMatch(/port MACs:\s+02:aa:00:00:00:01/);
  });

  it('inventory <url> --record matches by the serial the BMC reports before MACs; no match records nothing (exit 3)', async () => {
    // SN-TREE-1 is the system's SerialNumber; SN-BMC-2 still owns the port MAC: the serial wins.
    expect((await ztp(dir, 'device', 'add', 'SN-TREE-1')).code).toBe(EXIT.OK);
    const r = await ztp(dir, 'bmc', 'inventory', bmc.url, '--user', creds.username, '--password', creds.password, '--record', '--json');
    expect(r.code).toBe(EXIT.OK);
    expect(r.json()).toMatchObject({ device: 'SN-TREE-1', recorded: true });
    expect(r.out).not.toContain(creds.password);
    const shown = (await ztp(dir, 'device', 'show', 'SN-TREE-1', '--json')).json();
    expect(shown.device.bmc).toMatchObject({ address: bmc.url, username: creds.username, hasPassword: true, systemId: 'System1' });
    expect(shown.history.at(-1)).toMatchObject({ source: 'redfish', type: 'inventory', data: { matchedBy: 'serial', serial: 'SN-TREE-1', macs: ['02:aa:00:00:00:01'] } });
    // The recorded coordinates work: the device is now driven by its serial.
    expect((await ztp(dir, 'bmc', 'power', 'SN-TREE-1')).out).toMatch(/^power (On|Off)$/);

    for (const serial of ['SN-TREE-1', 'SN-BMC-2']) expect((await ztp(dir, 'device', 'rm', serial)).code).toBe(EXIT.OK);
    const none = await ztp(dir, 'bmc', 'inventory', bmc.url, '--user', creds.username, '--password', creds.password, '--record', '--json');
    expect(none.code).toBe(EXIT.NOT_FOUND);
    expect(JSON.parse(none.out)).toMatchObject({ device: null, recorded: false });
    expect(none.err).toMatch(/no registered device/);
    expect((await ztp(dir, 'device', 'list', '--json')).json()).toEqual([]);
  });

  it('exit codes: unknown serial 3, conflicting TLS flags 2, unreachable BMC 6, no such system 3, refused credentials 1', async () => {
    expect((await ztp(dir, 'bmc', 'inventory', 'NOPE')).code).toBe(EXIT.NOT_FOUND);
    expect((await ztp(dir, 'bmc', 'inventory', bmc.url, '--insecure', '--fingerprint', 'aa')).code).toBe(EXIT.USAGE);
    const dead = await TestBmc.start({});
    const deadUrl = dead.url;
    await dead.close();
    const unreachable = await ztp(dir, 'bmc', 'power', deadUrl, '--json');
    expect(unreachable.code).toBe(EXIT.UNAVAILABLE);
    expect(JSON.parse(unreachable.err).error.code).toBe('REDFISH_UNREACHABLE');
    expect((await ztp(dir, 'bmc', 'inventory', bmc.url, '--user', creds.username, '--password', creds.password, '--system', 'Nope')).code).toBe(EXIT.NOT_FOUND);
    const refused = await ztp(dir, 'bmc', 'inventory', bmc.url, '--user', creds.username, '--password', 'wrong', '--json');
    expect(refused.code).toBe(EXIT.ERROR);
    expect(JSON.parse(refused.err).error.code).toBe('REDFISH_AUTH_FAILED');
    expect((await ztp(dir, 'bmc', 'power', bmc.url, 'explode')).code).toBe(EXIT.USAGE);
  });
});

describe('ztp bmc boot-oob (BlueField out-of-band network boot, against the emulator)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ztp-bmc-oob-'));

  it('BootNext by default; --pxe on a BMC without UefiBootNext moves the entry first and clear-boot --boot-order puts the order back', async () => {
    const emu = await startBmcEmulator({ count: 2, quirks: 'bluefield', timing: ZERO_TIMING, faults: parseFaults('bmc-0002@no-boot-next') });
    try {
      const [a, b] = emu.endpoints as [typeof emu.endpoints[0], typeof emu.endpoints[0]];
      const login = (url: string) => [url, '--user', 'root', '--factory-password', '0penBmc', '--password', 'Lab-Pass-5521'];
      const next = await ztp(dir, 'bmc', 'boot-oob', ...login(a.url), '--json');
      expect(next.err).toBe('');
      expect(next.code).toBe(EXIT.OK);
      expect(next.json()).toMatchObject({ path: 'oob-network' });
      expect(next.json().steps.find((s: { step: string }) => s.step === 'boot-oob')).toMatchObject({ outcome: 'ok', via: 'boot-next+settings-object' });
      expect(next.json().previousBootOrder).toBeUndefined();

      const creds = ['--user', 'root', '--password', 'Lab-Pass-5521'];
      const order = await ztp(dir, 'bmc', 'boot-oob', ...login(b.url), '--pxe', '--no-restart');
      expect(order.code).toBe(EXIT.OK);
      expect(order.out).toContain('clear-boot --boot-order Boot0000,Boot0001,Boot0002,Boot0003');
      const dpu = emu.emulator.bmcs[1]!.dpu;
      expect(dpu.pendingBoot?.BootOrder).toEqual(['Boot0002', 'Boot0000', 'Boot0001', 'Boot0003']);
      const clear = await ztp(dir, 'bmc', 'clear-boot', b.url, ...creds, '--boot-order', 'Boot0000,Boot0001,Boot0002,Boot0003', '--json');
      expect(clear.code).toBe(EXIT.OK);
      expect(clear.json().steps.map((s: { step: string; outcome: string }) => `${s.step}:${s.outcome}`)).toEqual(['login', 'clear-boot', 'restore-boot-order'].map((x) => `${x}:ok`));
      expect(dpu.pendingBoot?.BootOrder).toEqual(['Boot0000', 'Boot0001', 'Boot0002', 'Boot0003']);
      expect((await ztp(dir, 'bmc', 'boot-oob', b.url, ...creds, '--pxe', '--http')).code).toBe(EXIT.USAGE);
      expect((await ztp(dir, 'bmc', 'clear-boot', b.url, ...creds, '--boot-order', ',')).code).toBe(EXIT.USAGE);
      for (const bmc of emu.emulator.bmcs) expect(bmc.openSessions).toBe(0);
    } finally {
      await emu.close();
    }
  });
});
