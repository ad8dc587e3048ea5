// `ztp simulate` as users run it: real processes (built bin) against a real `ztp serve`. It
// uploads its boot image, registers N devices with their emulated BMCs, onboards them with
// --onboard, prints NDJSON with --json (started, one line per DPU run, stopped with the BMCs'
// counters), stops on SIGTERM/SIGINT with exit 0 and closes its BMC listener. Bad flags exit 2,
// an unreachable server 6.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/cli/common.js';
import { main } from '../../src/cli/main.js';
import { buildCli, loopbackServeConfig, startServe, startZtp, type ZtpProcess } from '../helpers/ztp-process.js';

const TOKEN = 'sim-cli-token';
let dir: string;
let configFile: string;
let apiUrl: string;
let server: ZtpProcess | undefined;
const running: ZtpProcess[] = [];

interface Job {
  serial: string;
  status: string;
  step: string;
  attempt: number;
}

async function api<T>(path: string): Promise<T> {
  const res = await fetch(apiUrl + path, { headers: { authorization: `Bearer ${TOKEN}` }, signal: AbortSignal.timeout(10_000) });
  expect(res.status, path).toBe(200);
  return (await res.json()) as T;
}

async function jobsSettled(serials: string[], want: (j: Job) => boolean, timeoutMs = 30_000): Promise<Job[]> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const jobs = (await api<{ jobs: Job[] }>('/api/v1/onboarding')).jobs.filter((j) => serials.includes(j.serial));
    if (jobs.length === serials.length && jobs.every(want)) return jobs;
    if (Date.now() > end) throw new Error(`jobs did not settle: ${JSON.stringify(jobs)}\n${server?.tail()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function ndjson(p: ZtpProcess): Record<string, unknown>[] {
  return p
    .stdout()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

function simulate(...args: string[]): ZtpProcess {
  const p = startZtp(['--json', '--config-file', configFile, 'simulate', ...args]);
  running.push(p);
  return p;
}

beforeAll(async () => {
  buildCli();
  dir = mkdtempSync(join(tmpdir(), 'ztp-simulate-cli-'));
  configFile = join(dir, 'config.json');
  const serve = await loopbackServeConfig(join(dir, 'data'), TOKEN, 'warn');
  apiUrl = serve.apiBase;
  server = await startServe(configFile, serve.config);
}, 300_000);

afterAll(async () => {
  await Promise.all(running.map((p) => p.stop()));
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('ztp simulate', () => {
  it('--count 4 --onboard: registers DPUs with emulated BMCs, onboards them, SIGTERM stops it cleanly', async () => {
    const sim = simulate('--count', '4', '--onboard', '--faults', 'never-boots:1', '--power-on-ms', '50', '--image-size', '65536');
    await sim.waitFor(/"kind":"started"/);
    const started = ndjson(sim).find((l) => l.kind === 'started') as {
      server: string; dhcp: string; image: { name: string; size: number }; registered: { created: number };
      devices: { serial: string; profile: string; macs: string[]; faults: string[]; bmc: { url: string; username: string; password: string } }[];
      onboarding: { serial: string; outcome: string; step: string }[];
    };
    expect(started).toMatchObject({ server: apiUrl, dhcp: 'direct', image: { name: 'sim-os-65536.img', size: 65536 }, registered: { created: 4 } });
    expect(started.devices.map((d) => `${d.serial}/${d.profile}/${d.faults.join(',')}`)).toEqual(['SIM-0001/rfc8572/never-boots', 'SIM-0002/opi/', 'SIM-0003/rfc8572/', 'SIM-0004/opi/']);
    expect(started.onboarding.map((r) => `${r.outcome}@${r.step}`)).toEqual(Array(4).fill('queued@bmc-check'));
    // The server has them, with the lab's MACs and BMC coordinates.
    for (const d of started.devices) {
      const { device } = await api<{ device: { macs: string[]; profile: string; bootImage: string; bmc: { address: string; username: string } } }>(`/api/v1/devices/${d.serial}`);
      expect(device).toMatchObject({ macs: d.macs, profile: d.profile, bootImage: 'sim-os-65536.img', bmc: { address: d.bmc.url, username: d.bmc.username } });
    }
    // Its BMCs are real Redfish services.
    const root = await fetch(`${started.devices[0]!.bmc.url}/redfish/v1`);
    expect(((await root.json()) as { RedfishVersion: string }).RedfishVersion).toMatch(/^1\./);

    const healthy = started.devices.slice(1).map((d) => d.serial);
    const jobs = await jobsSettled(healthy, (j) => j.status === 'complete');
    expect(jobs.every((j) => j.attempt === 1)).toBe(true);
    // The dark one is still waiting at booting (its job times out there, much later).
    expect((await api<{ job: Job }>('/api/v1/onboarding/SIM-0001')).job).toMatchObject({ status: 'running', step: 'booting' });
    await sim.waitFor(/("kind":"run".*){4}/s);

    sim.child.kill('SIGTERM');
    expect(await sim.exited).toBe(EXIT.OK);
    const lines = ndjson(sim);
    // stdout is only the lab's NDJSON (its logs, e.g. the dark DPU's warning, go to stderr)
    expect(sim.stdout().trim().split('\n').every((l) => typeof (JSON.parse(l) as { kind?: unknown }).kind === 'string')).toBe(true);
    expect(sim.stderr()).toMatch(/fault never-boots, staying dark/);
    const runs = lines.filter((l) => l.kind === 'run') as { serial: string; outcome: string; via: string; reports: string[] }[];
    expect(runs.map((r) => `${r.serial}:${r.outcome}`).sort()).toEqual(['SIM-0001:dark', 'SIM-0002:complete', 'SIM-0003:complete', 'SIM-0004:complete']);
    expect(runs.every((r) => r.via === 'virtual-media')).toBe(true);
    expect(runs.find((r) => r.serial === 'SIM-0003')!.reports.at(-1)).toBe('bootstrap-complete');
    const stopped = lines.at(-1) as { kind: string; signal: string; devices: { serial: string; bmc: { mounted: number; resets: number; ejects: number } }[] };
    expect(stopped).toMatchObject({ kind: 'stopped', signal: 'SIGTERM' });
    for (const d of stopped.devices.filter((x) => healthy.includes(x.serial))) expect(d.bmc).toMatchObject({ mounted: 1, resets: 1, ejects: 1 });
    // The listener is gone.
    await expect(fetch(`${started.devices[0]!.bmc.url}/redfish/v1`, { signal: AbortSignal.timeout(2000) })).rejects.toThrow();
  }, 60_000);

  it('runs again idempotently (devices updated, completed ones left alone); --no-bmc devices are booted by the lab; SIGINT stops it', async () => {
    const again = simulate('--count', '4', '--onboard', '--faults', 'never-boots:1', '--image-size', '65536');
    await again.waitFor(/"kind":"started"/);
    const started = ndjson(again)[0] as { registered: { created: number; updated: number }; onboarding: { serial: string; outcome: string; reason?: string }[] };
    // New BMC URLs (a new listener port): the records are updated, nothing is created.
    expect(started.registered).toEqual({ created: 0, updated: 4, unchanged: 0 });
    expect(started.onboarding.map((r) => `${r.serial}:${r.outcome}:${r.reason}`)).toEqual(['SIM-0001:unchanged:already running at booting', 'SIM-0002:unchanged:already complete', 'SIM-0003:unchanged:already complete', 'SIM-0004:unchanged:already complete']);

    const byHand = simulate('--count', '2', '--no-bmc', '--onboard', '--prefix', 'HAND', '--mac-tag', '7b', '--profile', 'opi', '--image-size', '65536');
    await byHand.waitFor(/"kind":"started"/);
    const hand = ndjson(byHand)[0] as { devices: { serial: string; bmc?: unknown }[]; onboarding: { outcome: string; step: string }[] };
    expect(hand.devices.map((d) => d.serial)).toEqual(['HAND-0001', 'HAND-0002']);
    expect(hand.devices.every((d) => d.bmc === undefined)).toBe(true);
    expect(hand.onboarding.map((r) => `${r.outcome}@${r.step}`)).toEqual(['queued@booting', 'queued@booting']);
    await jobsSettled(['HAND-0001', 'HAND-0002'], (j) => j.status === 'complete');
    await byHand.waitFor(/("kind":"run".*){2}/s);
    expect(ndjson(byHand).filter((l) => l.kind === 'run').map((l) => `${String(l.via)}:${String(l.outcome)}`)).toEqual(['uefi-http:complete', 'uefi-http:complete']);

    byHand.child.kill('SIGINT');
    again.child.kill('SIGINT');
    expect(await byHand.exited).toBe(EXIT.OK);
    expect(await again.exited).toBe(EXIT.OK);
    expect(ndjson(again).at(-1)).toMatchObject({ kind: 'stopped', signal: 'SIGINT' });
  }, 60_000);

  it('without --json: a table of what it started, a summary line on stderr; in-process SIGTERM stops it', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const done = main(['--data-dir', join(dir, 'data'), 'simulate', '--count', '2', '--no-bmc', '--prefix', 'HUMAN', '--mac-tag', '7c', '--faults', 'agent-crash', '--server', apiUrl, '--token', TOKEN], { out: (t) => void out.push(t), err: (t) => void err.push(t) });
    const end = Date.now() + 20_000;
    while (!err.some((l) => l.startsWith('simulate: '))) {
      if (Date.now() > end) throw new Error(`no start line: ${err.join('\n')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(out[0]).toMatch(/^SERIAL\s+PROFILE\s+FAULTS\s+MACS\s+BMC\n/);
    expect(out[0]).toMatch(/HUMAN-0001\s+rfc8572\s+agent-crash\s+02:7c:00:00:01:00,02:7c:00:00:01:01\s+-/);
    expect(err.join('\n')).toMatch(/simulate: 2 DPU\(s\) without BMCs registered with http:\/\/127\.0\.0\.1:\d+ \(2 created, 0 updated, 0 unchanged\).*start them with ztp onboard --all/);
    process.emit('SIGTERM');
    expect(await done).toBe(EXIT.OK);
    expect(err.at(-1)).toMatch(/simulate: stopped \(SIGTERM\); 0\/2 device\(s\) completed a run/);
  }, 30_000);

  it('bad flags are usage errors (2); an unreachable server is 6', async () => {
    const run = async (...args: string[]) => {
      const err: string[] = [];
      const code = await main(['--data-dir', join(dir, 'data'), 'simulate', ...args], { out: () => undefined, err: (t) => void err.push(t) });
      return { code, err: err.join('\n') };
    };
    const noPkiErr: string[] = [];
    for (const args of [['--count', '0'], ['--profile', 'junos'], ['--faults', 'explode'], ['--count', '2', '--faults', 'never-boots:3'], ['--dhcp', 'carrier-pigeon'], ['--dhcp-address', '10.0.0.1/24'], ['--dhcp', 'netns', '--dhcp-interface', 'much-too-long-a-name'], ['--restart'], ['--mac-tag', 'zz']]) {
      const r = await run(...args, '--server', apiUrl, '--token', TOKEN);
      expect(r.code, `${args.join(' ')}: ${r.err}`).toBe(EXIT.USAGE);
      expect(r.err).toMatch(/^ztp: /);
    }
    const noPki = await main(['--data-dir', join(dir, 'elsewhere'), 'simulate', '--server', apiUrl, '--token', TOKEN], { out: () => undefined, err: (t) => void noPkiErr.push(t) });
    expect(noPki).toBe(EXIT.USAGE);
    expect(noPkiErr.join('\n')).toMatch(/no lab PKI in .*elsewhere\/pki .*data directory of ztp serve/);
    const down = await run('--server', 'http://127.0.0.1:1', '--token', 'x');
    expect(down.code).toBe(EXIT.UNAVAILABLE);
    expect(down.err).toMatch(/cannot reach ztp serve at http:\/\/127\.0\.0\.1:1/);
    const wrongToken = await run('--server', apiUrl, '--token', 'wrong');
    expect(wrongToken.code, wrongToken.err).not.toBe(EXIT.OK);
    expect(wrongToken.err).toMatch(/token|unauthori[sz]ed/i);
  }, 30_000);
});
