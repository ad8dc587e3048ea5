// Issue 9 "fifty devices": a virtual lab of 50 simulated DPUs, mixed profiles and injected
// faults, registered through the admin API and onboarded by the conductor; every device ends in
// the state, step and reason its fault implies. A silent agent (the OPI agent never reports
// its errors; a crashed agent stops) ends `timed-out` at its step, thanks to short per-step
// timeouts. Real sockets throughout: HTTPS with mTLS to the bootstrap server, the image server,
// the admin API.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.js';
import { imagePath } from '../../src/images/paths.js';
import { silentLogger } from '../../src/log.js';
import type { Job } from '../../src/onboarding/job.js';
import { TERMINAL } from '../../src/onboarding/job.js';
import { issueDeviceIdentity } from '../../src/pki/lab.js';
import { ensureImage, registerDevices, type AdminApi } from '../../src/simulate/admin.js';
import { directDhcp } from '../../src/simulate/dhcp.js';
import { VirtualLab, type LabDevice } from '../../src/simulate/lab.js';
import type { Suite } from '../../src/suite.js';
import { startTestSuite, TEST_TOKEN } from '../helpers/suite.js';

const FLEET = 50;
const FAULTS = 'bad-image-hash:6,agent-crash:4,wrong-password:4,never-boots:4,bad-script:4';

let suite: Suite;
let config: Config;
let lab: VirtualLab;

beforeAll(async () => {
  // Default (long) step timeouts: a healthy device never times out, however loaded the
  // machine; the faulted ones carry short timeouts for the step they stall at (stallTimeouts).
  ({ suite } = await startTestSuite('ztp-fleet-', { config: { onboarding: { concurrency: FLEET } } }));
  config = suite.ctx.config;
});

afterAll(async () => {
  await lab?.stop();
  await suite?.stop();
});

/** Per-device timeouts (seconds) for the step where the device's fault makes it stall. */
function stallTimeouts(d: LabDevice): Record<string, number> | undefined {
  const fault = d.faults.dpu[0];
  if (fault === 'wrong-password' || fault === 'never-boots') return { booting: 6 };
  if (fault === 'agent-crash' || ((fault === 'bad-image-hash' || fault === 'bad-script') && d.profile === 'opi')) return { progress: 3 };
  return undefined;
}

/** What each device's fault (and profile) must lead to. */
function expected(d: LabDevice): { status: Job['status']; failedStep: string | null; reason: RegExp | null } {
  const fault = d.faults.dpu[0];
  const rfc = d.profile === 'rfc8572';
  switch (fault) {
    case undefined:
      return { status: 'complete', failedStep: null, reason: null };
    case 'bad-image-hash':
      // rfc8572 reports boot-image-mismatch; the OPI agent says nothing and goes quiet.
      return rfc ? { status: 'failed', failedStep: 'progress', reason: /device reported boot-image-mismatch/ } : { status: 'timed-out', failedStep: 'progress', reason: /last report boot-image-initiated/ };
    case 'agent-crash':
      return { status: 'timed-out', failedStep: 'progress', reason: /no further progress report .*last report boot-image-initiated/ };
    case 'wrong-password':
      return { status: 'timed-out', failedStep: 'booting', reason: /no get-bootstrapping-data .*last error get-bootstrapping-data: wrong password/ };
    case 'never-boots':
      return { status: 'timed-out', failedStep: 'booting', reason: /no get-bootstrapping-data from the device within 6s \(image not fetched, DHCP not seen\)/ };
    case 'bad-script':
      // rfc8572 runs the pre-script after the image and reports its error; OPI runs it after the config, silently failing.
      return rfc ? { status: 'failed', failedStep: 'progress', reason: /device reported pre-script-error: .*not (valid UTF-8 )?(executable )?text|control byte/ } : { status: 'timed-out', failedStep: 'progress', reason: /last report pre-script-initiated/ };
    default:
      throw new Error(`no expectation for ${fault}`);
  }
}

describe('fifty simulated DPUs, mixed profiles, injected faults', () => {
  it('each ends in the right state with the right reason and step', async () => {
    const api: AdminApi = { url: `http://127.0.0.1:${config.api.port}`, token: TEST_TOKEN };
    const image = await ensureImage(api, 'fleet-os.img', randomBytes(48 * 1024));
    lab = await VirtualLab.create({
      count: FLEET,
      profile: 'mixed',
      faults: FAULTS,
      serialPrefix: 'FLEET',
      bootImage: image.name,
      bootstrapUrl: `https://localhost:${config.bootstrap.port}`,
      serverCaPem: suite.ctx.pki.rootCaPem,
      masaCaPem: suite.ctx.pki.masa.certPem,
      issueIdevid: (serial) => issueDeviceIdentity(suite.ctx.pki, serial),
      dhcp: directDhcp(silentLogger),
      rangeBytes: 16 * 1024,
      agent: { requestTimeoutMs: 5_000, scriptTimeoutMs: 5_000 },
      onboardingTimeouts: stallTimeouts,
    });
    const registered = await registerDevices(api, lab.deviceRecords());
    expect(registered.created).toBe(FLEET);
    // Registering twice changes nothing (idempotent import).
    expect((await registerDevices(api, lab.deviceRecords())).unchanged).toBe(FLEET);

    const conductor = suite.conductor!;
    const queued = conductor.onboard(lab.devices.map((d) => d.serial));
    expect(queued.every((r) => r.outcome === 'queued' && r.job?.step === 'booting')).toBe(true);
    // No BMCs here: the DPUs are powered by hand, booting their image over UEFI HTTP.
    const base = new URL(image.urls.device).origin;
    const runs = await lab.powerOn((d) => base + imagePath('name', image.name, { mac: d.macs[0]! }));
    expect(runs.filter((r) => r.outcome === 'complete')).toHaveLength(FLEET - 22);

    const deadline = Date.now() + 30_000;
    while (conductor.list().filter((j) => lab.devices.some((d) => d.serial === j.serial)).some((j) => !TERMINAL.has(j.status))) {
      if (Date.now() > deadline) throw new Error('fleet did not settle within 30 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    const outcomes = lab.devices.map((d) => {
      const job = conductor.job(d.serial)!;
      return { serial: d.serial, profile: d.profile, fault: d.faults.dpu[0] ?? 'none', status: job.status, failedStep: job.failedStep, reason: job.reason, state: suite.ctx.store.require(d.serial).state };
    });
    for (const [i, o] of outcomes.entries()) {
      const want = expected(lab.devices[i]!);
      const label = `${o.serial} ${o.profile} ${o.fault}: ${o.status} at ${o.failedStep}: ${o.reason}`;
      expect(o.status, label).toBe(want.status);
      expect(o.failedStep, label).toBe(want.failedStep);
      if (want.reason) expect(o.reason ?? '', label).toMatch(want.reason);
      expect(o.state, label).toBe(want.status === 'complete' ? 'onboarded' : want.status);
    }
    expect(outcomes.filter((o) => o.status === 'complete')).toHaveLength(FLEET - 22);
    // Every transition is a history event: a healthy device went booting → bootstrapping → progress → complete.
    const healthy = lab.devices.find((d) => d.faults.dpu.length === 0)!;
    const steps = suite.ctx.store.history(healthy.serial, 0, 1000).filter((e) => e.source === 'onboarding' && e.type === 'transition').map((e) => `${e.data.step}/${e.data.status}`);
    expect(steps).toEqual(['booting/queued', 'booting/running', 'bootstrapping/running', 'progress/running', 'complete/complete']);
    // A timed-out device says after how long, at which step.
    const silent = lab.devices.find((d) => d.faults.dpu[0] === 'agent-crash')!;
    const last = suite.ctx.store.history(silent.serial, 0, 1000).filter((e) => e.source === 'onboarding' && e.data.status === 'timed-out').at(-1)!;
    expect(last.data).toMatchObject({ status: 'timed-out', failedStep: 'progress' });
    expect(Number(last.data.afterMs)).toBeGreaterThanOrEqual(3000);
  }, 90_000);
});
