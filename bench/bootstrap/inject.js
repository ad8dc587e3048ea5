#!/usr/bin/env node
// Our part of a bootstrap request without TLS (issue 12): the bootstrap app driven by fastify's
// inject() in its own process, against a bare fastify route driven the same way, so the
// difference in CPU per request is what our handlers, hooks, auth, decode and history write cost
// (TLS and the socket write, which dominate bench/bootstrap/run.js, are absent from both).
// Each phase is a fresh child process: `concurrency` devices (certificates issued by the lab
// PKI, handed to the app through `credentialsOf`) keep one request each in flight; CPU (user +
// system) of that process over the measured requests, divided by the requests.
//   node bench/bootstrap/inject.js [--rounds 3] [--requests 20000] [--concurrency 200]
//        [--devices 10000] [--against <dist>] [--phases signed,progress,...] [--no-build]
//        [--cpu-prof <dir>]
// History writes go to a WAL database file (as `ztp serve` does), not :memory:.
import { compiledSources, log, opt, medianSpread } from '../common.js';
import { bareApp, suiteBootstrapApp } from './apps.js';
import { registryCopies, serialOf } from './registry.js';
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const RPC = '/restconf/operations/ietf-sztp-bootstrap-server:';
const input = (o) => JSON.stringify({ 'ietf-sztp-bootstrap-server:input': o });

if (process.argv[2] === '--child') await child(await new Promise((r) => process.once('message', r)));
else await main();

async function main() {
  const dist = compiledSources('bootstrap', 'bootstrap/app.js');
  const ROUNDS = Number(opt('rounds', 3));
  const REQUESTS = Number(opt('requests', 20000));
  const CONCURRENCY = Number(opt('concurrency', 200));
  const DEVICES = Number(opt('devices', 10000));
  const PROFILE = opt('cpu-prof', null);
  const ONLY = opt('phases', null)?.split(',');
  const AGAINST = opt('against', null) && resolve(opt('against'));

  const { validateConfig } = await import(join(dist, 'config.js'));
  const { ensureLabPki, issueDeviceIdentity } = await import(join(dist, 'pki/lab.js'));
  const dataDir = mkdtempSync(join(tmpdir(), 'ztp-bench-inject-'));
  const { pki } = await ensureLabPki(dataDir, validateConfig({}).pki, 'localhost');
  const identities = [];
  for (let i = 0; i < CONCURRENCY; i++) identities.push((await issueDeviceIdentity(pki, serialOf(i))).certPem);

  const sizes = { signed: 0, unsigned: 0 };
  const PHASES = {
    signed: { build: dist, rpc: 'get-bootstrapping-data', body: input({ 'signed-data-preferred': [null] }) },
    unsigned: { build: dist, rpc: 'get-bootstrapping-data', body: input({}) },
    progress: { build: dist, rpc: 'report-progress', body: input({ 'progress-type': 'informational', message: 'bench' }) },
    bareSigned: { bare: () => sizes.signed, rpc: 'get-bootstrapping-data', body: input({}) },
    bareUnsigned: { bare: () => sizes.unsigned, rpc: 'get-bootstrapping-data', body: input({}) },
    bareProgress: { bare: () => -1, rpc: 'report-progress', body: input({}) },
    ...(AGAINST ? {
      signedAgainst: { build: AGAINST, rpc: 'get-bootstrapping-data', body: input({ 'signed-data-preferred': [null] }) },
      unsignedAgainst: { build: AGAINST, rpc: 'get-bootstrapping-data', body: input({}) },
      progressAgainst: { build: AGAINST, rpc: 'report-progress', body: input({ 'progress-type': 'informational', message: 'bench' }) },
    } : {}),
  };

  const freshDb = registryCopies(dataDir, DEVICES);

  async function run(name, requests = REQUESTS) {
    const p = PHASES[name];
    const dbFile = p.build ? await freshDb(p.build) : undefined;
    const spec = { dataDir, dbFile, build: p.build ?? dist, bare: p.bare ? p.bare() : undefined, path: RPC + p.rpc, body: p.body, identities, requests, concurrency: CONCURRENCY };
    const c = fork(new URL(import.meta.url).pathname, ['--child'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE}`, `--cpu-prof-name=${name}-${Date.now()}.cpuprofile`] : [] });
    c.send(spec);
    return new Promise((res, rej) => {
      c.once('message', res);
      c.once('exit', (code) => code && rej(new Error(`${name}: child exited ${code}`)));
    });
  }

  // Body sizes of our replies, for the bare routes.
  sizes.signed = (await run('signed', 400)).bytes;
  sizes.unsigned = (await run('unsigned', 400)).bytes;

  const results = Object.fromEntries(Object.keys(PHASES).map((k) => [k, []]));
  for (let round = 0; round < ROUNDS; round++) {
    const pairs = [['signed', 'bareSigned', 'signedAgainst'], ['unsigned', 'bareUnsigned', 'unsignedAgainst'], ['progress', 'bareProgress', 'progressAgainst']];
    for (const trio of pairs) {
      const order = round % 2 === 0 ? trio : [...trio].reverse();
      for (const name of order.filter((n) => PHASES[n] && (!ONLY || ONLY.includes(n)))) {
        const r = await run(name);
        results[name].push(r);
        log(`round ${round + 1} ${name}: ${r.usPerReq.toFixed(1)} µs/req, ${r.rps.toFixed(0)} req/s, errors ${r.errors}`);
      }
    }
  }
  rmSync(dataDir, { recursive: true, force: true });

  const ms = (xs, d = 1) => medianSpread(xs, d);
  const pad = (s, n) => String(s).padEnd(n);
  console.log(`bootstrap app without TLS (inject()): ${DEVICES} devices, ${CONCURRENCY} in flight, ${REQUESTS} requests per phase, ${ROUNDS} rounds; node ${process.version}, ${cpus().length} cores, load average ${loadavg()[0].toFixed(1)} at the end`);
  console.log('median (min–max) over the rounds\n');
  console.log(pad('phase', 20) + pad('µs/req (CPU)', 24) + pad('req/s', 24) + 'errors');
  for (const [k, rs] of Object.entries(results).filter(([, rs]) => rs.length)) {
    console.log(pad(k, 20) + pad(ms(rs.map((r) => r.usPerReq)), 24) + pad(ms(rs.map((r) => r.rps), 0), 24) + rs.reduce((a, r) => a + r.errors, 0));
  }
  console.log('');
  const extra = (a, b) => results[a]?.length && results[b]?.length && console.log(`${pad(`${a} − ${b}`, 34)} ${ms(results[a].map((r, i) => r.usPerReq - results[b][i].usPerReq))} µs/req (per round)`);
  extra('signed', 'bareSigned');
  extra('unsigned', 'bareUnsigned');
  extra('progress', 'bareProgress');
  extra('signedAgainst', 'bareSigned');
  extra('unsignedAgainst', 'bareUnsigned');
  extra('progressAgainst', 'bareProgress');
  const ratio = (a, b) => results[a]?.length && results[b]?.length && console.log(`${pad(`${a} / ${b}`, 34)} ${ms(results[a].map((r, i) => r.usPerReq / results[b][i].usPerReq), 2)} CPU per request (per round)`);
  ratio('signed', 'signedAgainst');
  ratio('unsigned', 'unsignedAgainst');
  ratio('progress', 'progressAgainst');
}

async function child(spec) {
  const { X509Certificate } = await import('node:crypto');
  const load = (m) => import(join(spec.build, m));
  let app;
  if (spec.bare !== undefined) {
    app = bareApp({ path: spec.path, body: spec.bare >= 0 ? 'x'.repeat(spec.bare) : undefined });
  } else {
    const { validateConfig } = await load('config.js');
    const { ensureLabPki } = await load('pki/lab.js');
    const { openDatabase } = await load('db/database.js');
    const { DeviceStore } = await load('devices/store.js');
    const config = validateConfig({ dataDir: spec.dataDir });
    const { pki } = await ensureLabPki(spec.dataDir, config.pki, 'localhost');
    const store = new DeviceStore(openDatabase({ file: spec.dbFile }));
    // The certificate object is the one per connection over TLS: one per device here.
    const certificates = spec.identities.map((pem) => { const x509 = new X509Certificate(pem); return { authorized: true, pem: x509.toString(), x509 }; });
    app = await suiteBootstrapApp(spec.build, {
      store,
      pki,
      maxBodyBytes: config.bootstrap.maxBodyBytes,
      credentialsOf: (req) => ({ certificate: certificates[Number(req.headers['x-bench-device'])] }),
    });
  }
  await app.ready();
  const headers = spec.identities.map((_, i) => ({ 'content-type': 'application/yang-data+json', accept: 'application/yang-data+json', 'x-bench-device': String(i) }));
  let errors = 0;
  let bytes = 0;
  let left = 0;
  const expect = spec.path.endsWith('report-progress') ? 204 : 200;
  const drive = () => Promise.all(headers.map(async (h) => {
    while (left-- > 0) {
      const res = await app.inject({ method: 'POST', url: spec.path, headers: h, payload: spec.body });
      if (res.statusCode !== expect) errors++;
      bytes = res.rawPayload.length;
    }
  }));
  // Warm-up (JIT, caches: each device's reply assembled once), not measured.
  left = Math.min(spec.requests, headers.length * 5);
  await drive();
  errors = 0;
  left = spec.requests;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  await drive();
  const cpu = process.cpuUsage(cpu0);
  const seconds = (performance.now() - t0) / 1000;
  process.send({ usPerReq: (cpu.user + cpu.system) / spec.requests, rps: spec.requests / seconds, errors, bytes });
  await app.close();
  process.exit(0);
}
