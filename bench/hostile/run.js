#!/usr/bin/env node
// Budget per client (issue 11): "no request rate one client can afford (100 req/s of any kind)
// may push another service's p99 above 50 ms". Runs `ztp serve` as users run it (the built CLI,
// its own process) and, in the same run, alternates two kinds of period:
//   control  a probe alone: one request every 50 ms to each of bootstrap, images and the admin API
//   hostile  the same probe while one client (127.0.0.1, its own process) sends 100 req/s of one
//            costly kind at one service
// and prints, per kind, the probe's p99 on the OTHER services (median and spread over rounds)
// beside the control's, the hostile client's answers, and the server's CPU per request.
//   node bench/hostile/run.js [--rounds 3] [--seconds 5] [--settle 1] [--rate 100] [--kinds a,b] [--config '{"http":{...}}'] [--no-build]
// Kinds: wrong-password (HTTP Basic, bootstrap, one serial), wrong-password-rotating (a new serial
// per attempt), big-body (60 KB authenticated bodies, bootstrap),
// slow-body (a new connection per request trickling its body, bootstrap), image-range (64 KB
// range reads, images), api-list (GET /api/v1/devices over 1,000 devices, admin API), and null
// (the same client load against a bare server outside the suite: the machine's share).
import { fork, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { compiledSources, log, opt } from '../common.js';

const ROLE = opt('role', 'main');
const RPC = '/restconf/operations/ietf-sztp-bootstrap-server:get-bootstrapping-data';
const TOKEN = 'bench-hostile-token';
const basic = (user, pass) => 'Basic ' + Buffer.from(`${user}:${pass}`).toString('base64');
// The hostile client comes from its own address (127.0.0.2 and up, one per kind: all of 127/8 is
// loopback), so a per-source limit tells it from the probe (127.0.0.1), as it would two hosts on a
// lab network, and one kind's failures do not count against the next kind.
const HOSTILE_ADDRESS = opt('address', '127.0.0.2');
// localAddress is an Agent option: undici drops it inside `connect` (the hostile client came from
// 127.0.0.1, like the probe, in every run before this was fixed).
const insecure = (localAddress) => new Agent({ connect: { rejectUnauthorized: false }, ...(localAddress ? { localAddress } : {}), keepAliveTimeout: 4_000, connections: 64, pipelining: 1 });
const pct = (xs, p) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};
const median = (xs) => pct(xs.filter(Number.isFinite), 50);

if (ROLE === 'probe') await probeRole();
else if (ROLE === 'load') await loadRole();
else await main();

// ---------------------------------------------------------------------------------------------
// probe: one request every 50 ms to each service, sequential per service, latencies kept by time
async function probeRole() {
  const ports = JSON.parse(opt('ports'));
  const samples = []; // [time, service, ms, ok]
  const dispatcher = insecure();
  const targets = {
    bootstrap: () => request(`https://127.0.0.1:${ports.bootstrap}${RPC}`, { method: 'POST', dispatcher, headers: { authorization: basic('PROBE-1', 'probe-secret'), 'content-type': 'application/yang-data+json' }, body: '{}' }),
    images: () => request(`http://127.0.0.1:${ports.images}/images/probe.img`, { dispatcher }),
    api: () => request(`http://127.0.0.1:${ports.api}/api/v1/devices/PROBE-1?limit=5`, { dispatcher, headers: { authorization: `Bearer ${TOKEN}` } }),
  };
  let running = true;
  process.on('message', (m) => {
    if (m.cmd === 'window') {
      const rows = samples.filter((s) => s[0] >= m.from && s[0] < m.to);
      const out = {};
      for (const svc of Object.keys(targets)) {
        const mine = rows.filter((r) => r[1] === svc);
        out[svc] = { n: mine.length, failed: mine.filter((r) => !r[3]).length, p50: pct(mine.map((r) => r[2]), 50), p99: pct(mine.map((r) => r[2]), 99) };
      }
      samples.splice(0, samples.findIndex((s) => s[0] >= m.to) >>> 0);
      process.send({ window: out });
    } else if (m.cmd === 'stop') {
      running = false;
    }
  });
  await Promise.all(
    Object.entries(targets).map(async ([svc, call]) => {
      while (running) {
        const t0 = performance.now();
        let ok = false;
        try {
          const res = await call();
          await res.body.dump();
          ok = res.statusCode < 400;
        } catch {
          ok = false;
        }
        const ms = performance.now() - t0;
        samples.push([Date.now(), svc, ms, ok]);
        await new Promise((r) => setTimeout(r, Math.max(0, 50 - ms)));
      }
    }),
  );
  await dispatcher.close();
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------
// load: one client, `rate` requests per second of one kind for `seconds`, open loop
async function loadRole() {
  const ports = JSON.parse(opt('ports'));
  const kind = opt('kind');
  const rate = Number(opt('rate', '100'));
  const seconds = Number(opt('seconds', '5'));
  const imageSize = Number(opt('image-size', '0'));
  const dispatcher = insecure(HOSTILE_ADDRESS);
  const statuses = {};
  const count = (k) => (statuses[k] = (statuses[k] ?? 0) + 1);
  const bigBody = JSON.stringify({ 'ietf-sztp-bootstrap-server:input': { 'hw-model': 'x'.repeat(60_000) } });
  const sockets = new Set();
  // null: the same client load against a bare HTTP server in this process, not the suite. What
  // it does to the probe is the machine's share (two cores, shared), not the suite's.
  let nullPort = 0;
  if (kind === 'null') {
    const bare = (await import('node:http')).createServer((_req, res) => res.end('{}'));
    await new Promise((r) => bare.listen(0, HOSTILE_ADDRESS, r));
    nullPort = bare.address().port;
    bare.unref();
  }
  let i = 0;
  let inflight = 0;
  const one = async () => {
    const n = i++;
    if (kind === 'slow-body') {
      // a new TLS connection per request: headers, then one byte of the body per second
      const s = tlsConnect({ host: '127.0.0.1', port: ports.bootstrap, localAddress: HOSTILE_ADDRESS, rejectUnauthorized: false, servername: 'localhost' });
      sockets.add(s);
      s.on('error', () => undefined);
      s.once('close', () => sockets.delete(s));
      s.once('secureConnect', () => {
        s.write(`POST ${RPC} HTTP/1.1\r\nHost: localhost\r\nAuthorization: ${basic('PROBE-2', 'target-secret')}\r\nContent-Type: application/yang-data+json\r\nContent-Length: 10000\r\n\r\n{`);
        const drip = setInterval(() => (s.writable ? s.write(' ') : clearInterval(drip)), 1000);
        s.once('close', () => clearInterval(drip));
      });
      s.resume();
      count('opened');
      return;
    }
    if (inflight >= 400) return count('skipped (400 in flight)');
    inflight++;
    try {
      let res;
      if (kind === 'wrong-password' || kind === 'wrong-password-rotating') {
        // rotating: a new serial per attempt (the 1,000 bulk ones), so no (serial, address) limit applies
        const serial = kind === 'wrong-password' ? 'PROBE-2' : `BULK-${String(n % 1000).padStart(4, '0')}`;
        res = await request(`https://127.0.0.1:${ports.bootstrap}${RPC}`, { method: 'POST', dispatcher, headers: { authorization: basic(serial, `wrong-${n}`), 'content-type': 'application/yang-data+json' }, body: '{}' });
      } else if (kind === 'big-body') {
        res = await request(`https://127.0.0.1:${ports.bootstrap}${RPC}`, { method: 'POST', dispatcher, headers: { authorization: basic('PROBE-3', 'body-secret'), 'content-type': 'application/yang-data+json' }, body: bigBody });
      } else if (kind === 'image-range') {
        const start = Math.floor(Math.random() * (imageSize - 65_536));
        res = await request(`http://127.0.0.1:${ports.images}/images/big.img`, { dispatcher, headers: { range: `bytes=${start}-${start + 65_535}` } });
      } else if (kind === 'null') {
        res = await request(`http://${HOSTILE_ADDRESS}:${nullPort}/`, { dispatcher });
      } else if (kind === 'api-list') {
        res = await request(`http://127.0.0.1:${ports.api}/api/v1/devices`, { dispatcher, headers: { authorization: `Bearer ${TOKEN}` } });
      } else throw new Error(`unknown kind ${kind}`);
      await res.body.dump();
      count(String(res.statusCode));
    } catch (err) {
      count(err.code ?? err.message);
    } finally {
      inflight--;
    }
  };
  const started = performance.now();
  const pending = [];
  // open loop: requests are sent on schedule whether or not earlier ones were answered
  while (performance.now() - started < seconds * 1000) {
    const due = started + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    pending.push(one());
  }
  await Promise.race([Promise.all(pending), new Promise((r) => setTimeout(r, 10_000))]);
  for (const s of sockets) s.destroy();
  process.send({ sent: i, statuses });
  await dispatcher.destroy();
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------
function pickPort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function cpuMs(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // clock ticks (USER_HZ 100) → ms
}

async function main() {
  const rounds = Number(opt('rounds', '3'));
  const seconds = Number(opt('seconds', '5'));
  const rate = Number(opt('rate', '100'));
  const settle = Number(opt('settle', '1'));
  const kinds = opt('kinds', 'null,wrong-password,wrong-password-rotating,big-body,slow-body,image-range,api-list').split(',');
  const extra = JSON.parse(opt('config', '{}'));
  const dist = compiledSources('hostile', 'cli/main.js');
  const dir = mkdtempSync(join(tmpdir(), 'ztp-bench-hostile-'));
  const ports = { bootstrap: await pickPort(), images: await pickPort(), imagesTls: await pickPort(), api: await pickPort() };
  const config = {
    dataDir: join(dir, 'data'),
    publicHost: '127.0.0.1',
    logLevel: 'warn',
    bootstrap: { host: '127.0.0.1', port: ports.bootstrap },
    images: { host: '127.0.0.1', port: ports.images, tlsPort: ports.imagesTls },
    api: { host: '127.0.0.1', port: ports.api, token: TOKEN },
    onboarding: { enabled: false },
  };
  // --config merges per section, so '{"bootstrap":{...}}' keeps the bench's host and port
  for (const [k, v] of Object.entries(extra)) config[k] = v && typeof v === 'object' && !Array.isArray(v) ? { ...config[k], ...v } : v;
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  const entry = `import { main } from ${JSON.stringify(join(dist, 'cli/main.js'))}; process.exitCode = await main(['serve']);`;
  const server = spawn(process.execPath, ['--input-type=module', '-e', entry], { env: { ...process.env, ZTP_CONFIG: join(dir, 'config.json') }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  server.stderr.on('data', (c) => (stderr = (stderr + c).slice(-20_000)));
  await new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error(`ztp serve not up after 60 s: ${stderr}`)), 60_000);
    server.stderr.on('data', () => stderr.includes('admin token:') && (clearTimeout(t), res()));
    server.once('exit', (code) => rej(new Error(`ztp serve exited ${code}: ${stderr}`)));
  });
  log(`ztp serve up (pid ${server.pid}); ${JSON.stringify(extra)}`);

  // Fixtures through the admin API: 1,000 devices (a list worth asking for), three with passwords
  // (the probe's, the one wrong passwords target, the one big bodies authenticate as), a 4 KB probe image and a 64 MB one.
  const api = `http://127.0.0.1:${ports.api}/api/v1`;
  const auth = { authorization: `Bearer ${TOKEN}` };
  const devices = Array.from({ length: 1000 }, (_, n) => ({ serial: `BULK-${String(n).padStart(4, '0')}`, profile: 'rfc8572', macs: [`02:00:00:00:${((n >> 8) & 255).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}`] }));
  let res = await request(`${api}/devices/import`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(devices) });
  if (res.statusCode >= 300) throw new Error(`import: ${res.statusCode} ${await res.body.text()}`);
  await res.body.dump();
  for (const [serial, password] of [['PROBE-1', 'probe-secret'], ['PROBE-2', 'target-secret'], ['PROBE-3', 'body-secret']]) {
    res = await request(`${api}/devices`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ serial, password, profile: 'rfc8572', config: 'hostname probe\n' }) });
    if (res.statusCode >= 300) throw new Error(`device ${serial}: ${res.statusCode} ${await res.body.text()}`);
    await res.body.dump();
  }
  const imageSize = 64 * 1024 * 1024;
  for (const [name, size] of [['probe.img', 4096], ['big.img', imageSize]]) {
    res = await request(`${api}/images?name=${name}`, { method: 'POST', headers: { ...auth, 'content-type': 'application/octet-stream' }, body: Buffer.alloc(size, name.length) });
    if (res.statusCode >= 300) throw new Error(`image ${name}: ${res.statusCode} ${await res.body.text()}`);
    await res.body.dump();
  }

  const self = new URL(import.meta.url).pathname;
  const portArgs = ['--ports', JSON.stringify(ports)];
  const probe = fork(self, ['--role', 'probe', ...portArgs], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const windowOf = (from, to) => new Promise((r) => { probe.once('message', (m) => r(m.window)); probe.send({ cmd: 'window', from, to }); });
  await new Promise((r) => setTimeout(r, 1500)); // credentials cached, connections open

  /** Waits `settle` s, then until five /healthz in a row on the API answer within 20 ms (at most 60 s). */
  const settleDown = async () => {
    await new Promise((r) => setTimeout(r, settle * 1000));
    const end = Date.now() + 60_000;
    for (let quick = 0; quick < 5 && Date.now() < end; ) {
      const t0 = performance.now();
      const r = await request(`http://127.0.0.1:${ports.api}/healthz`).catch(() => undefined);
      await r?.body.dump();
      quick = r && performance.now() - t0 < 20 ? quick + 1 : 0;
      await new Promise((res) => setTimeout(res, 100));
    }
  };
  const TARGET = { null: 'none', 'wrong-password': 'bootstrap', 'wrong-password-rotating': 'bootstrap', 'big-body': 'bootstrap', 'slow-body': 'bootstrap', 'image-range': 'images', 'api-list': 'api' };
  const results = []; // { kind, round, phase, window, cpuPerReq, load }
  const period = async (kind, round, phase) => {
    const cpu0 = cpuMs(server.pid);
    const from = Date.now();
    let load;
    if (phase === 'hostile') {
      const child = fork(self, ['--role', 'load', '--kind', kind, '--address', `127.0.0.${2 + kinds.indexOf(kind)}`, '--rate', String(rate), '--seconds', String(seconds), '--image-size', String(imageSize), ...portArgs], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      load = await new Promise((r) => child.once('message', r));
      await new Promise((r) => child.once('exit', r));
    } else {
      await new Promise((r) => setTimeout(r, seconds * 1000));
    }
    const to = Date.now();
    const window = await windowOf(from, to);
    const served = Object.values(window).reduce((a, w) => a + w.n, 0) + (load ? Object.entries(load.statuses).filter(([k]) => /^\d+$/.test(k)).reduce((a, [, v]) => a + v, 0) : 0);
    results.push({ kind, round, phase, window, cpuPerReq: (cpuMs(server.pid) - cpu0) / Math.max(1, served), load });
    const others = Object.entries(window).filter(([svc]) => svc !== TARGET[kind]).map(([svc, w]) => `${svc} p99 ${w.p99.toFixed(1)} ms${w.failed ? ` (${w.failed} failed)` : ''}`);
    log(`round ${round} ${kind} ${phase}: ${others.join(', ')}${load ? `; hostile ${JSON.stringify(load.statuses)}` : ''}`);
    // let a backlog the hostile client left drain before the next control period starts
    if (phase === 'hostile') await settleDown();
  };
  try {
    for (let round = 1; round <= rounds; round++) {
      for (const kind of kinds) {
        // alternate: a control period, then the hostile one, so both see the same machine load
        await period(kind, round, 'control');
        await period(kind, round, 'hostile');
      }
    }
  } finally {
    probe.send({ cmd: 'stop' });
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }

  // Report: per kind, each OTHER service's p99 — median over rounds [min–max] — control vs hostile.
  console.log(`\nbench/hostile: ${rounds} rounds × ${kinds.length} kinds, ${seconds} s periods, hostile client ${rate} req/s, probe 20 req/s per service`);
  console.log(`config: ${JSON.stringify(extra)}  (2-core machine shared with other engineers' runs: absolute figures are noisy, compare control vs hostile)`);
  console.log('kind            other service   p99 control ms        p99 hostile ms        ratio  budget(50 ms)  CPU ms/req ctl→hostile  hostile answers (all rounds)');
  const spread = (xs) => `${median(xs).toFixed(1)} [${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)}]`;
  for (const kind of kinds) {
    const ctl = results.filter((r) => r.kind === kind && r.phase === 'control');
    const hos = results.filter((r) => r.kind === kind && r.phase === 'hostile');
    const answers = {};
    for (const h of hos) for (const [k, v] of Object.entries(h.load.statuses)) answers[k] = (answers[k] ?? 0) + v;
    let first = true;
    for (const svc of ['bootstrap', 'images', 'api'].filter((s) => s !== TARGET[kind])) {
      const c = ctl.map((r) => r.window[svc].p99);
      const h = hos.map((r) => r.window[svc].p99);
      const failed = hos.reduce((a, r) => a + r.window[svc].failed, 0);
      const cpu = first ? `${median(ctl.map((r) => r.cpuPerReq)).toFixed(2)} → ${median(hos.map((r) => r.cpuPerReq)).toFixed(2)}` : '';
      console.log(
        `${(first ? kind : '').padEnd(15)} ${svc.padEnd(15)} ${spread(c).padEnd(21)} ${spread(h).padEnd(21)} ${(median(h) / median(c)).toFixed(2).padStart(5)}  ${(median(h) <= 50 && !failed ? 'within' : `OVER${failed ? ` (${failed} failed)` : ''}`).padEnd(13)}  ${cpu.padEnd(23)}  ${first ? JSON.stringify(answers) : ''}`,
      );
      first = false;
    }
  }
}
