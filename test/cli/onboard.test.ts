// `ztp onboard --wait` and `ztp status` against the whole suite (`startSuite`, as `ztp serve`
// runs it): devices without a BMC, onboarded by the RFC-faithful device emulator over real
// HTTPS with mutual TLS. Exit codes (0 complete, 7 failed, 8 timed out), the --json NDJSON
// stream, idempotency, and the refusals at `ztp device add` time.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/cli/common.js';
import { main } from '../../src/cli/main.js';
import { issueDeviceIdentity } from '../../src/pki/lab.js';
import type { Suite } from '../../src/suite.js';
import { runAgent, type AgentIdentity as DeviceIdentity, type AgentResult } from '../../src/simulate/agent.js';

/** The RFC 8572-faithful agent of `ztp simulate` (src/simulate/agent.ts). */
async function runRfcDevice(base: string, identity: DeviceIdentity): Promise<AgentResult> {
  const result = await runAgent({ profile: 'rfc8572', bootstrapUrl: base, identity, followRedirects: false });
  if (result.outcome !== 'complete') throw new Error(`agent ${result.outcome} at ${result.stage}: ${result.error?.message}`);
  return result;
}
import { startTestSuite } from '../helpers/suite.js';

let suite: Suite;
let dataDir: string;
let bootstrapBase: string;
let apiBase: string;
let imagesPort: number;

async function ztp(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['--data-dir', dataDir, ...args], { out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join('\n'), err: err.join('\n'), lines: () => out.join('\n').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}
const server = ['--server', '', '--token', 'test-token'];

async function identity(serial: string): Promise<DeviceIdentity> {
  const idevid = await issueDeviceIdentity(suite.ctx.pki, serial);
  return { serial, idevid, serverCaPem: suite.ctx.pki.rootCaPem, masaCaPem: suite.ctx.pki.masa.certPem };
}

beforeAll(async () => {
  ({ suite, dataDir, bootstrapBase, apiBase, imagesPort } = await startTestSuite('ztp-onboard-cli-', { image: { name: 'dpu-os.img', bytes: 64 * 1024 } }));
  server[1] = apiBase;
});

afterAll(async () => {
  await suite?.stop();
});

describe('ztp onboard --wait', () => {
  it('exits 0 when the device completes; --json is an NDJSON stream of its events ending in a summary', async () => {
    expect((await ztp('device', 'add', 'OK-1', '--mac', '02:00:00:00:01:01', '--boot-image', 'dpu-os.img')).code).toBe(EXIT.OK);
    const waiting = ztp('onboard', 'OK-1', '--wait', '--json', ...server);
    await new Promise((r) => setTimeout(r, 300));
    await runRfcDevice(bootstrapBase, await identity('OK-1'));
    const r = await waiting;
    expect(r.code, r.err).toBe(EXIT.OK);
    const lines = r.lines();
    expect(lines[0]).toMatchObject({ kind: 'started', results: [{ serial: 'OK-1', outcome: 'queued', attempt: 1 }] });
    const transitions = lines.filter((l) => l.kind === 'event' && l.source === 'onboarding' && l.type === 'transition').map((l) => `${(l.data as { step: string }).step}/${(l.data as { status: string }).status}`);
    expect(transitions).toEqual(['booting/queued', 'booting/running', 'bootstrapping/running', 'progress/running', 'complete/complete']);
    const progress = lines.filter((l) => l.kind === 'event' && l.type === 'progress').map((l) => (l.data as { progressType: string }).progressType);
    expect(progress[0]).toBe('bootstrap-initiated');
    expect(progress.at(-1)).toBe('bootstrap-complete');
    expect(lines.at(-1)).toMatchObject({ kind: 'summary', exitCode: 0, devices: [{ serial: 'OK-1', job: { status: 'complete' } }] });
    expect(suite.ctx.store.require('OK-1').state).toBe('onboarded');
  });

  it('is idempotent: onboarding a completed device again changes nothing', async () => {
    const r = await ztp('onboard', 'OK-1', '--json', ...server);
    expect(r.code).toBe(EXIT.OK);
    expect(JSON.parse(r.out).results[0]).toMatchObject({ serial: 'OK-1', outcome: 'unchanged', reason: 'already complete' });
  });

  it('exits 7 when the device fails, with the step and the device\'s report in the summary', async () => {
    // A URL image whose declared digest is wrong: the device reports boot-image-mismatch.
    const url = `http://localhost:${imagesPort}/images/dpu-os.img`;
    expect((await ztp('device', 'add', 'BAD-1', '--mac', '02:00:00:00:01:02', '--boot-image', url, '--sha256', 'ab'.repeat(32))).code).toBe(EXIT.OK);
    const waiting = ztp('onboard', 'BAD-1', '--wait', ...server);
    await new Promise((r) => setTimeout(r, 300));
    await expect(runRfcDevice(bootstrapBase, await identity('BAD-1'))).rejects.toThrow(/agent failed at boot-image/);
    const r = await waiting;
    expect(r.code, r.err).toBe(EXIT.ONBOARDING_FAILED);
    expect(r.out).toMatch(/BAD-1\s+failed\s+progress\s+1\s+\S+\s+device reported boot-image-mismatch/);
  });

  it('exits 8 when a silent device times out at its step (per-device timeout)', async () => {
    suite.ctx.store.upsert({ serial: 'SILENT-1', onboardingTimeouts: { booting: 1 } });
    const r = await ztp('onboard', 'SILENT-1', '--wait', '--json', ...server);
    expect(r.code, r.err).toBe(EXIT.ONBOARDING_TIMED_OUT);
    expect(r.lines().at(-1)).toMatchObject({ kind: 'summary', exitCode: 8, devices: [{ job: { status: 'timed-out', failedStep: 'booting', timedOutAfterMs: expect.any(Number) } }] });
  });

  it('--timeout gives up waiting with exit 8 while the job goes on', async () => {
    suite.ctx.store.upsert({ serial: 'LONG-1' });
    const r = await ztp('onboard', 'LONG-1', '--wait', '--timeout', '1s', ...server);
    expect(r.code).toBe(EXIT.ONBOARDING_TIMED_OUT);
    expect(r.err).toMatch(/gave up waiting after 1s/);
    expect(suite.conductor!.job('LONG-1')!.status).toBe('running');
    const aborted = await fetch(`${apiBase}/api/v1/onboarding/LONG-1/abort`, { method: 'POST', headers: { authorization: 'Bearer test-token' } });
    expect((await aborted.json()).job).toMatchObject({ status: 'aborted', failedStep: 'booting' });
  });

  it('usage errors and an unreachable server have their own exit codes', async () => {
    expect((await ztp('onboard', ...server)).code).toBe(EXIT.USAGE);
    expect((await ztp('onboard', 'OK-1', '--all', ...server)).code).toBe(EXIT.USAGE);
    expect((await ztp('onboard', 'NOPE', ...server)).code).toBe(EXIT.NOT_FOUND);
    const down = await ztp('onboard', 'OK-1', '--server', 'http://127.0.0.1:1', '--token', 'x');
    expect(down.code).toBe(EXIT.UNAVAILABLE);
    expect(down.err).toMatch(/cannot reach ztp serve at http:\/\/127\.0\.0\.1:1/);
  });
});

describe('ztp status', () => {
  it('the fleet summary counts jobs by status', async () => {
    const r = await ztp('status', '--json');
    expect(r.code).toBe(EXIT.OK);
    expect(JSON.parse(r.out).jobs).toMatchObject({ complete: 1, failed: 1, 'timed-out': 1, aborted: 1 });
    expect((await ztp('status')).out).toMatch(/SERIAL\s+STATUS\s+STEP/);
  });

  it('one device: its timeline with sZTP requests, progress reports and durations', async () => {
    const r = await ztp('status', 'OK-1', '--json');
    const t = JSON.parse(r.out) as { job: { status: string }; timeline: { source: string; summary: string; offsetMs: number; durationMs?: number }[] };
    expect(t.job.status).toBe('complete');
    const summaries = t.timeline.map((e) => e.summary);
    expect(summaries).toContain('sZTP get-bootstrapping-data → onboarding-information (signed)');
    expect(summaries.some((x) => x.startsWith('sZTP progress bootstrap-complete'))).toBe(true);
    const entered = t.timeline.find((e) => e.summary.startsWith('job at bootstrapping, booting took '))!;
    expect(entered.durationMs).toBeGreaterThanOrEqual(0);
    expect(summaries.some((s) => /^image dpu-os\.img read by/.test(s))).toBe(true);
    expect(t.timeline.at(-1)!.summary).toMatch(/^job complete at complete/);
    expect(t.timeline.every((e, i, all) => i === 0 || e.offsetMs >= all[i - 1]!.offsetMs)).toBe(true);
    const human = await ztp('status', 'OK-1');
    expect(human.out).toMatch(/OK-1: complete at complete \(attempt 1, device state onboarded\)/);
  });

  it('--watch redraws (bounded here by a hidden --watch-count)', async () => {
    const r = await ztp('status', 'OK-1', '--watch', '--interval', '50', '--watch-count', '3');
    expect(r.code).toBe(EXIT.OK);
    expect(r.out.match(/OK-1: complete/g)?.length).toBe(3);
  });
});

describe('refused at registration, with a clear message', () => {
  it.each([
    [['--profile', 'opi', '--signing', 'always'], /--signing always cannot work with --profile opi/],
    [['--boot-image', 'not-there.img'], /--boot-image "not-there\.img" is neither a catalogue image nor a URL/],
    [['--bmc', 'https://bmc.lab', '--bmc-user', 'root'], /the BMC https:\/\/bmc\.lab needs credentials/],
  ])('ztp device add %j', async (flags, message) => {
    const r = await ztp('device', 'add', 'REFUSED-1', ...(flags as string[]));
    expect(r.code).toBe(EXIT.INVALID);
    expect(r.err).toMatch(message as RegExp);
    expect(suite.ctx.store.get('REFUSED-1')).toBeUndefined();
  });

  it('an opi device cannot be switched to --signing always later', async () => {
    expect((await ztp('device', 'add', 'OPI-9', '--profile', 'opi')).code).toBe(EXIT.OK);
    expect((await ztp('device', 'add', 'OPI-9', '--signing', 'always')).code).toBe(EXIT.INVALID);
  });

  it('the API and import refuse the same, naming every row', async () => {
    const post = await fetch(`${apiBase}/api/v1/devices`, { method: 'POST', headers: { authorization: 'Bearer test-token', 'content-type': 'application/json' }, body: JSON.stringify({ serial: 'API-1', bootImage: 'ghost.iso' }) });
    expect(post.status).toBe(400);
    expect((await post.json()).error).toMatchObject({ code: 'DEVICE_INVALID', message: expect.stringMatching(/ghost\.iso/) });
    const csv = 'serial,profile,signing,bootImage,bmcAddress,bmcUsername,bmcPassword\nIMP-1,rfc8572,auto,ghost.iso,,,\nIMP-2,rfc8572,auto,dpu-os.img,https://b,root,\nIMP-3,rfc8572,auto,dpu-os.img,https://b,root,pw\n';
    writeFileSync(join(dataDir, 'fleet.csv'), csv);
    const r = await ztp('device', 'import', join(dataDir, 'fleet.csv'), '--json');
    expect(r.code).toBe(EXIT.INVALID);
    expect(JSON.parse(r.err).error.details.errors.map((e: { row: number }) => e.row)).toEqual([2, 3]);
    expect(suite.ctx.store.get('IMP-3')).toBeUndefined();
    const api = await fetch(`${apiBase}/api/v1/devices/import`, { method: 'POST', headers: { authorization: 'Bearer test-token', 'content-type': 'text/csv' }, body: csv });
    expect(api.status).toBe(400);
  });

  it('ztp onboard --inventory imports the file first, then onboards its devices', async () => {
    writeFileSync(join(dataDir, 'inv.json'), JSON.stringify([{ serial: 'INV-1', macs: ['02:00:00:00:01:09'], bootImage: 'dpu-os.img' }]));
    const r = await ztp('onboard', '--inventory', join(dataDir, 'inv.json'), '--json', ...server);
    expect(r.code, r.err).toBe(EXIT.OK);
    expect(JSON.parse(r.out).results).toMatchObject([{ serial: 'INV-1', outcome: 'queued' }]);
    expect(suite.ctx.store.require('INV-1').bootImage).toBe('dpu-os.img');
  });
});
