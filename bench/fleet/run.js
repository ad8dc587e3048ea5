#!/usr/bin/env node
// Fleet onboarding benchmark (issue 9): N simulated DPUs behind N emulated BMCs onboarded end to
// end by the product. The server is `ztp serve` in its own process (the compiled CLI, started
// exactly as bin/ztp.js starts it), so its RSS and CPU are measured alone from /proc; this
// process is the lab: the Redfish emulator (one listener, BMCs under /bmc/<id>, delays zero,
// virtual media mounted from the image server over HTTPS) and the simulated DPUs, each booting
// when its BMC powers it on, reading its image like firmware, then running the rfc8572 sZTP
// agent over HTTPS with mTLS (lab IDevIDs): signed conveyed information verified voucher →
// owner certificate → signature, boot image downloaded and checked, progress through
// bootstrap-complete. Onboarding is started through the admin API (as `ztp onboard --all`) and
// followed on its event stream (as `ztp onboard --wait`).
//
// Figures per fleet size: wall time (POST /onboarding → last device complete), per-device
// p50/p99 (the job's running → complete, from the server's transition timestamps), server peak
// RSS and CPU seconds (utime + stime) and average cores, the lab's CPU for context.
//
// Standalone: `node bench/fleet/run.js [--sizes 250,500,1000] [--concurrency 100]
// [--image-kib 64] [--no-build]` (compiles src/ into bench/out/fleet-dist first).
/* global fetch, TextDecoder, AbortSignal */
import { args, compiledSources, log, opt, root } from '../common.js';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';

const dist = compiledSources('fleet', 'simulate/lab.js');
const SIZES = String(opt('sizes', '250,500,1000')).split(',').map(Number);
const CONCURRENCY = Number(opt('concurrency', 100));
const IMAGE_BYTES = Number(opt('image-kib', 64)) * 1024;
const TOKEN = 'bench-fleet-token';
const TICK = 100; // USER_HZ on Linux

const { silentLogger } = await import(join(dist, 'log.js'));
const { ensureLabPki, issueDeviceIdentity } = await import(join(dist, 'pki/lab.js'));
const { validateConfig } = await import(join(dist, 'config.js'));
const { ensureImage, registerDevices } = await import(join(dist, 'simulate/admin.js'));
const { emulatedBmcs } = await import(join(dist, 'simulate/bmcs.js'));
const { directDhcp } = await import(join(dist, 'simulate/dhcp.js'));
const { VirtualLab } = await import(join(dist, 'simulate/lab.js'));

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

function quantile(sorted, q) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** utime + stime (s) and peak RSS (bytes) of a process, from /proc. */
function procStats(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpu = (Number(fields[11]) + Number(fields[12])) / TICK;
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return { cpu, hwm: kib('VmHWM'), rss: kib('VmRSS') };
}

/** `ztp serve` in its own process, as bin/ztp.js runs it, with this config file. */
async function startServer(configFile) {
  const entry = `import { main } from ${JSON.stringify(join(dist, 'cli/main.js'))}; process.exitCode = await main(['serve']);`;
  const profile = opt('server-cpu-prof', null);
  const child = spawn(process.execPath, [...(profile ? ['--cpu-prof', '--cpu-prof-dir', profile] : []), '--input-type=module', '-e', entry], { env: { ...process.env, ZTP_CONFIG: configFile }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c) => (stderr = (stderr + c).slice(-20_000)));
  await new Promise((res, rej) => {
    const onData = () => stderr.includes('admin token:') && res();
    child.stderr.on('data', onData);
    child.once('exit', (code) => rej(new Error(`ztp serve exited ${code}: ${stderr.slice(-2000)}`)));
    setTimeout(() => rej(new Error(`ztp serve not up after 60 s: ${stderr.slice(-2000)}`)), 60_000).unref();
  });
  return {
    pid: child.pid,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** Follows GET /api/v1/onboarding/stream: per device, when its job went running and ended. */
function follow(apiUrl, serials) {
  const want = new Set(serials);
  const running = new Map();
  const ended = new Map();
  let resolveDone;
  const done = new Promise((r) => (resolveDone = r));
  const controller = new AbortController();
  const ready = fetch(`${apiUrl}/api/v1/onboarding/stream`, { headers: { authorization: `Bearer ${TOKEN}`, accept: 'text/event-stream' }, signal: controller.signal }).then(async (res) => {
    if (res.status !== 200) throw new Error(`stream: HTTP ${res.status}`);
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    (async () => {
      try {
        for (;;) {
          const { value, done: eof } = await reader.read();
          if (eof) break;
          buf += decoder.decode(value, { stream: true });
          let at;
          while ((at = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, at);
            buf = buf.slice(at + 2);
            if (!block.includes('event: history')) continue;
            const line = block.split('\n').find((l) => l.startsWith('data: '));
            if (!line) continue;
            const e = JSON.parse(line.slice(6));
            if (e.source !== 'onboarding' || e.type !== 'transition' || !want.has(e.serial)) continue;
            const status = e.data.status;
            if (status === 'running' && !running.has(e.serial)) running.set(e.serial, Date.parse(e.at));
            if (['complete', 'failed', 'timed-out', 'aborted'].includes(status) && !ended.has(e.serial)) {
              ended.set(e.serial, { status, at: Date.parse(e.at), seen: performance.now(), step: e.data.failedStep ?? e.data.step, reason: e.data.reason });
              if (ended.size === want.size) resolveDone();
            }
          }
        }
      } catch (err) {
        if (!controller.signal.aborted) log('stream ended:', err.message);
      }
    })();
  });
  return { ready, done, running, ended, close: () => controller.abort() };
}

async function runSize(n) {
  const dataDir = mkdtempSync(join(tmpdir(), 'ztp-bench-fleet-'));
  const [bootstrapPort, apiPort, imagesPort, imagesTlsPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const settings = {
    dataDir,
    publicHost: 'localhost',
    logLevel: 'warn',
    bootstrap: { host: '127.0.0.1', port: bootstrapPort },
    api: { host: '127.0.0.1', port: apiPort, token: TOKEN },
    images: { host: '127.0.0.1', port: imagesPort, tlsPort: imagesTlsPort },
    onboarding: { concurrency: CONCURRENCY },
  };
  const configFile = join(dataDir, 'bench-config.json');
  writeFileSync(configFile, JSON.stringify(settings));
  const server = await startServer(configFile);
  let lab;
  try {
    const apiUrl = `http://127.0.0.1:${apiPort}`;
    const api = { url: apiUrl, token: TOKEN, timeoutMs: 120_000 };
    // The server made its lab PKI in the data directory; the lab issues IDevIDs under it (as a
    // manufacturer would) and trusts its root, as the devices' provisioning would.
    const { pki } = await ensureLabPki(dataDir, validateConfig(settings).pki, 'localhost');
    const image = await ensureImage(api, 'bench-dpu-os.img', randomBytes(IMAGE_BYTES));
    const t0 = performance.now();
    lab = await VirtualLab.create({
      count: n,
      profile: 'rfc8572',
      serialPrefix: 'BENCH',
      bootImage: image.name,
      bootstrapUrl: `https://localhost:${bootstrapPort}`,
      serverCaPem: pki.rootCaPem,
      masaCaPem: pki.masa.certPem,
      issueIdevid: (serial) => issueDeviceIdentity(pki, serial),
      dhcp: directDhcp(silentLogger),
      bmcs: emulatedBmcs({ log: silentLogger, mediaCa: pki.rootCaPem }),
      rangeBytes: IMAGE_BYTES,
      log: silentLogger,
    });
    const records = lab.deviceRecords();
    for (let i = 0; i < records.length; i += 500) await registerDevices(api, records.slice(i, i + 500));
    log(`N=${n}: lab ready (${n} DPUs + BMCs, IDevIDs issued, registered) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    const serials = lab.devices.map((d) => d.serial);
    const stream = follow(apiUrl, serials);
    await stream.ready;
    const before = procStats(server.pid);
    const labCpu0 = process.cpuUsage();
    let peakRss = before.rss;
    const sampler = setInterval(() => {
      try {
        peakRss = Math.max(peakRss, procStats(server.pid).rss);
      } catch {
        /* exited */
      }
    }, 200);
    const start = performance.now();
    const loadBefore = loadavg()[0];
    const res = await fetch(`${apiUrl}/api/v1/onboarding`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ all: true }), signal: AbortSignal.timeout(120_000) });
    if (res.status !== 200) throw new Error(`POST /onboarding: HTTP ${res.status} ${await res.text()}`);
    const summary = (await res.json()).summary;
    if (summary.queued !== n) throw new Error(`queued ${summary.queued} of ${n}`);
    const limit = Math.max(300_000, n * 300);
    const timedOut = await Promise.race([stream.done.then(() => false), new Promise((r) => setTimeout(() => r(true), limit).unref())]);
    const last = Math.max(...[...stream.ended.values()].map((e) => e.seen), start);
    const wallMs = last - start;
    clearInterval(sampler);
    const after = procStats(server.pid);
    const labCpu = process.cpuUsage(labCpu0);
    stream.close();
    if (args.includes('--timeline')) {
      const t = await fetch(`${apiUrl}/api/v1/devices/${serials[0]}/timeline`, { headers: { authorization: `Bearer ${TOKEN}` } }).then((r) => r.json());
      for (const e of t.entries) log(`  +${String(e.offsetMs).padStart(6)} ms (${String(e.sincePreviousMs).padStart(5)}) ${e.source}/${e.type}: ${e.summary}`);
    }
    const outcomes = {};
    for (const e of stream.ended.values()) outcomes[e.status] = (outcomes[e.status] ?? 0) + 1;
    const firstBad = [...stream.ended.entries()].find(([, e]) => e.status !== 'complete');
    const perDevice = serials
      .filter((s) => stream.ended.get(s)?.status === 'complete' && stream.running.has(s))
      .map((s) => stream.ended.get(s).at - stream.running.get(s))
      .sort((a, b) => a - b);
    const serverCpu = after.cpu - before.cpu;
    const row = {
      n,
      concurrency: CONCURRENCY,
      wallMs,
      complete: outcomes.complete ?? 0,
      outcomes,
      unfinished: n - stream.ended.size,
      timedOut,
      firstFailure: firstBad ? `${firstBad[0]} ${firstBad[1].status} at ${firstBad[1].step}: ${firstBad[1].reason}` : null,
      p50Ms: quantile(perDevice, 0.5),
      p99Ms: quantile(perDevice, 0.99),
      serverCpuS: serverCpu,
      serverCores: serverCpu / (wallMs / 1000),
      serverPeakRss: Math.max(peakRss, after.rss),
      serverHwm: after.hwm,
      labCpuS: (labCpu.user + labCpu.system) / 1e6,
      labRss: process.memoryUsage().rss,
      devicesPerS: (outcomes.complete ?? 0) / (wallMs / 1000),
      // the machine's 1-minute load average (other work on the shared cores), at start and end
      load: [loadBefore, loadavg()[0]].map((l) => Number(l.toFixed(1))),
    };
    log(`N=${n}: ${(wallMs / 1000).toFixed(1)} s, ${row.complete} complete ${JSON.stringify(outcomes)}, p50 ${row.p50Ms} ms, p99 ${row.p99Ms} ms, server CPU ${serverCpu.toFixed(1)} s, RSS peak ${(row.serverPeakRss / 2 ** 20).toFixed(0)} MiB${row.firstFailure ? `; first failure: ${row.firstFailure}` : ''}`);
    return row;
  } finally {
    await lab?.stop().catch((err) => log('lab stop:', err.message));
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const rows = [];
for (const n of SIZES) rows.push(await runSize(n));

const mib = (b) => (b / 2 ** 20).toFixed(0);
console.log(`\nFleet onboarding benchmark: N DPUs + emulated BMCs, virtual media, rfc8572 signed conveyed information, ${IMAGE_BYTES / 1024} KiB image, emulator delays 0, conductor concurrency ${CONCURRENCY}, ${cpus().length} cores; server = \`ztp serve\` process`);
console.log('DPUs   wall s   complete   per-device p50 s   p99 s   DPUs/s   server CPU s (cores)   server peak RSS MiB   lab CPU s   load avg');
for (const r of rows) {
  console.log(
    `${String(r.n).padEnd(6)} ${(r.wallMs / 1000).toFixed(1).padStart(6)}   ${String(r.complete).padStart(8)}   ${(r.p50Ms / 1000).toFixed(2).padStart(16)}   ${(r.p99Ms / 1000).toFixed(2).padStart(5)}   ${r.devicesPerS.toFixed(1).padStart(6)}   ${`${r.serverCpuS.toFixed(1)} (${r.serverCores.toFixed(2)})`.padStart(20)}   ${mib(r.serverPeakRss).padStart(19)}   ${r.labCpuS.toFixed(1).padStart(9)}   ${r.load.join('→')}`,
  );
}
if (rows.length > 1) {
  const a = rows[0];
  const b = rows[rows.length - 1];
  console.log(`cost per device: server CPU ${((a.serverCpuS / a.n) * 1000).toFixed(1)} ms at ${a.n}, ${((b.serverCpuS / b.n) * 1000).toFixed(1)} ms at ${b.n}; wall ${((a.wallMs / a.n)).toFixed(1)} ms/device at ${a.n}, ${((b.wallMs / b.n)).toFixed(1)} at ${b.n}`);
}
const out = join(root, 'bench/out');
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'fleet.json'), JSON.stringify({ at: new Date().toISOString(), concurrency: CONCURRENCY, imageBytes: IMAGE_BYTES, cores: cpus().length, rows }, null, 2));
const bad = rows.filter((r) => r.complete !== r.n);
if (bad.length) {
  log(`not every device completed: ${bad.map((r) => `${r.n}: ${r.complete}`).join(', ')}`);
  process.exitCode = 1;
}
