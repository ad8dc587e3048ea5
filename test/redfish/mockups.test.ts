// The client against each DMTF public mockup (../shared/redfish/mockups, BSD-3-Clause) served as a
// static tree: system choice, inventory and virtual-media discovery read from real DMTF data, and
// public-smartnic's DPU system, whose manager CD slot has no actions, goes down the PATCH path.
import { afterEach, describe, expect, it } from 'vitest';
import { openBmcSession } from '../../src/redfish/index.js';
import { isZtpError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import type { StepOutcome } from '../../src/redfish/api.js';
import { missingShared, sharedPath } from '../helpers/shared.js';
import { TestBmc } from './server.js';

const skip = missingShared('redfish', 'mockups');
const mockup = (name: string) => sharedPath('redfish', 'mockups', name);
const fast = { timeouts: { mediaMs: 2_000, pollMs: 20, pollCapMs: 100 }, tuning: { backoffBaseMs: 10, retries: 1 } };

describe.skipIf(!!skip)('client against the DMTF mockups (static tree)', () => {
  let bmc: TestBmc | undefined;
  afterEach(async () => {
    await bmc?.close();
    bmc = undefined;
  });

  it('public-smartnic: picks the SystemType DPU system and reads its offloaded port MACs and the manager CD slot', async () => {
    bmc = await TestBmc.start({ mockup: mockup('public-smartnic') });
    const session = await openBmcSession({ url: bmc.url, username: 'admin', password: 'pw' }, { log: silentLogger, ...fast });
    try {
      const inv = await session.inventory();
      expect(inv).toMatchObject({ systemId: 'Card1-SoC', systemType: 'DPU', vendor: 'Contoso', model: '9900', serial: '637XR7568R4', powerState: 'On' });
      expect(inv.macs).toEqual(['aa:bb:cc:dd:ee:f5', expect.stringMatching(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/)]);
      expect(inv.ports[0]).toMatchObject({ id: 'SC2KP1', adapter: 'Chassis/Card1/NetworkAdapters/Slot1' });
      // Floppy1 is not a CD; CD1 lives on the Manager and has no actions.
      expect(inv.virtualMedia).toEqual([{ id: 'CD1', mediaTypes: ['CD', 'DVD'], inserted: true, image: 'redfish.dmtf.org/freeImages/freeOS.1.1.iso', via: 'patch' }]);
      expect(inv.allowedResetTypes).toContain('ForceRestart');
      expect(inv.firmware).toContainEqual({ name: 'BMC BMC', version: '1.45.455b66-rev4' });
      // A static tree refuses POST on Sessions: the client fell back to Basic.
      expect(session.sessionMode).toBe('basic');
      expect(bmc.requestsOf('POST', '/SessionService/Sessions')).toHaveLength(1);
    } finally {
      await session.close();
    }
  });

  it('public-smartnic: the action-less CD slot takes the PATCH path (eject by PATCH, insert by PATCH, verified by re-reading)', async () => {
    bmc = await TestBmc.start({ mockup: mockup('public-smartnic'), acceptPatch: true, etags: 'weak' });
    const steps: StepOutcome[] = [];
    const session = await openBmcSession({ url: bmc.url }, { log: silentLogger, onStep: (s) => steps.push(s), ...fast });
    try {
      const url = 'https://images.example/dpu-installer.iso';
      const result = await session.insertMedia(url);
      expect(result).toEqual({ outcome: 'inserted', slot: 'CD1' });
      const patches = bmc.requestsOf('PATCH', '/Managers/BMC/VirtualMedia/CD1');
      expect(patches.map((p) => p.body)).toEqual([
        { Image: null, Inserted: false },
        { Image: url, Inserted: true, WriteProtected: true, TransferProtocolType: 'HTTPS' },
      ]);
      // The ETag read with the slot rides in If-Match.
      expect(patches[0]!.headers['if-match']).toMatch(/^W\/"/);
      expect(bmc.requestsOf('POST', /VirtualMedia/)).toEqual([]);
      expect(steps.map((s) => `${s.step}:${s.outcome}`)).toEqual(['login:ok', 'eject:ok', 'insert:ok', 'verify-inserted:ok']);
      expect(steps.find((s) => s.step === 'insert')?.via).toMatch(/^patch\+if-match/);
      // Idempotent on resume: the same image is not inserted twice.
      expect(await session.insertMedia(url)).toEqual({ outcome: 'already-inserted', slot: 'CD1' });
      expect(bmc.requestsOf('PATCH')).toHaveLength(2);
    } finally {
      await session.close();
    }
  });

  it('public-smartnic as published (GET only): the client still chooses PATCH, and the refusal is a typed error naming the step', async () => {
    bmc = await TestBmc.start({ mockup: mockup('public-smartnic') });
    const session = await openBmcSession({ url: bmc.url }, { log: silentLogger, ...fast });
    try {
      const err = await session.insertMedia('https://images.example/x.iso').catch((e: unknown) => e);
      expect(isZtpError(err, 'REDFISH_UNSUPPORTED')).toBe(true);
      expect((err as { details: Record<string, unknown> }).details).toMatchObject({ httpStatus: 405, step: 'eject', messageId: 'Base.1.8.OperationNotAllowed', uri: '/redfish/v1/Managers/BMC/VirtualMedia/CD1' });
      expect(bmc.requestsOf('PATCH', '/Managers/BMC/VirtualMedia/CD1')).toHaveLength(1);
    } finally {
      await session.close();
    }
  });

  it('public-rackmount1: the only system, media on the System, boot targets and firmware inventory', async () => {
    bmc = await TestBmc.start({ mockup: mockup('public-rackmount1') });
    const session = await openBmcSession({ url: bmc.url }, { log: silentLogger, ...fast });
    try {
      const inv = await session.inventory();
      expect(inv).toMatchObject({ systemId: '437XR1138R2', systemType: 'Physical', vendor: 'Contoso', model: '3500', serial: '437XR1138R2', bootProgress: 'OSRunning' });
      expect(inv.virtualMedia.map((m) => m.id)).toEqual(['CD1', 'CD2']);
      expect(inv.allowedBootTargets).toEqual(expect.arrayContaining(['Cd', 'Pxe', 'Hdd', 'UefiTarget']));
      expect(inv.macs).toContain('12:44:6a:3b:04:11');
      expect(inv.firmware.map((f) => f.version)).toEqual(expect.arrayContaining(['P79 v1.45', '1.45.455b66-rev4']));
      expect(bmc.requestsOf('GET', /Managers\/BMC\/VirtualMedia/)).toEqual([]);
    } finally {
      await session.close();
    }
  });

  it('public-bladed: four physical systems and none configured is a typed error listing them; --system picks one', async () => {
    bmc = await TestBmc.start({ mockup: mockup('public-bladed') });
    const err = await openBmcSession({ url: bmc.url }, { log: silentLogger, ...fast }).catch((e: unknown) => e);
    expect(isZtpError(err, 'REDFISH_SYSTEM_NOT_FOUND')).toBe(true);
    expect((err as { details: { systems: string[] } }).details.systems).toHaveLength(4);
    const session = await openBmcSession({ url: bmc.url, systemId: '529QB9452R6' }, { log: silentLogger, ...fast });
    try {
      const inv = await session.inventory();
      expect(inv.systemId).toBe('529QB9452R6');
      expect(inv.virtualMedia).toEqual([]);
    } finally {
      await session.close();
    }
    const missing = await openBmcSession({ url: bmc.url, systemId: 'nope' }, { log: silentLogger, ...fast }).catch((e: unknown) => e);
    expect(isZtpError(missing, 'REDFISH_SYSTEM_NOT_FOUND')).toBe(true);
  });
});
