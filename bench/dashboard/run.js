#!/usr/bin/env node
// What open dashboards cost the server (issue 10: "one open tab on a 1,000-device lab keeps the
// server busy for 30 s"). `ztp serve` runs in its own process (the compiled CLI, as bin/ztp.js
// starts it), so its CPU is read alone from /proc. Each round starts a fresh server, opens N
// dashboard streams (GET /api/v1/events?snapshot=true, read to the end, as the page does), then
// writes a 1,000-device lab through the admin API: one CSV import (1,000 device-added events)
// and `--updates` PUTs per device (device-updated events, the heaviest to stream: each carries
// the device record). A round ends when every stream has received the last event.
// The peer is the same server with no dashboard open (N = 0): rounds alternate N = 0 / 1 / 10,
// and what a dashboard adds is the difference of medians, per event and per stream.
//   node bench/dashboard/run.js [--devices 1000] [--updates 3] [--rounds 3] [--no-build]
/* global fetch, TextDecoderStream */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { compiledSources, log, opt } from '../common.js';

const DEVICES = Number(opt('devices', '1000'));
const UPDATES = Number(opt('updates', '3'));
const ROUNDS = Number(opt('rounds', '3'));
const STREAMS = [0, 1, 10];
const TOKEN = 'bench-token';
const TICK = 100; // USER_HZ on Linux
const dist = compiledSources('dashboard', 'cli/main.js');

const freePort = () => new Promise((res) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const { port } = s.address();
    s.close(() => res(port));
  });
});

function serverCpu(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICK;
}

async function startServer() {
  const dir = mkdtempSync(join(tmpdir(), 'ztp-bench-dash-'));
  const [bootstrap, api, images, imagesTls] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const configFile = join(dir, 'config.json');
  writeFileSync(configFile, JSON.stringify({
    dataDir: join(dir, 'data'), publicHost: 'localhost', logLevel: 'warn',
    bootstrap: { host: '127.0.0.1', port: bootstrap }, api: { host: '127.0.0.1', port: api, token: TOKEN },
    images: { host: '127.0.0.1', port: images, tlsPort: imagesTls },
  }));
  const entry = `import { main } from ${JSON.stringify(join(dist, 'cli/main.js'))}; process.exitCode = await main(['serve']);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', entry], { env: { ...process.env, ZTP_CONFIG: configFile }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c) => (stderr = (stderr + c).slice(-20_000)));
  await new Promise((res, rej) => {
    child.stderr.on('data', () => stderr.includes('admin token:') && res());
    child.once('exit', (code) => rej(new Error(`ztp serve exited ${code}: ${stderr.slice(-2000)}`)));
    setTimeout(() => rej(new Error(`ztp serve not up after 60 s: ${stderr.slice(-2000)}`)), 60_000).unref();
  });
  return {
    pid: child.pid,
    base: `http://127.0.0.1:${api}`,
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(t);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const auth = { authorization: `Bearer ${TOKEN}` };

/** A dashboard's stream: the newest event id it has read. */
async function openStream(base) {
  const controller = new AbortController();
  const res = await fetch(`${base}/api/v1/events?snapshot=true`, { headers: { ...auth, accept: 'text/event-stream' }, signal: controller.signal });
  const state = { lastId: 0, snapshot: false, close: () => controller.abort() };
  void (async () => {
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    try {
      for (let r = await reader.read(); !r.done; r = await reader.read()) {
        buffer += r.value;
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const id = /^id: (\d+)$/m.exec(frame);
          if (frame.includes('event: snapshot')) state.snapshot = true;
          if (id) state.lastId = Math.max(state.lastId, Number(id[1]));
        }
      }
    } catch {
      // aborted at the end of the round
    }
  })();
  return state;
}

async function until(pred, what, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function round(streams) {
  const server = await startServer();
  try {
    const clients = await Promise.all(Array.from({ length: streams }, () => openStream(server.base)));
    await until(() => clients.every((c) => c.snapshot), 'the snapshots');
    const cpu0 = serverCpu(server.pid);
    const started = performance.now();
    const serials = Array.from({ length: DEVICES }, (_, i) => `BENCH-${String(i).padStart(5, '0')}`);
    const csv = ['serial,profile,hwModel', ...serials.map((s) => `${s},rfc8572,model-0`)].join('\n');
    const imported = await fetch(`${server.base}/api/v1/devices/import`, { method: 'POST', headers: { ...auth, 'content-type': 'text/csv' }, body: csv });
    if (!imported.ok) throw new Error(`import: HTTP ${imported.status} ${await imported.text()}`);
    // PUTs, 16 at a time: each changes the hardware model, so each is one device-updated event.
    const jobs = serials.flatMap((s) => Array.from({ length: UPDATES }, (_, u) => [s, u + 1]));
    let next = 0;
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (next < jobs.length) {
        const [serial, u] = jobs[next++];
        const res = await fetch(`${server.base}/api/v1/devices/${serial}`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ hwModel: `model-${u}` }) });
        if (!res.ok) throw new Error(`PUT ${serial}: HTTP ${res.status}`);
        await res.arrayBuffer();
      }
    }));
    const events = DEVICES * (1 + UPDATES);
    const last = (await (await fetch(`${server.base}/api/v1/events?after=${events - 1}`, { headers: auth })).json()).events.at(-1)?.id;
    if (last !== events) throw new Error(`expected event ${events} last, found ${last}`);
    await until(() => clients.every((c) => c.lastId >= last), 'every stream to reach the last event');
    const wallMs = performance.now() - started;
    const cpu = serverCpu(server.pid) - cpu0;
    for (const c of clients) c.close();
    return { streams, events, cpuS: cpu, wallMs };
  } finally {
    await server.stop();
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const spread = (xs) => `${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}`;

log(`${DEVICES} devices, ${UPDATES} updates each, ${ROUNDS} rounds of N = ${STREAMS.join(' / ')} open dashboards; ${cpus().length} cores, load ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
const results = new Map(STREAMS.map((n) => [n, []]));
for (let r = 1; r <= ROUNDS; r++) {
  for (const n of STREAMS) {
    const res = await round(n);
    results.get(n).push(res);
    log(`round ${r}, ${n} dashboard(s): server CPU ${res.cpuS.toFixed(2)} s for ${res.events} events, ${(res.wallMs / 1000).toFixed(1)} s wall`);
  }
}

const base = median(results.get(0).map((r) => r.cpuS));
const events = DEVICES * (1 + UPDATES);
console.log(`\nServer CPU (s) for a ${DEVICES}-device lab written through the admin API (${events} events), median of ${ROUNDS} alternating rounds [min–max]`);
console.log('dashboards  server CPU s        CPU/event   wall s    added by the dashboards (vs none)');
for (const n of STREAMS) {
  const cpu = results.get(n).map((r) => r.cpuS);
  const wall = results.get(n).map((r) => r.wallMs / 1000);
  const added = median(cpu) - base;
  const perStreamEvent = n ? `${((added / n / events) * 1e6).toFixed(1)} µs per event per dashboard, ${(added / n).toFixed(2)} s per dashboard` : 'the peer';
  console.log(`${String(n).padStart(10)}  ${median(cpu).toFixed(2).padStart(5)} [${spread(cpu)}]  ${((median(cpu) / events) * 1000).toFixed(3)} ms  ${median(wall).toFixed(1).padStart(6)}    ${perStreamEvent}`);
}
console.log(`(${cpus().length} cores shared with other engineers' runs: load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} at the end; compare within this table only)`);
