// Issue 9 "fifty devices", with BMCs: fifty simulated DPUs, a third behind emulated BMCs booting
// by virtual media (generic Redfish), a third behind BlueField BMCs booting by UEFI HTTP (no
// virtual media there), a third without a BMC (racked and powered by hand, UEFI HTTP boot);
// profiles alternate opi / rfc8572; faults injected on the DPUs and on a BMC. The conductor
// drives our Redfish client against the emulator over HTTP, the emulator mounts the image from
// the image server (HEAD + ranges, HTTPS against the suite's CA), the DPUs boot when their BMC
// powers them on. Every device ends in the state, step and reason its fault implies; a silent
// agent ends `timed-out` at its step; a BMC that never shows the media inserted times out at
// media-insert. Real sockets throughout.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.js';
import { imagePath } from '../../src/images/paths.js';
import { silentLogger } from '../../src/log.js';
import type { Job } from '../../src/onboarding/job.js';
import { TERMINAL } from '../../src/onboarding/job.js';
import { issueDeviceIdentity } from '../../src/pki/lab.js';
import { ensureImage, registerDevices, type AdminApi } from '../../src/simulate/admin.js';
import { emulatedBmcs } from '../../src/simulate/bmcs.js';
import { directDhcp } from '../../src/simulate/dhcp.js';
import { VirtualLab, type LabDevice } from '../../src/simulate/lab.js';
import type { Suite } from '../../src/suite.js';
import { startTestSuite, TEST_TOKEN } from '../helpers/suite.js';

const FLEET = 50;
// One fault per device, assigned from the first device: devices 0 and 1 (virtual-media BMCs)
// get the BMC faults. A BMC that never answers its InsertMedia must stall only its own device
// (the client's request queue is per BMC, not per emulator listener).
const FAULTS = 'bmc/media-never-inserted:1,bmc/timeout=insert:1,bad-image-hash:6,agent-crash:4,wrong-password:4,never-boots:4,bad-script:4';
const FAULTED = 24;
type Kind = 'virtual-media' | 'uefi-http' | 'none';
const kindOf = (index: number): Kind => (index < 2 ? 'virtual-media' : (['virtual-media', 'uefi-http', 'none'] as const)[index % 3]!);

let suite: Suite;
let config: Config;
let lab: VirtualLab;

beforeAll(async () => {
  // Default (long) step timeouts: a healthy device never times out, however loaded the
  // machine; the faulted ones carry short timeouts for the step they stall at (stallTimeouts).
  ({ suite } = await startTestSuite('ztp-fleet-bmc-', { config: { onboarding: { concurrency: FLEET } } }));
  config = suite.ctx.config;
});

afterAll(async () => {
  await lab?.stop();
  await suite?.stop();
});

/** Per-device timeouts (seconds) for the step where the device's fault makes it stall. */
function stallTimeouts(d: LabDevice): Record<string, number> | undefined {
  const fault = d.faults.bmc[0] ?? d.faults.dpu[0];
  const rfc = d.profile === 'rfc8572';
  switch (fault) {
    case 'media-never-inserted':
    case 'timeout=insert':
      return { mediaInsert: 5 };
    case 'wrong-password':
    case 'never-boots':
      return { booting: 12 };
    case 'agent-crash':
      return { progress: 5 };
    case 'bad-image-hash':
    case 'bad-script':
      return rfc ? undefined : { progress: 5 };
    default:
      return undefined;
  }
}

interface Want {
  status: Job['status'];
  failedStep: string | null;
  reason: RegExp | null;
}

/** What each device's fault (and profile) must lead to. */
function expected(d: LabDevice): Want {
  if (d.faults.bmc[0] === 'media-never-inserted' || d.faults.bmc[0] === 'timeout=insert') return { status: 'timed-out', failedStep: 'media-insert', reason: /^media-insert did not finish within 5s/ };
  const fault = d.faults.dpu[0];
  const rfc = d.profile === 'rfc8572';
  switch (fault) {
    case undefined:
      return { status: 'complete', failedStep: null, reason: null };
    case 'bad-image-hash':
      // rfc8572 reports boot-image-mismatch; the OPI agent says nothing and goes quiet.
      return rfc ? { status: 'failed', failedStep: 'progress', reason: /^device reported boot-image-mismatch/ } : { status: 'timed-out', failedStep: 'progress', reason: /no further progress report within 5s \(last report boot-image-initiated\)/ };
    case 'agent-crash':
      return { status: 'timed-out', failedStep: 'progress', reason: /no further progress report within 5s \(last report boot-image-initiated\)/ };
    case 'wrong-password':
      return { status: 'timed-out', failedStep: 'booting', reason: /no get-bootstrapping-data from the device within 12s .*last error get-bootstrapping-data: wrong password/ };
    case 'never-boots':
      return { status: 'timed-out', failedStep: 'booting', reason: /no get-bootstrapping-data from the device within 12s \(image (not )?fetched, DHCP not seen\)/ };
    case 'bad-script':
      return rfc ? { status: 'failed', failedStep: 'progress', reason: /^device reported pre-script-error: .*control byte/ } : { status: 'timed-out', failedStep: 'progress', reason: /last report pre-script-initiated/ };
    default:
      throw new Error(`no expectation for ${fault}`);
  }
}

const transitions = (serial: string) =>
  suite.ctx.store
    .history(serial, 0, 1000)
    .filter((e) => e.source === 'onboarding' && e.type === 'transition')
    .map((e) => `${String(e.data.step)}/${String(e.data.status)}`);

describe('fifty simulated DPUs with and without emulated BMCs, mixed profiles, injected faults', () => {
  it('each ends in the right state with the right reason and step', async () => {
    const api: AdminApi = { url: `http://127.0.0.1:${config.api.port}`, token: TEST_TOKEN };
    const image = await ensureImage(api, 'fleet-bmc-os.img', randomBytes(48 * 1024));
    lab = await VirtualLab.create({
      count: FLEET,
      profile: 'mixed',
      faults: FAULTS,
      serialPrefix: 'FBMC',
      macTag: 0x7c,
      bootImage: image.name,
      bootstrapUrl: `https://localhost:${config.bootstrap.port}`,
      serverCaPem: suite.ctx.pki.rootCaPem,
      masaCaPem: suite.ctx.pki.masa.certPem,
      issueIdevid: (serial) => issueDeviceIdentity(suite.ctx.pki, serial),
      dhcp: directDhcp(silentLogger),
      withBmc: (i) => kindOf(i) !== 'none',
      // BlueField BMCs left factory-fresh: the conductor logs in with the factory password and sets the record's.
      bmcs: emulatedBmcs({ log: silentLogger, quirks: (i) => (kindOf(i) === 'uefi-http' ? 'bluefield' : 'generic'), mediaCa: suite.ctx.pki.rootCaPem, commission: false }),
      rangeBytes: 16 * 1024,
      agent: { requestTimeoutMs: 5_000, scriptTimeoutMs: 5_000 },
      onboardingTimeouts: stallTimeouts,
    });
    expect(lab.devices.filter((d) => d.bmc)).toHaveLength(34);
    expect(lab.devices.filter((d) => d.bmc?.factoryPassword === '0penBmc')).toHaveLength(16);
    expect(lab.devices.slice(0, 2).map((d) => d.faults.bmc)).toEqual([['media-never-inserted'], ['timeout=insert']]);
    expect(lab.devices.filter((d) => d.faults.dpu.length || d.faults.bmc.length)).toHaveLength(FAULTED);
    expect((await registerDevices(api, lab.deviceRecords())).created).toBe(FLEET);
    // Registering twice changes nothing (idempotent import, BMC passwords included).
    expect((await registerDevices(api, lab.deviceRecords())).unchanged).toBe(FLEET);

    const conductor = suite.conductor!;
    const queued = conductor.onboard(lab.devices.map((d) => d.serial));
    for (const [i, r] of queued.entries()) expect(r.outcome === 'queued' && r.job?.step, r.serial).toBe(kindOf(i) === 'none' ? 'booting' : 'bmc-check');
    // The devices without a BMC are powered by hand, booting their image over UEFI HTTP; the
    // others boot when the conductor's power-on reaches their BMC.
    const base = new URL(image.urls.device).origin;
    const manual = lab.powerOn((d) => base + imagePath('name', image.name, { mac: d.macs[0]! }));

    const ours = new Set(lab.devices.map((d) => d.serial));
    const deadline = Date.now() + 60_000;
    while (conductor.list().some((j) => ours.has(j.serial) && !TERMINAL.has(j.status))) {
      if (Date.now() > deadline) throw new Error(`fleet did not settle within 60 s: ${conductor.list().filter((j) => !TERMINAL.has(j.status)).map((j) => `${j.serial} ${j.step}/${j.status}`).join(', ')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(await manual).toHaveLength(16);

    for (const d of lab.devices) {
      const job = conductor.job(d.serial)!;
      const want = expected(d);
      const label = `${d.serial} ${kindOf(d.index)} ${d.profile} ${d.faults.bmc[0] ?? d.faults.dpu[0] ?? 'none'}: ${job.status} at ${job.failedStep}: ${job.reason}`;
      expect(job.status, label).toBe(want.status);
      expect(job.failedStep, label).toBe(want.failedStep);
      if (want.reason) expect(job.reason ?? '', label).toMatch(want.reason);
      expect(suite.ctx.store.require(d.serial).state, label).toBe(want.status === 'complete' ? 'onboarded' : want.status);
      expect(job.path, label).toBe(kindOf(d.index) === 'none' ? 'none' : kindOf(d.index));
      // A device its BMC booted was booted the way its BMC boots (and never twice).
      if (d.bmc && d.faults.bmc.length === 0) {
        const runs = d.dpu.runs.filter((r) => r.outcome !== 'os-booted');
        expect(runs.map((r) => r.booting.via), label).toEqual([kindOf(d.index)]);
        if (!d.faults.dpu.includes('never-boots')) expect(runs[0]!.firmware?.bytes, label).toBe(48 * 1024);
      }
    }
    expect(lab.devices.filter((d) => conductor.job(d.serial)!.status === 'complete')).toHaveLength(FLEET - FAULTED);

    // Every transition is a history event: a healthy device of each kind went through its path.
    const healthy = (kind: Kind) => lab.devices.find((d) => kindOf(d.index) === kind && !d.faults.dpu.length && !d.faults.bmc.length)!;
    const tail = ['booting/running', 'bootstrapping/running', 'progress/running'];
    expect(transitions(healthy('virtual-media').serial)).toEqual(['bmc-check/queued', 'bmc-check/running', 'media-insert/running', 'boot-override/running', 'power-on/running', ...tail, 'cleanup/running', 'complete/complete']);
    expect(transitions(healthy('uefi-http').serial)).toEqual(['bmc-check/queued', 'bmc-check/running', 'http-boot-set/running', 'boot-override/running', 'power-on/running', ...tail, 'cleanup/running', 'complete/complete']);
    expect(transitions(healthy('none').serial)).toEqual(['booting/queued', ...tail, 'complete/complete']);
    // The BMC steps of a healthy virtual-media device, as its history records them, cleanup included.
    const redfish = suite.ctx.store.history(healthy('virtual-media').serial, 0, 1000).filter((e) => e.source === 'redfish').map((e) => `${e.type}:${String(e.data.outcome)}`);
    expect(redfish).toEqual(expect.arrayContaining(['insert:ok', 'verify-inserted:ok', 'boot-override:ok', 'reset:ok', 'eject:ok', 'clear-boot:ok']));
    // The BMC that never shows the media inserted: the insert was accepted, the wait for it is what timed out.
    const stuck = suite.ctx.store.history(lab.devices[0]!.serial, 0, 1000).filter((e) => e.source === 'redfish').map((e) => `${e.type}:${String(e.data.outcome)}`);
    expect(stuck).toContain('insert:ok');
    expect(stuck.some((s) => s.startsWith('reset'))).toBe(false);
    // The BMC that never answers InsertMedia: the call in flight was aborted at the step's timeout.
    const hung = suite.ctx.store.history(lab.devices[1]!.serial, 0, 1000).filter((e) => e.source === 'redfish').map((e) => `${e.type}:${String(e.data.outcome)}`);
    expect(hung).not.toContain('insert:ok');
    // A factory-fresh BlueField BMC: the conductor changed its password to the record's, once.
    const fresh = healthy('uefi-http');
    const changes = suite.ctx.store.history(fresh.serial, 0, 1000).filter((e) => e.source === 'redfish' && e.type === 'password-change');
    expect(changes.map((e) => e.data.outcome)).toEqual(['ok']);
    // A timed-out device says after how long, at which step.
    const silent = lab.devices.find((d) => d.faults.dpu[0] === 'agent-crash' && d.bmc)!;
    const last = suite.ctx.store.history(silent.serial, 0, 1000).filter((e) => e.source === 'onboarding' && e.data.status === 'timed-out').at(-1)!;
    expect(last.data).toMatchObject({ status: 'timed-out', failedStep: 'progress' });
    expect(Number(last.data.afterMs)).toBeGreaterThanOrEqual(5000);
  }, 90_000);
});
