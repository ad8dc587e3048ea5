// Issue 9: `kill -9` of the server mid-fleet, then a restart on the same data directory. The
// server is the real `ztp serve` process (built bin); the lab is in this process: simulated DPUs
// behind the Redfish emulator (one emulated BMC each), booting from virtual media, their agents
// talking sZTP over HTTPS with mTLS. After the restart every device must still finish, and:
//   - per device, the emulator's own counters show one successful InsertMedia and one reset,
//     and the DPU was booted once: nothing the conductor did before the crash was done again;
//   - every progress report an agent got a 2xx for is in the device's history;
//   - the job's transitions are contiguous (each starts where the previous ended), in step order;
//   - `ztp onboard --all --wait --json`, which started the fleet, reconnects to the restarted
//     server, was sent every event of the devices' histories (and none that is not there), and
//     exits 0.
// The devices behave as real ones do while their server is away: the agent retries
// get-bootstrapping-data and repeats a report or download whose connection failed.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config.js';
import type { HistoryEvent } from '../../src/devices/store.js';
import { silentLogger } from '../../src/log.js';
import { ensureLabPki, issueDeviceIdentity } from '../../src/pki/lab.js';
import { ensureImage, registerDevices, type AdminApi } from '../../src/simulate/admin.js';
import { emulatedBmcs } from '../../src/simulate/bmcs.js';
import { directDhcp } from '../../src/simulate/dhcp.js';
import { VirtualLab } from '../../src/simulate/lab.js';
import { buildCli, loopbackServeConfig, startServe, startZtp, type ZtpProcess } from '../helpers/ztp-process.js';

const FLEET = 15;
const TOKEN = 'resume-token';

interface PublicJob {
  serial: string;
  attempt: number;
  status: string;
  step: string;
  reason: string | null;
}

let dir: string;
let config: Record<string, unknown>;
let server: ZtpProcess | undefined;
let waiter: ZtpProcess | undefined;
let lab: VirtualLab | undefined;
let api: AdminApi;

async function get<T>(path: string): Promise<T> {
  const res = await fetch(api.url + path, { headers: { authorization: `Bearer ${TOKEN}` }, signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

async function jobs(): Promise<PublicJob[]> {
  return (await get<{ jobs: PublicJob[] }>('/api/v1/onboarding')).jobs;
}

async function history(serial: string): Promise<HistoryEvent[]> {
  // the whole history of the device, all attempts, oldest first
  const events: HistoryEvent[] = [];
  for (let after = 0; ; ) {
    const page = (await get<{ events: HistoryEvent[] }>(`/api/v1/devices/${serial}/history?after=${after}&limit=1000`)).events;
    events.push(...page);
    if (page.length < 1000) return events;
    after = page[page.length - 1]!.id;
  }
}

beforeAll(async () => {
  buildCli();
  dir = mkdtempSync(join(tmpdir(), 'ztp-resume-'));
  const serve = await loopbackServeConfig(join(dir, 'data'), TOKEN, 'info');
  // a few at a time, so that the kill finds devices queued, in BMC steps and bootstrapping
  config = { ...serve.config, onboarding: { concurrency: 5 } };
  api = { url: serve.apiBase, token: TOKEN };
  server = await startServe(join(dir, 'config.json'), config);
}, 300_000);

afterAll(async () => {
  await waiter?.stop();
  await lab?.stop();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('kill -9 of ztp serve mid-fleet, then a restart', () => {
  it('every device finishes; no InsertMedia or power cycle repeated, no acknowledged report or transition lost', async () => {
    const { pki } = await ensureLabPki(join(dir, 'data'), validateConfig(config).pki, 'localhost');
    const image = await ensureImage(api, 'resume-os.img', randomBytes(2 * 1024 * 1024));
    lab = await VirtualLab.create({
      count: FLEET,
      profile: 'mixed',
      // BMC latencies from 10 to 135 ms per request: devices started together drift apart, so a
      // batch never moves in lockstep (on a quiet machine it did: all at power-on, then all done).
      faults: Array.from({ length: 12 }, (_, i) => `bmc/latency=${(i % 6) * 25 + 10}:1`).join(','),
      serialPrefix: 'RES',
      bootImage: image.name,
      bootstrapUrl: `https://localhost:${(config.bootstrap as { port: number }).port}`,
      serverCaPem: pki.rootCaPem,
      masaCaPem: pki.masa.certPem,
      issueIdevid: (serial) => issueDeviceIdentity(pki, serial),
      dhcp: directDhcp(silentLogger),
      // power-on takes a moment, so that the kill finds some jobs waiting for power
      bmcs: emulatedBmcs({ log: silentLogger, mediaCa: pki.rootCaPem, timing: { powerOnMs: 400 } }),
      // 128 firmware range reads of the 2 MiB image: a device stays a moment at booting.
      rangeBytes: 16 * 1024,
      agent: { requestTimeoutMs: 5_000, maxAttempts: 80, retryDelayMs: 250, transportRetries: { attempts: 80, delayMs: 250 } },
    });
    expect((await registerDevices(api, lab.deviceRecords())).created).toBe(FLEET);
    // Started and followed by `ztp onboard --all --wait --json`, which has to ride out the crash.
    waiter = startZtp(['--json', '--config-file', join(dir, 'config.json'), 'onboard', '--all', '--wait', '--timeout', '90s']);
    await waiter.waitFor(/"kind":"started"/);

    // Mid-fleet: some complete, some still running.
    let atKill: PublicJob[] = [];
    const until = Date.now() + 30_000;
    for (;;) {
      atKill = await jobs();
      const complete = atKill.filter((j) => j.status === 'complete').length;
      const running = (steps: string[]) => atKill.filter((j) => j.status === 'running' && steps.includes(j.step)).length;
      // Caught with a power-on in flight and a device bootstrapping: the two that matter.
      if (complete >= 1 && running(['power-on']) >= 1 && running(['booting', 'bootstrapping', 'progress']) >= 1) break;
      if (process.env.RESUME_DEBUG) console.log(atKill.map((j) => `${j.step}/${j.status}`).join(' '));
      if (complete === FLEET || Date.now() > until) throw new Error(`never caught the fleet mid-way: ${JSON.stringify(atKill.map((j) => `${j.step}/${j.status}`))}`);
      await new Promise((r) => setTimeout(r, 25));
    }
    server!.child.kill('SIGKILL');
    expect(await server!.exited).toBe('SIGKILL');
    const unfinished = atKill.filter((j) => j.status !== 'complete');
    console.log(`killed with: ${atKill.map((j) => `${j.step}/${j.status}`).join(" ")}`);
    // The devices keep going for a moment with their server gone.
    await new Promise((r) => setTimeout(r, 500));
    server = await startServe(join(dir, 'config.json'), config);
    const resumedLine = await server.waitFor(/"resumed":(\d+)[^\n]*onboarding conductor started/);
    expect(Number(resumedLine[1])).toBeGreaterThan(0);

    // Everyone finishes.
    let final: PublicJob[] = [];
    const deadline = Date.now() + 40_000;
    for (;;) {
      final = await jobs();
      if (final.length === FLEET && final.every((j) => ['complete', 'failed', 'timed-out', 'aborted'].includes(j.status))) break;
      if (Date.now() > deadline) throw new Error(`fleet did not finish: ${JSON.stringify(final.filter((j) => j.status !== 'complete'))}\n${server.tail()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(final.filter((j) => j.status !== 'complete'), server.tail()).toEqual([]);
    expect(final.every((j) => j.attempt === 1)).toBe(true);
    expect(unfinished.length).toBeGreaterThanOrEqual(2);

    // Let the DPUs' last runs end (their agents returned after bootstrap-complete).
    await Promise.all(lab.devices.map((d) => d.dpu.running));
    const stats = new Map(lab.bmcStats().map((s) => [s.id, s.stats]));
    const canonical = ['bmc-check/queued', 'bmc-check/running', 'media-insert/running', 'boot-override/running', 'power-on/running', 'booting/running', 'bootstrapping/running', 'progress/running', 'cleanup/running', 'complete/complete'];
    for (const d of lab.devices) {
      const s = stats.get(d.bmc!.id)!;
      const label = `${d.serial} (${d.profile}, ${atKill.find((j) => j.serial === d.serial)?.step}/${atKill.find((j) => j.serial === d.serial)?.status} at the kill)`;
      // The emulator's own counters: one successful InsertMedia, one reset, one boot.
      expect(s.mounted, label).toHaveLength(1);
      expect(s.resets, label).toBe(1);
      expect(d.dpu.runs.map((r) => r.outcome), label).toEqual(['complete']);
      expect(s.ejects, label).toBeGreaterThanOrEqual(1);

      const events = await history(d.serial);
      // Every report the agent got a 2xx for is in the history (a repeated one may be there twice).
      const acked = d.dpu.runs.flatMap((r) => r.agent?.reports ?? []);
      expect(acked.at(-1), label).toBe('bootstrap-complete');
      const stored = events.filter((e) => e.source === 'bootstrap' && e.type === 'progress').map((e) => String(e.data.progressType));
      for (const type of new Set(acked)) expect(stored.filter((t) => t === type).length, `${label}: ${type}`).toBeGreaterThanOrEqual(acked.filter((t) => t === type).length);

      // Transitions: contiguous and in step order.
      const transitions = events.filter((e) => e.source === 'onboarding' && e.type === 'transition').map((e) => e.data as { step: string; status: string; attempt: number; from: { step: string; status: string } | null });
      expect(transitions.map((t) => `${t.step}/${t.status}`), label).toEqual(canonical);
      for (const [i, t] of transitions.entries()) {
        expect(t.attempt, label).toBe(1);
        if (i === 0) expect(t.from, label).toBeNull();
        else expect(t.from, `${label} transition ${i}`).toEqual({ step: transitions[i - 1]!.step, status: transitions[i - 1]!.status });
      }
      expect(events.map((e) => e.id), label).toEqual([...events.map((e) => e.id)].sort((a, b) => a - b));
    }
    // The waiter reconnected after the crash and saw every event of the history, and only those
    // (what it was sent before the kill had been committed).
    expect(await waiter!.exited, waiter!.tail()).toBe(0);
    const streamed = waiter!.stdout().trim().split('\n').map((l) => JSON.parse(l) as { kind: string; id?: number; serial?: string; source?: string; type?: string; exitCode?: number; devices?: { job: { status: string } }[] });
    const summary = streamed.at(-1)!;
    expect(summary).toMatchObject({ kind: 'summary', exitCode: 0 });
    expect(summary.devices!.map((d) => d.job.status)).toEqual(Array(FLEET).fill('complete'));
    const seen = new Set(streamed.filter((l) => l.kind === 'event').map((l) => l.id!));
    const lastSeen = Math.max(...seen);
    for (const d of lab.devices) {
      const events = (await history(d.serial)).filter((e) => e.source !== 'admin');
      // No gap up to the last event it got. After that (it exits once every job is complete)
      // only a BMC's range-read session can still be written: the recorder coalesces ranges and
      // writes the session when the reader has been idle, or at shutdown.
      const missed = events.filter((e) => !seen.has(e.id) && e.id <= lastSeen).map((e) => `${e.id} ${e.source}/${e.type}`);
      expect(missed, `${d.serial}: events the waiter never got`).toEqual([]);
      const later = events.filter((e) => e.id > lastSeen).map((e) => `${e.source}/${e.type}`);
      expect(later.filter((k) => k !== 'images/download'), `${d.serial}: events after the waiter's last`).toEqual([]);
    }
    const all = new Set((await Promise.all(lab.devices.map((d) => history(d.serial)))).flat().map((e) => e.id));
    expect([...seen].filter((id) => !all.has(id)), 'events the waiter got that are not in the history').toEqual([]);

    // The restarted server found the jobs where they were.
    const resumed = server.stdout().split('\n').filter((l) => l.includes('onboarding: resuming job')).map((l) => JSON.parse(l) as { serial: string; step: string });
    expect(resumed.length).toBeGreaterThan(0);
    expect(resumed.every((r) => unfinished.some((u) => u.serial === r.serial))).toBe(true);
  }, 120_000);
});
