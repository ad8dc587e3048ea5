// Wrong-password flood (issue 11): admin API latency while N clients hammer the bootstrap server
// with wrong HTTP Basic passwords, before and after the hardening, in the same run, rounds
// alternating. Both apps share one server process and event loop, as under `ztp serve`; the
// flood and the admin prober are two further processes, so neither waits on the other's loop.
//   node bench/bootstrap/wrong-passwords.js [--rounds 3] [--seconds 8] [--variants before,after,after+limit,idle]
//     [--clients 200] [--serials 10] [--before <rev>] [--no-build]
// The clients spread their guesses over --serials registered devices, all from 127.0.0.1.
// Variants:
//   before       the code before issue 11 (scryptSync on the event loop), compiled from git
//   after        async scrypt, 2 at a time, the rest waiting (up to 10 s); rate limit set out of
//                reach, so only the off-loop verification is measured
//   after+limit  the defaults: the same, plus 429 once a (serial, address) failed 10 times a minute
//   idle         after, without the flood: the admin API's latency on this machine right now
// Also, on the idle server: the time to a 401 for an unknown serial against a known serial with a
// wrong password (the timing oracle), 10 of each, alternating.
import { execFileSync, fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { Agent, request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { args, compiledSources, log, opt, root } from '../common.js';

const GBD = '/restconf/operations/ietf-sztp-bootstrap-server:get-bootstrapping-data';
const FLOOD_DEVICES = 200;
const PROBE_DEVICES = 400;

// ---------------------------------------------------------------------------------------------
// Server process: `--serve <dist> <dataDir> <variant>`, both apps on port 0, ports over IPC.
async function serve() {
  const [, dist, dataDir, variant] = args;
  const imp = (p) => import(join(dist, p));
  const [{ buildBootstrapApp }, { DeviceAuthenticator }, { imageResolver }, { BootstrapResponder }, { validateConfig }, { openDatabase }, { DeviceStore }, { createLogger }, { ensureLabPki }, { buildApiApp }, { Counters }] = await Promise.all(
    ['bootstrap/app.js', 'bootstrap/auth.js', 'bootstrap/images.js', 'bootstrap/responder.js', 'config.js', 'db/database.js', 'devices/store.js', 'log.js', 'pki/lab.js', 'api/app.js', 'metrics.js'].map(imp),
  );
  const config = validateConfig({ dataDir });
  const { pki } = await ensureLabPki(dataDir, config.pki, 'localhost');
  const store = new DeviceStore(openDatabase({ file: join(dataDir, 'ztp.db') }));
  const log = createLogger('error');
  const cfg = config.bootstrap;
  const limit = variant === 'after+limit' ? cfg.failureLimit : 1_000_000;
  const bootstrap = buildBootstrapApp({
    store, log, maxBodyBytes: cfg.maxBodyBytes,
    responder: new BootstrapResponder({ pki, images: imageResolver(undefined), encrypt: false }),
    // The options the old code does not know are ignored by it.
    authenticator: new DeviceAuthenticator(store, { mode: 'cert-or-basic', serialFrom: 'serialNumber', passwordChecks: cfg.passwordChecks, passwordQueue: cfg.passwordQueue }),
    failures: { windowMs: (cfg.failureWindow ?? 60) * 1000, limit },
    https: { cert: pki.tls.certPem, key: pki.tls.keyPem, requestCert: false },
  });
  const api = buildApiApp({ store, log, token: 'bench-token', counters: new Counters() });
  await bootstrap.listen({ host: '127.0.0.1', port: 0 });
  await api.listen({ host: '127.0.0.1', port: 0 });
  process.on('message', (m) => {
    if (m === 'cpu') process.send({ cpu: process.cpuUsage() });
  });
  process.on('SIGTERM', () => Promise.all([bootstrap.close(), api.close()]).then(() => process.exit(0)));
  process.on('disconnect', () => process.exit(0));
  process.send({ bootstrapPort: bootstrap.server.address().port, apiPort: api.server.address().port });
}

// ---------------------------------------------------------------------------------------------
// Load generator.

/** The previous code: src/ of the commit before src/bootstrap/failures.ts appeared, compiled. */
function beforeDist() {
  const rev = opt('before', undefined) ?? `${execFileSync('git', ['log', '--diff-filter=A', '--format=%H', '--', 'src/bootstrap/failures.ts'], { cwd: root, encoding: 'utf8' }).trim().split('\n').pop()}^`;
  const srcDir = join(root, 'bench/out/wrong-passwords-before-src');
  const dist = join(root, 'bench/out/wrong-passwords-before-dist');
  if (!args.includes('--no-build')) {
    log(`compiling src/ of ${rev} into bench/out/wrong-passwords-before-dist`);
    rmSync(srcDir, { recursive: true, force: true });
    mkdirSync(srcDir, { recursive: true });
    execFileSync('sh', ['-c', `git archive ${rev} src tsconfig.json tsconfig.build.json | tar -x -C ${srcDir}`], { cwd: root });
    try {
      execFileSync(join(root, 'node_modules/.bin/tsc'), ['-p', join(srcDir, 'tsconfig.build.json'), '--outDir', dist, '--tsBuildInfoFile', join(dist, '.tsbuildinfo'), '--declaration', 'false', '--sourceMap', 'false'], { stdio: 'pipe' });
    } catch {
      log('tsc reported errors for the old sources; continuing with the emitted JavaScript');
    }
  }
  return dist;
}

/** Prober process: `--probe <apiPort> <until epoch ms>`: GET /api/v1/devices every 20 ms, latencies over IPC. */
async function probe() {
  const [, port, until] = args;
  process.on('disconnect', () => process.exit(0));
  const admin = [];
  let failures = 0;
  while (Date.now() < Number(until)) {
    const r = await timed(() => call(httpRequest, { port: Number(port), path: '/api/v1/devices?state=none', method: 'GET', headers: { authorization: 'Bearer bench-token' } }));
    // A timed-out admin call counts with its (≥ 30 s) latency: hiding it would flatter the figure.
    if (r.status === 200 || r.status === 'timeout') admin.push(r.ms);
    if (r.status !== 200) failures++;
    await new Promise((res) => setTimeout(res, 20));
  }
  process.send({ admin, failures });
}

async function main() {
  const ROUNDS = Number(opt('rounds', '3'));
  const SECONDS = Number(opt('seconds', '8'));
  const SERIALS = Number(opt('serials', '10'));
  const CLIENTS = Number(opt('clients', '200'));
  const dists = { before: beforeDist(), after: compiledSources('wrong-passwords', 'bootstrap/failures.js') };
  dists['after+limit'] = dists.after;
  dists.idle = dists.after;
  const variants = opt('variants', 'before,after,after+limit,idle').split(',');

  const dataDir = mkdtempSync(join(tmpdir(), 'ztp-bench-wrongpw-'));
  {
    const { validateConfig } = await import(join(dists.after, 'config.js'));
    const { openDatabase } = await import(join(dists.after, 'db/database.js'));
    const { DeviceStore } = await import(join(dists.after, 'devices/store.js'));
    const { ensureLabPki } = await import(join(dists.after, 'pki/lab.js'));
    await ensureLabPki(dataDir, validateConfig({ dataDir }).pki, 'localhost');
    const { hashPassword } = await import(join(dists.after, 'devices/password.js'));
    const db = openDatabase({ file: join(dataDir, 'ztp.db') });
    const store = new DeviceStore(db);
    log(`registering ${FLOOD_DEVICES + PROBE_DEVICES} devices`);
    store.transaction(() => {
      for (let i = 0; i < FLOOD_DEVICES + PROBE_DEVICES; i++) store.upsert({ serial: `PW-${i}`, config: 'x' }, 'bench');
    });
    // One scrypt hash for all (same cost to verify as distinct ones) instead of 600 x 90 ms at set-up.
    db.prepare('UPDATE devices SET password_hash = ?').run(hashPassword('right'));
    db.close();
  }

  const results = Object.fromEntries(variants.map((v) => [v, []]));
  let probeBase = 0;
  for (let round = 0; round < ROUNDS; round++) {
    // Alternate the order so drift in the machine's load does not favour one variant.
    const order = round % 2 === 0 ? variants : [...variants].reverse();
    for (const variant of order) {
      const r = await runRound(dists[variant], dataDir, variant, { seconds: SECONDS, clients: CLIENTS, serials: SERIALS, probeBase });
      probeBase += 10;
      results[variant].push(r);
      log(`round ${round + 1} ${variant}: admin p99 ${r.adminP99.toFixed(1)} ms over ${r.adminN} calls (${r.adminFailures} failed), statuses ${JSON.stringify(r.statuses)}, ${r.floodRps.toFixed(0)} wrong-password replies/s, oracle ${r.unknownMs.toFixed(1)} vs ${r.knownMs.toFixed(1)} ms`);
    }
  }
  rmSync(dataDir, { recursive: true, force: true });
  report(results, { ROUNDS, SECONDS, CLIENTS, SERIALS });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN;
};
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] : NaN;
};

async function runRound(dist, dataDir, variant, { seconds, clients, serials, probeBase }) {
  const child = fork(new URL(import.meta.url).pathname, ['--serve', dist, dataDir, variant], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ports = await new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
  const cpu = () => new Promise((resolve) => { child.once('message', (m) => resolve(m.cpu)); child.send('cpu'); });

  const agent = new Agent({ keepAlive: true, maxSockets: clients + 4, rejectUnauthorized: false });
  const wrong = (serial, password) => timed(() => call(httpsRequest, { port: ports.bootstrapPort, path: GBD, method: 'POST', agent, headers: { authorization: 'Basic ' + Buffer.from(`${serial}:${password}`).toString('base64'), 'content-type': 'application/yang-data+json' } }, '{}'));

  // 1. Timing oracle on the idle server: unknown serial vs known serial with a wrong password.
  const unknown = [];
  const known = [];
  for (let i = 0; i < 10; i++) {
    unknown.push((await wrong(`NOBODY-${probeBase + i}`, 'x')).ms);
    known.push((await wrong(`PW-${FLOOD_DEVICES + ((probeBase + i) % PROBE_DEVICES)}`, 'x')).ms);
  }

  // 2. Warm-up, not measured: every client's TLS connection is set up before the clock starts.
  const hostMeta = () => call(httpsRequest, { port: ports.bootstrapPort, path: '/.well-known/host-meta', method: 'GET', agent });
  await Promise.all(Array.from({ length: clients }, hostMeta));

  // 3. Flood: `clients` loops of wrong passwords; one admin client polls GET /api/v1/devices.
  const statuses = {};
  let floodCount = 0;
  const admin = [];
  let adminFailures = 0;
  const cpuBefore = await cpu();
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const floods = Array.from({ length: variant === 'idle' ? 0 : clients }, async (_, i) => {
    while (performance.now() < deadline) {
      const r = await wrong(`PW-${i % Math.min(serials, FLOOD_DEVICES)}`, 'wrong');
      statuses[r.status] = (statuses[r.status] ?? 0) + 1;
      floodCount++;
    }
  });
  const prober = fork(new URL(import.meta.url).pathname, ['--probe', String(ports.apiPort), String(Date.now() + (deadline - performance.now()))], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const adminLoop = new Promise((resolve) => prober.once('message', (m) => {
    admin.push(...m.admin);
    adminFailures = m.failures;
    resolve();
  }));
  await Promise.all([...floods, adminLoop]);
  const elapsed = (performance.now() - started) / 1000;
  const cpuAfter = await cpu();
  agent.destroy();
  await new Promise((resolve) => { child.once('exit', resolve); child.kill('SIGTERM'); });
  const cpuMs = (cpuAfter.user + cpuAfter.system - cpuBefore.user - cpuBefore.system) / 1000;
  return {
    adminP50: pct(admin, 50), adminP99: pct(admin, 99), adminMax: Math.max(...admin), adminN: admin.length, adminFailures,
    floodRps: floodCount / elapsed, statuses, cpuMsPerRequest: cpuMs / Math.max(1, floodCount + admin.length),
    unknownMs: median(unknown), knownMs: median(known),
  };
}

function call(request, options, body) {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', ...options, timeout: 30_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    // A timeout or a reset is a result to count, not a reason to stop the bench.
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve(err.message === 'timeout' ? 'timeout' : 'error'));
    req.end(body);
  });
}

async function timed(fn) {
  const t = performance.now();
  const status = await fn();
  return { status, ms: performance.now() - t };
}

function report(results, { ROUNDS, SECONDS, CLIENTS, SERIALS }) {
  const f = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '-');
  const spread = (xs, d = 1) => `${f(median(xs), d)} (${f(Math.min(...xs), d)}–${f(Math.max(...xs), d)})`;
  console.log(`\nwrong-password flood: ${CLIENTS} concurrent clients over ${SERIALS} serials, ${SECONDS} s per round, ${ROUNDS} rounds alternating; median (min–max) over rounds`);
  console.log('load generator and server share the machine (2 cores, other engineers running jobs too)\n');
  const cols = ['variant', 'admin p50 ms', 'admin p99 ms', 'admin max ms', 'replies/s [401/429/503]', 'server CPU ms/req', '401 unknown ms', '401 known ms'];
  const widths = [13, 26, 26, 26, 30, 21, 22, 22];
  const line = (cells) => cells.map((c, i) => String(c).padEnd(widths[i])).join('').trimEnd();
  console.log(line(cols));
  for (const [variant, rs] of Object.entries(results)) {
    const statuses = rs.reduce((acc, r) => { for (const [k, v] of Object.entries(r.statuses)) acc[k] = (acc[k] ?? 0) + v; return acc; }, {});
    const mix = ['401', '429', '503'].map((s) => statuses[s] ?? 0).join('/');
    console.log(line([
      variant, spread(rs.map((r) => r.adminP50)), spread(rs.map((r) => r.adminP99)), spread(rs.map((r) => r.adminMax)),
      `${spread(rs.map((r) => r.floodRps), 0)} [${mix}]`, spread(rs.map((r) => r.cpuMsPerRequest), 2), spread(rs.map((r) => r.unknownMs)), spread(rs.map((r) => r.knownMs)),
    ]));
  }
  // Ratios of the same rounds, for the variants that ran (--variants may pick a subset).
  const ratio = (a, b) => (results[a] && results[b] ? median(results[a].map((r, i) => r.adminP99 / results[b][i].adminP99)) : NaN);
  const oracle = (v) => (results[v] ? median(results[v].map((r) => r.unknownMs / r.knownMs)) : NaN);
  console.log(`\nadmin p99, before / after (same round): ${f(ratio('before', 'after'), 1)}x; before / after+limit: ${f(ratio('before', 'after+limit'), 1)}x; after / idle: ${f(ratio('after', 'idle'), 1)}x; after+limit / idle: ${f(ratio('after+limit', 'idle'), 1)}x`);
  console.log(`timing oracle, unknown / known serial 401: before ${f(oracle('before'), 2)}, after ${f(oracle('after'), 2)}`);
}

if (args[0] === '--serve') await serve();
else if (args[0] === '--probe') await probe();
else await main();
