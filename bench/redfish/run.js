#!/usr/bin/env node
// Redfish fleet benchmark: our client (openBmcSession → bootFromIso → close) drives N emulated
// BMCs concurrently (bounded global concurrency) through the whole virtual-media boot: login,
// probe, eject check, InsertMedia (the emulator really fetches the ISO from the project's image
// server: HEAD + two 32 KiB ranges), verify inserted, one-time Cd override, power on, wait for On,
// logout. Emulator delays are zero, so the figures are the client's and the wire's cost.
// Runs N = 250, 500, 1000 to show linearity; prints total time, per-BMC p50/p99 and the client
// process's peak RSS. Peer in the same run: Debian's python3-sushy driving --sushy-bmcs BMCs
// one after another (insert → boot once → reset → eject) in one Python process, against our
// client doing the same BMC count sequentially.
//
// Standalone: `node bench/redfish/run.js [--sizes 250,500,1000] [--concurrency 100]
// [--sushy-bmcs 50] [--no-build]` (compiles src/ into bench/out/redfish-dist first).
import { compiledSources, log, opt, root } from '../common.js';
import { fork, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';

const here = import.meta.dirname;

const dist = compiledSources('redfish', 'redfish/index.js');
const SIZES = String(opt('sizes', '250,500,1000')).split(',').map(Number);
const CONCURRENCY = Number(opt('concurrency', 100));
const SUSHY_BMCS = Number(opt('sushy-bmcs', 50));

const { openBmcSession } = await import(join(dist, 'redfish/index.js'));
const { silentLogger } = await import(join(dist, 'log.js'));

function hwmBytes() {
  const s = readFileSync('/proc/self/status', 'utf8');
  return Number(/^VmHWM:\s+(\d+)/m.exec(s)?.[1] ?? 0) * 1024;
}

function quantile(sorted, q) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

async function startEmulator(count) {
  const child = fork(join(here, 'emulator.js'), [String(count)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ready = await new Promise((res, rej) => {
    child.once('message', res);
    child.once('exit', (c) => rej(new Error(`emulator exited ${c}`)));
  });
  return {
    ...ready,
    async stop() {
      const stats = new Promise((res) => child.once('message', (m) => res(m.stats)));
      child.kill('SIGTERM');
      const s = await Promise.race([stats, new Promise((r) => setTimeout(() => r(null), 5000))]);
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
      return s;
    },
  };
}

/** Drives every endpoint through bootFromIso with at most `concurrency` in flight. */
async function drive(endpoints, imageUrl, concurrency) {
  const durations = [];
  const errors = [];
  let next = 0;
  let peakRss = 0;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);
  const started = performance.now();
  const worker = async () => {
    while (next < endpoints.length) {
      const e = endpoints[next++];
      const t0 = performance.now();
      try {
        const session = await openBmcSession({ url: e.url, username: e.username, password: e.password }, { log: silentLogger, timeouts: { pollMs: 20, pollCapMs: 200 } });
        try {
          const result = await session.bootFromIso(imageUrl);
          if (result.path !== 'virtual-media') throw new Error(`path ${result.path}`);
        } finally {
          await session.close();
        }
        durations.push(performance.now() - t0);
      } catch (err) {
        errors.push(`${e.id}: ${err.code ?? ''} ${err.message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, endpoints.length) }, worker));
  const totalMs = performance.now() - started;
  clearInterval(sampler);
  durations.sort((a, b) => a - b);
  return { totalMs, p50: quantile(durations, 0.5), p99: quantile(durations, 0.99), ok: durations.length, errors, peakRss: Math.max(peakRss, process.memoryUsage().rss) };
}

const mib = (b) => (b / 1024 / 1024).toFixed(0);
const rows = [];
for (const n of SIZES) {
  const emu = await startEmulator(n);
  log(`N=${n}: emulator ready (${emu.endpoints.length} BMCs, one port each)`);
  const r = await drive(emu.endpoints, emu.imageUrl, CONCURRENCY);
  const stats = await emu.stop();
  if (r.errors.length) log(`N=${n}: ${r.errors.length} failed, first: ${r.errors[0]}`);
  rows.push({ n, ...r, stats });
  log(`N=${n}: ${(r.totalMs / 1000).toFixed(2)} s, p50 ${r.p50.toFixed(0)} ms, p99 ${r.p99.toFixed(0)} ms, ${r.ok} ok, ${r.errors.length} errors, emulator saw ${stats?.requests ?? '?'} requests, ${stats?.mounted ?? '?'} ISO mounts, ${stats?.open ?? '?'} sessions left open`);
}

// --- peer: python3-sushy, one process, BMCs one after another; ours the same way
let peer = null;
const sushyOk = spawnSync('/usr/bin/python3', ['-c', 'import sushy'], { stdio: 'ignore' }).status === 0;
if (SUSHY_BMCS > 0 && sushyOk) {
  const emuA = await startEmulator(SUSHY_BMCS);
  const ours = await drive(emuA.endpoints, emuA.imageUrl, 1);
  await emuA.stop();
  const emuB = await startEmulator(SUSHY_BMCS);
  const t0 = performance.now();
  const res = spawnSync('/usr/bin/python3', [join(here, 'sushy_fleet.py'), emuB.imageUrl], { input: JSON.stringify(emuB.endpoints), encoding: 'utf8', maxBuffer: 16 << 20 });
  const totalMs = performance.now() - t0;
  await emuB.stop();
  if (res.status !== 0) log(`sushy failed: ${res.stderr.slice(-2000)}`);
  const times = res.status === 0 ? JSON.parse(res.stdout).durations_ms.sort((a, b) => a - b) : [];
  peer = { bmcs: SUSHY_BMCS, ours: { totalMs: ours.totalMs, p50: ours.p50, p99: ours.p99, errors: ours.errors.length }, sushy: { totalMs, p50: quantile(times, 0.5), p99: quantile(times, 0.99), ok: times.length } };
} else if (SUSHY_BMCS > 0) {
  log('python3-sushy is not installed: no peer figures');
}

console.log(`\nRedfish fleet benchmark: bootFromIso per BMC, global concurrency ${CONCURRENCY}, emulator delays 0, one listener per BMC`);
console.log('BMCs   total s   per-BMC p50 ms   p99 ms   BMCs/s   client peak RSS MiB   errors');
for (const r of rows) {
  console.log(`${String(r.n).padEnd(6)} ${(r.totalMs / 1000).toFixed(2).padStart(7)}   ${r.p50.toFixed(0).padStart(14)}   ${r.p99.toFixed(0).padStart(6)}   ${(r.ok / (r.totalMs / 1000)).toFixed(0).padStart(6)}   ${mib(r.peakRss).padStart(19)}   ${r.errors.length}`);
}
if (rows.length > 1) {
  const first = rows[0];
  const last = rows[rows.length - 1];
  console.log(`linearity: ${last.n / first.n}x the BMCs took ${(last.totalMs / first.totalMs).toFixed(2)}x the time`);
}
if (peer) {
  console.log(`\npeer (same emulator, ${peer.bmcs} BMCs one after another, each client in one process):`);
  console.log(`  dpu-ztp client  total ${(peer.ours.totalMs / 1000).toFixed(2)} s, per-BMC p50 ${peer.ours.p50.toFixed(0)} ms, p99 ${peer.ours.p99.toFixed(0)} ms (full bootFromIso with eject check, verify, wait-power, logout)`);
  console.log(`  python3-sushy   total ${(peer.sushy.totalMs / 1000).toFixed(2)} s, per-BMC p50 ${peer.sushy.p50.toFixed(0)} ms, p99 ${peer.sushy.p99.toFixed(0)} ms (insert, boot once, reset, wait On, eject)`);
}
console.log(`client process VmHWM ${mib(hwmBytes())} MiB; node ${process.version}, ${cpus().length} CPUs, loopback HTTP`);
const out = join(root, 'bench/out');
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'redfish.json'), JSON.stringify({ at: new Date().toISOString(), concurrency: CONCURRENCY, rows: rows.map(({ errors, ...r }) => ({ ...r, errors: errors.length, firstError: errors[0] ?? null })), peer }, null, 2));
