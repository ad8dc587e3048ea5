// Debian's python3-sushy, an independent Redfish client (Ironic's), drives the emulator over real
// sockets: insert → boot once → reset → eject, reading back the state it set. The emulator's
// insert downloads the device's per-device image URL from the project's image server, and that
// download lands in the device's history.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBmcEmulator, type BootingEvent, type QuirkMode } from '../../src/redfish/emulator/index.js';
import { missingShared, sharedPath } from '../helpers/shared.js';
import { DEVICE, startImageServer, until, type ImageServer } from './helpers.js';

const run = promisify(execFile);
const PYTHON = '/usr/bin/python3';
const SCRIPT = join(import.meta.dirname, 'sushy_drive.py');

function missingSushy(): string {
  if (!existsSync(PYTHON)) return `${PYTHON} is absent; skipping`;
  try {
    execFileSync(PYTHON, ['-c', 'import sushy'], { stdio: 'ignore' });
    return '';
  } catch {
    const reason = 'python3-sushy is not installed (.ci/run installs it); skipping';
    console.warn(reason);
    return reason;
  }
}

const skip = missingSushy();
const mockup = missingShared('redfish', 'mockups', 'public-smartnic') ? undefined : sharedPath('redfish', 'mockups', 'public-smartnic');

interface Observed {
  systems: string[];
  system: string;
  manager: string;
  slot: string;
  after_insert: { image: string; inserted: boolean };
  allowed_boot: string[];
  after_boot_override: { target: string; enabled: string; mode: string };
  power_before: string;
  reset: string;
  after_reset: { power: string; enabled: string };
  after_eject: { image: string | null; inserted: boolean };
}

let images: ImageServer;
beforeAll(async () => {
  images = await startImageServer();
});
afterAll(async () => {
  await images?.stop();
});

async function drive(quirks: QuirkMode, addressing: 'per-port' | 'prefix') {
  const running = await startBmcEmulator({ quirks, basePort: 0, ...(mockup ? { mockupDir: mockup } : {}), timing: { powerOnMs: 300, powerOffMs: 100, taskMs: 0, ejectLagMs: 0, postMs: 0, offSettleMs: 0 } });
  try {
    const bmc = running.emulator.bmcs[0]!;
    const endpoint = running.endpoints[0]!;
    const booting: BootingEvent[] = [];
    running.emulator.events.on('booting', (e) => booting.push(e));
    const before = images.store.history(DEVICE.serial).filter((e) => e.source === 'images' && e.type === 'download').length;
    const url = addressing === 'per-port' ? endpoint.rootUrl! : endpoint.url;
    const image = images.deviceImageUrl();
    const { stdout } = await run(PYTHON, [SCRIPT, url, endpoint.username, endpoint.password, image], { timeout: 60_000 });
    const seen = JSON.parse(stdout) as Observed;
    return { seen, bmc, booting, image, before };
  } finally {
    await running.close();
  }
}

describe.skipIf(skip)('python3-sushy drives the emulator', () => {
  it('insert → boot once → reset → eject on a per-port BMC (sushy wants /redfish/v1 at the root)', async () => {
    const { seen, bmc, booting, image, before } = await drive('generic', 'per-port');
    expect(seen.system).toBe(bmc.dpuSystemId);
    if (mockup) expect(seen.systems).toHaveLength(2); // host and DPU: sushy's pick is the DPU
    expect(seen.after_insert).toEqual({ image, inserted: true });
    expect(seen.allowed_boot).toContain('Cd');
    expect(seen.after_boot_override).toEqual({ target: 'Cd', enabled: 'Once', mode: 'UEFI' });
    expect(seen.power_before).toBe('Off');
    expect(seen.reset).toBe('On');
    expect(seen.after_reset).toEqual({ power: 'On', enabled: 'Disabled' }); // the Once override was consumed
    expect(seen.after_eject).toEqual({ image: null, inserted: false });
    // what the DPU behind the BMC was told: it booted the inserted ISO from the one-time CD override
    expect(booting.filter((b) => b.systemId === bmc.dpuSystemId)).toEqual([expect.objectContaining({ via: 'virtual-media', imageUrl: image, target: 'Cd', serial: bmc.identity.serial })]);
    // the BMC really fetched the image: the download is in the device's history
    expect(bmc.stats.mounted).toEqual([image]);
    await until(() => images.store.history(DEVICE.serial).filter((e) => e.source === 'images' && e.type === 'download').length > before);
    const download = images.store.history(DEVICE.serial).filter((e) => e.source === 'images' && e.type === 'download').pop()!;
    expect(download.data).toMatchObject({ image: 'dpu-installer.iso', mac: DEVICE.mac, completed: true });
  });

  it('the same through a path-prefix base URL, against iLO quirks (EjectMedia needs {}, weak ETags, trailing slashes)', async () => {
    const { seen, bmc, image } = await drive('ilo', 'prefix');
    expect(seen.system).toBe('1');
    expect(seen.after_insert).toEqual({ image, inserted: true });
    expect(seen.after_boot_override).toEqual({ target: 'Cd', enabled: 'Once', mode: 'UEFI' });
    expect(seen.after_reset.power).toBe('On');
    expect(seen.after_eject).toEqual({ image: null, inserted: false });
    expect(bmc.stats.statuses[415]).toBe(1); // sushy's first EjectMedia had no body, as on a real iLO
    expect(bmc.stats.statuses[412]).toBe(1); // sushy's If-Match with the weak tag, then the strong form
  });
});
