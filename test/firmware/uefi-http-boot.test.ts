// Issue 8, "A real firmware in the tests": a QEMU + OVMF machine boots through `ztp serve` alone
// (DHCP on a bridge in a namespace this test creates, the payload from the image server after
// `ztp image add`), then by PXE through our DHCP + TFTP. Payloads are GRUB builds made at test
// time that print a marker on the serial console: reaching the marker proves the firmware took
// our DHCP answer, fetched the file and started it.
//
// Boots run one after another (the machine has 2 cores; TCG). Each waits at most 75 s for its
// marker (a boot takes 10-30 s); the file stays under 3 minutes.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildEfi, buildIso, payloadSkipReason, type Payload } from './payloads.js';
import { FirmwareLab, firmwareSkipReason } from './qemu.js';
import { buildCli, serve, ztp } from './suite.js';

const skip = firmwareSkipReason() || payloadSkipReason();
const BOOT_TIMEOUT_MS = 75_000;
const SUBNET = { subnet: '10.98.0.0/24', pools: [{ start: '10.98.0.100', end: '10.98.0.150' }] };

let work: string;
let efi: Payload;
let iso: Payload;
let pxeEfi: Payload;
const labs: FirmwareLab[] = [];

beforeAll(() => {
  if (skip) return;
  work = mkdtempSync(join(tmpdir(), 'ztp-fw-payloads-'));
  buildCli();
  const tag = Date.now().toString(36);
  efi = buildEfi(work, `class-${tag}`);
  iso = buildIso(work, `device-${tag}`);
  pxeEfi = buildEfi(work, `pxe-${tag}`);
}, 300_000);
afterEach(async () => {
  while (labs.length) await labs.pop()!.cleanup();
});
afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

function newLab(): FirmwareLab {
  // The peer namespace gives the bridge a port with carrier before any VM starts.
  const lab = new FirmwareLab({ peer: true });
  labs.push(lab);
  return lab;
}

interface HistoryEntry {
  source: string;
  type: string;
  data: Record<string, unknown>;
}
const history = (dataDir: string, serial: string) => (ztp(dataDir, ['device', 'show', serial]) as { history: HistoryEntry[] }).history;

function baseConfig(lab: FirmwareLab, dataDir: string, dhcp: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return { dataDir, publicHost: lab.serverAddress, logLevel: 'info', dhcp: { interface: lab.bridge, ...dhcp }, ...extra };
}

describe.skipIf(skip)('UEFI HTTP boot of QEMU + OVMF through ztp serve', () => {
  it('server mode: a class rule (HTTPClient → URL) boots the .efi; a registered device (MAC, --boot-image) boots its .iso by its per-device URL', async () => {
    const lab = newLab();
    const dataDir = join(lab.dir, 'data');
    ztp(dataDir, ['image', 'add', efi.path, '--name', 'grub-class.efi']);
    ztp(dataDir, ['image', 'add', iso.path, '--name', 'installer.iso']);
    const classMac = '52:54:00:f0:00:01';
    const deviceMac = '52:54:00:f0:00:02';
    ztp(dataDir, ['device', 'add', 'SN-FW-ISO', '--mac', deviceMac, '--boot-image', 'installer.iso']);
    const served = await serve(
      lab,
      baseConfig(lab, dataDir, {
        subnets: [SUBNET],
        classes: [{ name: 'uefi-http-x64', match: { vendorClass: ['HTTPClient'], mac: [classMac] }, options: { boot: { httpUrl: { x64: `http://${lab.serverAddress}:8080/images/grub-class.efi` } } } }],
      }),
    );
    try {
      const vm1 = lab.vm({ mac: classMac, pxe: false, name: 'class' });
      await vm1.waitFor(efi.marker, BOOT_TIMEOUT_MS);
      await vm1.kill();

      const vm2 = lab.vm({ mac: deviceMac, pxe: false, name: 'device' });
      await vm2.waitFor(iso.marker, BOOT_TIMEOUT_MS);
      await vm2.kill();
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- ztp serve ---\n${served.tail()}`);
    }
    // The ISO download is in the device's history, attributed by its per-device URL.
    const events = history(dataDir, 'SN-FW-ISO');
    expect(events.find((e) => e.source === 'images' && e.type === 'download')?.data).toMatchObject({ image: 'installer.iso', completed: true, mac: deviceMac });
    expect(events.some((e) => e.source === 'dhcp' && e.type === 'lease')).toBe(true);
  }, 200_000);

  it('proxy mode beside dnsmasq: dnsmasq hands out the address, ztp the boot URL', async () => {
    const lab = newLab();
    const dataDir = join(lab.dir, 'data');
    ztp(dataDir, ['image', 'add', efi.path, '--name', 'grub-proxy.efi']);
    // dnsmasq on the peer side of the segment: addresses only, no boot options.
    const dnsmasq = lab.spawn(lab.peer, 'dnsmasq', [
      '--keep-in-foreground', '--port=0', '--no-resolv', '--no-hosts', '--log-dhcp', '--log-facility=-',
      `--interface=${lab.peerIf}`, '--bind-interfaces', '--dhcp-range=10.98.0.100,10.98.0.150,1h', '--no-ping',
      `--dhcp-leasefile=${join(lab.dir, 'dnsmasq.leases')}`, `--pid-file=${join(lab.dir, 'dnsmasq.pid')}`,
    ]);
    const served = await serve(
      lab,
      baseConfig(lab, dataDir, {
        mode: 'proxy',
        classes: [{ name: 'uefi-http-x64', match: { vendorClass: ['HTTPClient'] }, options: { boot: { httpUrl: { x64: `http://${lab.serverAddress}:8080/images/grub-proxy.efi` } } } }],
      }),
    );
    try {
      const vm = lab.vm({ mac: '52:54:00:f0:00:03', pxe: false, name: 'proxy' });
      await vm.waitFor(efi.marker, BOOT_TIMEOUT_MS);
      await vm.kill();
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- ztp serve ---\n${served.tail()}\n--- dnsmasq ---\n${dnsmasq.stderr().slice(-3000)}`);
    }
    // The address came from dnsmasq, the boot file from us.
    expect(dnsmasq.stderr()).toMatch(/DHCPACK\(\S+\) 10\.98\.0\.\d+ 52:54:00:f0:00:03/);
    expect(served.logs().some((l) => l.msg === 'image download recorded' && l.image === 'grub-proxy.efi' && l.completed === true)).toBe(true);
  }, 120_000);
});

describe.skipIf(skip)('PXE boot of the same OVMF machine through our DHCP + TFTP', () => {
  it('PXE left on: PXEClient gets next-server and the device image by its per-device TFTP name; the download is in its history', async () => {
    const lab = newLab();
    const dataDir = join(lab.dir, 'data');
    const mac = '52:54:00:f0:00:04';
    ztp(dataDir, ['image', 'add', pxeEfi.path, '--name', 'grub-pxe.efi']);
    ztp(dataDir, ['device', 'add', 'SN-FW-PXE', '--mac', mac, '--boot-image', 'grub-pxe.efi']);
    const served = await serve(lab, baseConfig(lab, dataDir, { subnets: [SUBNET] }, { tftp: { enabled: true } }));
    try {
      const vm = lab.vm({ mac, pxe: true, name: 'pxe' });
      await vm.waitFor(pxeEfi.marker, BOOT_TIMEOUT_MS);
      // PXE, not HTTP boot after PXE gave up: OVMF names the boot option it started.
      expect(vm.serial()).toMatch(/starting Boot\d+ "UEFI PXEv4/);
      await vm.kill();
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- ztp serve ---\n${served.tail()}`);
    }
    const download = history(dataDir, 'SN-FW-PXE').find((e) => e.source === 'images' && e.type === 'download');
    expect(download?.data).toMatchObject({ image: 'grub-pxe.efi', protocol: 'tftp', completed: true, mac });
  }, 120_000);
});
