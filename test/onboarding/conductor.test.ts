// The onboarding conductor with an injected clock and an in-memory BMC double (unit level):
// step order, per-step timeouts, resume after a crash without repeating BMC steps, retry and
// abort, global and per-batch concurrency, per-BMC serialisation and the parent host's order.
import { afterEach, describe, expect, it } from 'vitest';
import { ZtpError } from '../../src/errors.js';
import { nextState, type OnboardingState } from '../../src/onboarding/state.js';
import { addDevice, settle, setup, withBmc, type Env } from './fakes.js';

const envs: Env[] = [];
function env(overrides: Record<string, unknown> = {}): Env {
  const e = setup(overrides);
  envs.push(e);
  return e;
}
afterEach(async () => {
  for (const e of envs.splice(0)) {
    await Promise.race([e.conductor.stop(), settle()]);
    e.db.close();
  }
});

function transitions(e: Env, serial: string): string[] {
  return e.store
    .history(serial)
    .filter((h) => h.source === 'onboarding' && h.type === 'transition')
    .map((h) => `${String(h.data.step)}/${String(h.data.status)}`);
}

function deviceReports(e: Env, serial: string, ...types: string[]): void {
  for (const t of types) {
    if (t === 'request') e.store.record({ serial, source: 'bootstrap', type: 'request', data: { rpc: 'get-bootstrapping-data', result: 'ok', response: 'onboarding-information' } });
    else e.store.record({ serial, source: 'bootstrap', type: 'progress', data: { progressType: t } });
  }
}

function replayedState(e: Env, serial: string): OnboardingState {
  return e.store.history(serial).reduce((s, h) => nextState(s, h), 'registered' as OnboardingState);
}

describe('one device through every step', () => {
  it('BMC steps in order, then the device\'s own signals, cleanup ejects and clears the override', async () => {
    const e = env();
    addDevice(e, 'D1', { macs: ['02:00:00:00:00:01'], ...withBmc('https://bmc1') });
    e.conductor.start();
    expect(e.conductor.onboard(['D1'])[0]!.outcome).toBe('queued');
    await settle();
    expect(e.lab.ops({ bmc: 'https://bmc1' })).toEqual([
      'inventory', 'insert:https://img.lab/bmc/by-mac/02:00:00:00:00:01/os.iso', 'boot-override:Cd', 'power-state', 'reset:On', 'wait-power',
    ]);
    expect(e.conductor.job('D1')).toMatchObject({ step: 'booting', status: 'running', path: 'virtual-media' });
    expect(e.store.require('D1').state).toBe('bmc-booting');
    e.store.record({ serial: 'D1', source: 'dhcp', type: 'lease', data: { mac: '02:00:00:00:00:01' } });
    e.store.record({ serial: 'D1', source: 'images', type: 'download', data: { image: 'other.img', completed: true } });
    await settle();
    expect(e.conductor.job('D1')).toMatchObject({ dhcpSeen: true, imageFetched: false });
    e.store.record({ serial: 'D1', source: 'images', type: 'download', data: { image: 'os.iso', completed: true } });
    deviceReports(e, 'D1', 'request');
    await settle();
    expect(e.conductor.job('D1')).toMatchObject({ step: 'bootstrapping', imageFetched: true });
    deviceReports(e, 'D1', 'bootstrap-initiated', 'boot-image-initiated', 'boot-image-complete', 'bootstrap-complete');
    await settle();
    expect(e.conductor.job('D1')).toMatchObject({ step: 'complete', status: 'complete', progressCount: 4, lastProgress: 'bootstrap-complete' });
    expect(e.lab.ops({ bmc: 'https://bmc1' }).slice(-1)).toEqual(['clear-boot']);
    expect(e.lab.system('https://bmc1')).toMatchObject({ media: null, override: null, power: 'On' });
    expect(transitions(e, 'D1')).toEqual([
      'bmc-check/queued', 'bmc-check/running', 'media-insert/running', 'boot-override/running', 'power-on/running', 'booting/running',
      'bootstrapping/running', 'progress/running', 'cleanup/running', 'complete/complete',
    ]);
    // Every BMC step is in the history too, and the device's state agrees with the job.
    expect(e.store.history('D1').filter((h) => h.source === 'redfish').map((h) => h.type)).toContain('insert');
    expect(e.store.require('D1').state).toBe('onboarded');
    expect(replayedState(e, 'D1')).toBe('onboarded');
    expect(e.lab.closed).toBe(e.lab.opened);
  });

  it('a device without a BMC enters at booting and is never sent to a BMC', async () => {
    const e = env();
    addDevice(e, 'N1', { bootImage: null });
    e.conductor.start();
    e.conductor.onboard(['N1']);
    await settle();
    expect(e.conductor.job('N1')).toMatchObject({ step: 'booting', status: 'running', path: 'none' });
    deviceReports(e, 'N1', 'request', 'bootstrap-complete');
    await settle();
    expect(e.conductor.job('N1')!.status).toBe('complete');
    expect(e.lab.calls).toEqual([]);
  });

  it('UEFI HTTP boot when the BMC has no CD slot: the device URL goes in HttpBootUri', async () => {
    const e = env();
    e.lab.inventory = { virtualMedia: [] };
    addDevice(e, 'H1', { macs: ['02:00:00:00:00:11'], ...withBmc('https://bmc-h') });
    e.conductor.start();
    e.conductor.onboard(['H1']);
    await settle();
    expect(e.conductor.job('H1')).toMatchObject({ path: 'uefi-http', step: 'booting', imageUrl: 'https://img.lab/device/by-mac/02:00:00:00:00:11/os.iso' });
    expect(e.lab.system('https://bmc-h')).toMatchObject({ override: 'UefiHttp', httpBootUri: 'https://img.lab/device/by-mac/02:00:00:00:00:11/os.iso', media: null });
  });

  it('a redirected device completes without cleanup (it may still run from the media)', async () => {
    const e = env();
    addDevice(e, 'R1', withBmc('https://bmc-r'));
    e.conductor.start();
    e.conductor.onboard(['R1']);
    await settle();
    e.store.record({ serial: 'R1', source: 'bootstrap', type: 'request', data: { result: 'ok', response: 'redirect-information' } });
    await settle();
    expect(e.conductor.job('R1')).toMatchObject({ status: 'complete', reason: 'redirected to another bootstrap server' });
    expect(e.lab.ops({ bmc: 'https://bmc-r' })).not.toContain('clear-boot');
    expect(e.store.require('R1').state).toBe('redirected');
  });

  it('onboard is idempotent: a running job is not restarted, a complete one only with restart', async () => {
    const e = env();
    addDevice(e, 'I1', { bootImage: null });
    e.conductor.start();
    e.conductor.onboard(['I1']);
    await settle();
    expect(e.conductor.onboard(['I1'])[0]).toMatchObject({ outcome: 'unchanged', reason: 'already running at booting' });
    deviceReports(e, 'I1', 'bootstrap-complete');
    await settle();
    expect(e.conductor.onboard(['I1'])[0]).toMatchObject({ outcome: 'unchanged', reason: 'already complete' });
    const again = e.conductor.onboard(['I1'], { restart: true })[0]!;
    expect(again.outcome).toBe('queued');
    expect(again.job!.attempt).toBe(2);
  });

  it('refuses devices that cannot be onboarded, one by one; unknown serials refuse the request', async () => {
    const e = env();
    addDevice(e, 'OK', { bootImage: null });
    addDevice(e, 'NOIMG', { bootImage: null, ...withBmc('https://b') });
    e.store.upsert({ serial: 'NOCRED', bootImage: 'os.iso', bmc: { address: 'https://c' } });
    e.conductor.start();
    const results = e.conductor.onboard(['OK', 'NOIMG', 'NOCRED']);
    expect(results.map((r) => r.outcome)).toEqual(['queued', 'refused', 'refused']);
    expect(results[1]!.reason).toMatch(/no boot image/);
    expect(results[2]!.reason).toMatch(/no credentials/);
    expect(() => e.conductor.onboard(['OK', 'GHOST'])).toThrow(/no device with serial number "GHOST"/);
  });
});

describe('timeouts, per step, on the injected clock', () => {
  it('a silent agent times out at bootstrapping after the configured time, with the step and duration', async () => {
    const e = env({ timeouts: { bootstrapping: 300 } });
    addDevice(e, 'S1', { bootImage: null });
    e.conductor.start();
    e.conductor.onboard(['S1']);
    await settle();
    deviceReports(e, 'S1', 'request');
    await settle();
    await e.clock.advance(299_000);
    expect(e.conductor.job('S1')!.status).toBe('running');
    await e.clock.advance(1_000);
    const job = e.conductor.job('S1')!;
    expect(job).toMatchObject({ status: 'timed-out', failedStep: 'bootstrapping', timedOutAfterMs: 300_000 });
    expect(job.reason).toBe('no progress report within 5m');
    expect(e.store.require('S1').state).toBe('timed-out');
    const last = e.store.history('S1').filter((h) => h.source === 'onboarding').pop()!;
    expect(last.data).toMatchObject({ status: 'timed-out', step: 'bootstrapping', failedStep: 'bootstrapping', afterMs: 300_000 });
  });

  it('the progress step is an idle timeout: each report moves the deadline', async () => {
    const e = env({ timeouts: { progress: 60 } });
    addDevice(e, 'P1', { bootImage: null });
    e.conductor.start();
    e.conductor.onboard(['P1']);
    await settle();
    deviceReports(e, 'P1', 'request', 'bootstrap-initiated');
    await settle();
    for (let i = 0; i < 5; i++) {
      await e.clock.advance(50_000);
      deviceReports(e, 'P1', 'informational');
      await settle();
    }
    expect(e.conductor.job('P1')!.status).toBe('running');
    await e.clock.advance(60_000);
    expect(e.conductor.job('P1')).toMatchObject({ status: 'timed-out', failedStep: 'progress', timedOutAfterMs: 60_000 });
    expect(e.conductor.job('P1')!.reason).toMatch(/last report informational/);
  });

  it('a per-device override beats the configured default', async () => {
    const e = env({ timeouts: { booting: 3600 } });
    addDevice(e, 'O1', { bootImage: null, onboardingTimeouts: { booting: 90 } });
    addDevice(e, 'O2', { bootImage: null });
    e.conductor.start();
    e.conductor.onboard(['O1', 'O2']);
    await settle();
    await e.clock.advance(90_000);
    expect(e.conductor.job('O1')).toMatchObject({ status: 'timed-out', failedStep: 'booting', timedOutAfterMs: 90_000 });
    expect(e.conductor.job('O1')!.reason).toMatch(/^no get-bootstrapping-data from the device within 1m30s \(image not fetched, DHCP not seen\)/);
    expect(e.conductor.job('O2')!.status).toBe('running');
  });

  it('a BMC step that hangs times out and its call is aborted', async () => {
    const e = env({ timeouts: { mediaInsert: 120 } });
    e.lab.gates.push({ when: (c) => c.op === 'insert', action: 'hang' });
    addDevice(e, 'B1', withBmc('https://bmc-slow'));
    e.conductor.start();
    e.conductor.onboard(['B1']);
    await settle();
    expect(e.conductor.job('B1')!.step).toBe('media-insert');
    await e.clock.advance(120_000);
    expect(e.conductor.job('B1')).toMatchObject({ status: 'timed-out', failedStep: 'media-insert', timedOutAfterMs: 120_000 });
    await e.conductor.idle();
    expect(e.lab.closed).toBe(e.lab.opened);
  });

  it('a late report revives a timed-out job (device state and job agree)', async () => {
    const e = env({ timeouts: { bootstrapping: 10 } });
    addDevice(e, 'L1', { bootImage: null });
    e.conductor.start();
    e.conductor.onboard(['L1']);
    await settle();
    deviceReports(e, 'L1', 'request');
    await settle();
    await e.clock.advance(10_000);
    expect(e.conductor.job('L1')!.status).toBe('timed-out');
    deviceReports(e, 'L1', 'bootstrap-initiated', 'bootstrap-complete');
    await settle();
    expect(e.conductor.job('L1')!.status).toBe('complete');
    expect(e.store.require('L1').state).toBe('onboarded');
    expect(replayedState(e, 'L1')).toBe('onboarded');
  });
});

describe('failures carry the step and the BMC MessageId or the device\'s message', () => {
  it('a BMC refusal fails the step with its MessageId; retry from the step then completes', async () => {
    const e = env();
    const err = new ZtpError('REDFISH_ACTION_FAILED', 'InsertMedia refused: the image URL is unreachable', { details: { messageId: 'Base.1.8.ResourceAtUriUnauthorized' } });
    e.lab.gates.push({ when: (c) => c.op === 'insert', action: 'fail', error: err, once: true });
    addDevice(e, 'F1', withBmc('https://bmc-f'));
    e.conductor.start();
    e.conductor.onboard(['F1']);
    await settle();
    expect(e.conductor.job('F1')).toMatchObject({ status: 'failed', failedStep: 'media-insert', messageId: 'Base.1.8.ResourceAtUriUnauthorized' });
    expect(e.conductor.job('F1')!.reason).toBe('media-insert: InsertMedia refused: the image URL is unreachable');
    expect(e.store.require('F1').state).toBe('failed');
    const retried = e.conductor.retry('F1', 'step');
    expect(retried).toMatchObject({ attempt: 2, step: 'media-insert' });
    await settle();
    // From the failed step: bmc-check is not run again, the path chosen before is kept.
    expect(transitions(e, 'F1').filter((t) => t.startsWith('bmc-check/running'))).toHaveLength(1);
    expect(e.lab.inserts).toBe(1);
    expect(e.conductor.job('F1')).toMatchObject({ step: 'booting', status: 'running' });
    expect(e.store.require('F1').state).toBe('bmc-booting');
  });

  it('an *-error report fails the job at its step with the device\'s message', async () => {
    const e = env();
    addDevice(e, 'E1', { bootImage: null });
    e.conductor.start();
    e.conductor.onboard(['E1']);
    await settle();
    deviceReports(e, 'E1', 'request', 'bootstrap-initiated');
    e.store.record({ serial: 'E1', source: 'bootstrap', type: 'progress', data: { progressType: 'boot-image-mismatch', message: 'sha256 differs' } });
    await settle();
    expect(e.conductor.job('E1')).toMatchObject({ status: 'failed', failedStep: 'progress', reason: 'device reported boot-image-mismatch: sha256 differs' });
    expect(e.store.require('E1').state).toBe('failed');
  });

  it('retry is refused for a running job; abort stops it, ignores later signals, retry from start runs every step again', async () => {
    const e = env();
    addDevice(e, 'A1', withBmc('https://bmc-a'));
    e.conductor.start();
    e.conductor.onboard(['A1']);
    await settle();
    expect(() => e.conductor.retry('A1')).toThrow(/only a failed, timed-out or aborted job/);
    const aborted = e.conductor.abort('A1', 'test');
    expect(aborted).toMatchObject({ status: 'aborted', failedStep: 'booting', reason: 'aborted by test at booting' });
    expect(e.conductor.abort('A1')).toMatchObject({ status: 'aborted' }); // idempotent
    deviceReports(e, 'A1', 'request');
    await settle();
    expect(e.conductor.job('A1')!.status).toBe('aborted');
    const before = e.lab.calls.length;
    e.conductor.retry('A1', 'start');
    await settle();
    expect(e.lab.ops({ bmc: 'https://bmc-a' }).slice(before)).toEqual([
      'inventory', 'insert:https://img.lab/bmc/by-mac/none/os.iso', 'boot-override:Cd', 'power-state', 'reset:ForceRestart', 'wait-power',
    ]);
    expect(e.lab.inserts).toBe(1); // the same image was still inserted: 'already-inserted'
  });

  it('aborting a BMC step in flight aborts the call', async () => {
    const e = env();
    e.lab.gates.push({ when: (c) => c.op === 'boot-override', action: 'hang' });
    addDevice(e, 'A2', withBmc('https://bmc-a2'));
    e.conductor.start();
    e.conductor.onboard(['A2']);
    await settle();
    e.conductor.abort('A2');
    await e.conductor.idle();
    expect(e.conductor.job('A2')).toMatchObject({ status: 'aborted', failedStep: 'boot-override' });
    expect(e.lab.closed).toBe(e.lab.opened);
  });
});

describe('resume after a crash (kill -9: the old process simply stops)', () => {
  it('a power-on that may have been sent is not sent again', async () => {
    const first = env();
    first.lab.gates.push({ when: (c) => c.op === 'wait-power', action: 'hang', once: true });
    addDevice(first, 'K1', withBmc('https://bmc-k'));
    first.conductor.start();
    first.conductor.onboard(['K1']);
    await settle();
    expect(first.lab.ops({ bmc: 'https://bmc-k' }).filter((o) => o.startsWith('reset'))).toEqual(['reset:On']);
    // The first process hangs forever in waitForPower; a second one opens the same database.
    const second = first.restart();
    envs.push(second);
    second.conductor.start();
    await settle();
    expect(second.conductor.job('K1')).toMatchObject({ step: 'booting', status: 'running' });
    expect(second.lab.ops({ bmc: 'https://bmc-k' }).filter((o) => o.startsWith('reset'))).toEqual(['reset:On']);
    const started = second.store.history('K1').filter((h) => h.type === 'step-started' && h.data.step === 'power-on');
    expect(started.map((h) => h.data.resumed)).toEqual([false, true]);
  });

  it('an InsertMedia that went through before the crash is not repeated', async () => {
    const first = env();
    first.lab.gates.push({ when: (c) => c.op === 'insert', action: 'hang-after', once: true });
    addDevice(first, 'K2', withBmc('https://bmc-k2'));
    first.conductor.start();
    first.conductor.onboard(['K2']);
    await settle();
    expect(first.lab.inserts).toBe(1);
    const second = first.restart();
    envs.push(second);
    second.conductor.start();
    await settle();
    expect(second.conductor.job('K2')!.step).toBe('booting');
    expect(second.lab.inserts).toBe(1);
    const note = second.store.history('K2').find((h) => h.type === 'transition' && h.data.step === 'boot-override')!.data.note;
    expect(note).toBe('already-inserted in CD1');
  });

  it('signals committed while the conductor was down are applied on restart, none lost', async () => {
    const first = env();
    addDevice(first, 'K3', { bootImage: null });
    first.conductor.start();
    first.conductor.onboard(['K3']);
    await settle();
    await first.conductor.stop();
    deviceReports(first, 'K3', 'request', 'bootstrap-initiated', 'config-initiated');
    const second = first.restart();
    envs.push(second);
    second.conductor.start();
    await settle();
    expect(second.conductor.job('K3')).toMatchObject({ step: 'progress', status: 'running', progressCount: 2, lastProgress: 'config-initiated' });
    expect(transitions(second, 'K3')).toEqual(['booting/queued', 'booting/running', 'bootstrapping/running', 'progress/running']);
  });

  it('a step timeout counts from when the step started, across the restart', async () => {
    const first = env({ timeouts: { booting: 600 } });
    addDevice(first, 'K4', { bootImage: null });
    first.conductor.start();
    first.conductor.onboard(['K4']);
    await settle();
    await first.clock.advance(400_000);
    await first.conductor.stop();
    const second = first.restart();
    envs.push(second);
    second.conductor.start();
    await second.clock.advance(200_000);
    expect(second.conductor.job('K4')).toMatchObject({ status: 'timed-out', timedOutAfterMs: 600_000 });
  });
});

describe('concurrency, per-BMC serialisation, parent host order', () => {
  it('the global limit holds; a finished job lets the next one start', async () => {
    const e = env({ concurrency: 2 });
    for (const s of ['C1', 'C2', 'C3']) addDevice(e, s, { bootImage: null });
    e.conductor.start();
    e.conductor.onboard(['C1', 'C2', 'C3']);
    await settle();
    expect(['C1', 'C2', 'C3'].map((s) => e.conductor.job(s)!.status)).toEqual(['running', 'running', 'queued']);
    deviceReports(e, 'C2', 'bootstrap-complete');
    await settle();
    expect(['C1', 'C2', 'C3'].map((s) => e.conductor.job(s)!.status)).toEqual(['running', 'complete', 'running']);
  });

  it('a batch limit (ztp onboard --concurrency) applies beside the global one', async () => {
    const e = env({ concurrency: 10 });
    for (const s of ['B1', 'B2', 'B3']) addDevice(e, s, { bootImage: null });
    e.conductor.start();
    e.conductor.onboard(['B1', 'B2', 'B3'], { concurrency: 1 });
    await settle();
    expect(['B1', 'B2', 'B3'].map((s) => e.conductor.job(s)!.status)).toEqual(['running', 'queued', 'queued']);
  });

  it('two DPUs behind one BMC: one boot sequence at a time, never interleaved', async () => {
    const e = env();
    e.lab.gates.push({ when: (c) => c.op === 'insert' && c.system === 'dpu1', action: 'hang', once: true });
    addDevice(e, 'M1', withBmc('https://shared-bmc', 'dpu1'));
    addDevice(e, 'M2', withBmc('https://shared-bmc', 'dpu2'));
    e.conductor.start();
    e.conductor.onboard(['M1', 'M2']);
    await settle();
    // M1 is stuck in its insert: M2 has not sent anything to the shared BMC.
    expect(e.lab.calls.filter((c) => c.system === 'dpu2')).toEqual([]);
    e.conductor.abort('M1');
    await settle();
    expect(e.conductor.job('M2')!.step).toBe('booting');
    expect(e.lab.maxActivePerBmc).toBe(1);
  });

  it('a DPU waits for its parent host to be powered; the host is never powered off', async () => {
    const e = env();
    addDevice(e, 'HOST', withBmc('https://host-bmc'));
    addDevice(e, 'DPU', { parentHost: 'HOST', ...withBmc('https://dpu-bmc') });
    e.lab.gates.push({ when: (c) => c.bmc === 'https://host-bmc' && c.op === 'wait-power', action: 'hang', once: true });
    e.conductor.start();
    e.conductor.onboard(['DPU', 'HOST']);
    await settle();
    expect(e.conductor.job('DPU')).toMatchObject({ status: 'queued', parentHost: 'HOST' });
    expect(e.lab.calls.filter((c) => c.bmc === 'https://dpu-bmc')).toEqual([]);
    // The host's wait-power hangs: abort it and retry from its step, as an operator would.
    e.conductor.abort('HOST');
    await settle();
    e.conductor.retry('HOST');
    await settle();
    expect(e.conductor.job('HOST')!.step).toBe('booting');
    expect(e.conductor.job('DPU')!.step).toBe('booting');
    const firstDpuCall = e.lab.calls.findIndex((c) => c.bmc === 'https://dpu-bmc');
    const hostOn = e.lab.calls.findIndex((c) => c.bmc === 'https://host-bmc' && c.op === 'reset');
    expect(hostOn).toBeLessThan(firstDpuCall);
    expect(e.lab.ops({ bmc: 'https://host-bmc' }).filter((o) => o.startsWith('reset'))).toEqual(['reset:On']);
    const queued = e.store.history('DPU').find((h) => h.type === 'transition')!;
    expect(queued.data.parentHost).toBe('HOST');
  });

  it('a DPU driven through its host\'s own BMC system is not restarted when on', async () => {
    const e = env();
    addDevice(e, 'HOST2', { bootImage: null, ...withBmc('https://host2-bmc') });
    e.store.upsert({ serial: 'DPU2', bootImage: 'os.iso', parentHost: 'HOST2', ...withBmc('https://host2-bmc') });
    e.lab.system('https://host2-bmc').power = 'On';
    e.conductor.start();
    e.conductor.onboard(['DPU2']);
    await settle();
    expect(e.lab.ops({ bmc: 'https://host2-bmc' }).filter((o) => o.startsWith('reset'))).toEqual([]);
    const note = e.store.history('DPU2').find((h) => h.type === 'transition' && h.data.step === 'booting')!.data.note;
    expect(note).toMatch(/not restarted/);
  });
});
