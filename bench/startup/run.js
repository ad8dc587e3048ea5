#!/usr/bin/env node
// Start-up and idle memory of `ztp serve` (issue 12). Each round is a cold process started
// exactly as bin/ztp.js starts it (the compiled CLI, default services: bootstrap, images, admin
// API, onboarding; DHCP without an interface and TFTP stay off), ports picked by the kernel.
//   start → ready   spawn() until stderr says "admin token:" (printed once every service listens)
//   idle RSS        VmRSS from /proc after `--idle` seconds without requests; VmHWM beside it
//   settled RSS     with --settle <s>: VmRSS again that many seconds after ready, still without
//                   requests. V8's memory reducer shrinks the young generation of an idle
//                   process on its own some 10-20 s after start (nothing here forces a GC).
//   CPU             utime + stime of the server until ready, from /proc
// The first start in a fresh data directory also generates the lab PKI: reported on its own
// line, not in the median. Rounds after it reuse the data directory (an ordinary restart).
// --against <dir>: a compiled dist of another checkout (e.g. the commit before a change), started
// in alternating rounds in the same run (its first start too), so the two are compared under the
// same machine load.
//   node bench/startup/run.js [--rounds 7] [--idle 2] [--settle 30] [--against <dist>] [--no-build] [--cpu-prof <dir>]
import { compiledSources, log, opt, median, medianSpread } from '../common.js';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const dist = compiledSources('startup', 'cli/main.js');
const ROUNDS = Number(opt('rounds', 7));
const IDLE_S = Number(opt('idle', 2));
const SETTLE_S = Number(opt('settle', 0));
const PROFILE = opt('cpu-prof', null);
const AGAINST = opt('against', null) && resolve(opt('against'));
const TICK = 100; // USER_HZ on Linux

const dir = mkdtempSync(join(tmpdir(), 'ztp-bench-startup-'));
const configFile = join(dir, 'config.json');
writeFileSync(configFile, JSON.stringify({ dataDir: join(dir, 'data'), publicHost: 'localhost', bootstrap: { host: '127.0.0.1', port: 0 }, api: { host: '127.0.0.1', port: 0 }, images: { host: '127.0.0.1', port: 0, tlsPort: 0 } }));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function proc(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { rssMb: kb('VmRSS') / 1024, hwmMb: kb('VmHWM') / 1024, cpuS: (Number(f[11]) + Number(f[12])) / TICK };
}

async function once(build = dist) {
  const entry = `import { main } from ${JSON.stringify(join(build, 'cli/main.js'))}; process.exitCode = await main(['serve']);`;
  const t0 = performance.now();
  const child = spawn(process.execPath, [...(PROFILE ? ['--cpu-prof', '--cpu-prof-dir', PROFILE] : []), '--input-type=module', '-e', entry], { env: { ...process.env, ZTP_CONFIG: configFile }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const ready = await new Promise((res, rej) => {
    child.stderr.on('data', (c) => {
      stderr += c;
      if (stderr.includes('admin token:')) res(performance.now() - t0);
    });
    child.once('exit', (code) => rej(new Error(`ztp serve exited ${code}: ${stderr.slice(-2000)}`)));
    setTimeout(() => rej(new Error(`not ready after 60 s: ${stderr.slice(-2000)}`)), 60_000).unref();
  });
  const atReady = proc(child.pid);
  await sleep(IDLE_S * 1000);
  const idle = proc(child.pid);
  let settled;
  if (SETTLE_S > IDLE_S) {
    await sleep((SETTLE_S - IDLE_S) * 1000);
    settled = proc(child.pid);
  }
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
  return { readyMs: ready, cpuMs: atReady.cpuS * 1000, rssMb: idle.rssMb, hwmMb: idle.hwmMb, settledMb: settled?.rssMb };
}

const fmt = medianSpread;

function report(label, first, rounds) {
  console.log(`\n${label}: first start, PKI generated: ready ${first.readyMs.toFixed(0)} ms, CPU ${first.cpuMs.toFixed(0)} ms, idle RSS ${first.rssMb.toFixed(1)} MB`);
  console.log('figure                         median (min–max)      aim');
  console.log(`start → ready, ms              ${fmt(rounds.map((r) => r.readyMs)).padEnd(22)}< 500`);
  console.log(`CPU until ready, ms            ${fmt(rounds.map((r) => r.cpuMs)).padEnd(22)}`);
  console.log(`idle RSS after ${IDLE_S} s, MB         ${fmt(rounds.map((r) => r.rssMb), 1).padEnd(22)}< 80`);
  if (SETTLE_S > IDLE_S) console.log(`idle RSS after ${SETTLE_S} s, MB`.padEnd(31) + fmt(rounds.map((r) => r.settledMb), 1));
  console.log(`peak RSS (VmHWM), MB           ${fmt(rounds.map((r) => r.hwmMb), 1).padEnd(22)}`);
}

try {
  log(`first start (generates the lab PKI), then ${ROUNDS} restarts${AGAINST ? `, alternating with ${AGAINST}` : ''}`);
  const first = await once();
  const rounds = [];
  const other = { rounds: [] };
  if (AGAINST) {
    rmSync(join(dir, 'data'), { recursive: true, force: true });
    other.first = await once(AGAINST);
  }
  for (let i = 0; i < ROUNDS; i++) {
    rounds.push(await once());
    if (AGAINST) other.rounds.push(await once(AGAINST));
  }
  console.log(`ztp serve start-up: ${ROUNDS} cold starts after a first one, node ${process.version}, ${cpus().length} cores shared with other work (load average ${loadavg()[0].toFixed(1)} at the end)`);
  report('this checkout', first, rounds);
  if (AGAINST) {
    report(AGAINST, other.first, other.rounds);
    const ratio = (f) => median(rounds.map((r, i) => f(r) / f(other.rounds[i])));
    const settled = SETTLE_S > IDLE_S ? `, idle RSS after ${SETTLE_S} s ${ratio((r) => r.settledMb).toFixed(2)}×` : '';
    console.log(`\nthis / ${AGAINST}, per round then median: start → ready ${ratio((r) => r.readyMs).toFixed(2)}×, CPU until ready ${ratio((r) => r.cpuMs).toFixed(2)}×, idle RSS ${ratio((r) => r.rssMb).toFixed(2)}×${settled}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
