// Bootstrap server benchmark (issue 2): 10,000 registered devices, 200 concurrent devices over
// HTTPS with keep-alive and mutual TLS. Measures get-bootstrapping-data signed and unsigned and
// report-progress (each report committed before its 204), against a bare fastify HTTPS route
// returning a body of the same size, in the same run, with the same load generator.
//   npm run bench            (builds, then runs every benchmark)
//   node bench/bootstrap/run.js [--seconds 8] [--concurrency 200] [--devices 10000]
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { validateConfig } from '../../dist/config.js';
import { openDatabase } from '../../dist/db/database.js';
import { DeviceStore } from '../../dist/devices/store.js';
import { ensureLabPki, issueDeviceIdentity } from '../../dist/pki/lab.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '8' }, concurrency: { type: 'string', default: '200' }, devices: { type: 'string', default: '10000' } } });
const SECONDS = Number(values.seconds);
const CONCURRENCY = Number(values.concurrency);
const DEVICES = Number(values.devices);
const RPC = '/restconf/operations/ietf-sztp-bootstrap-server:';
const serverScript = new URL('./server.js', import.meta.url).pathname;

const dataDir = mkdtempSync(join(tmpdir(), 'ztp-bench-bootstrap-'));
const { pki } = await ensureLabPki(dataDir, validateConfig({}).pki, 'localhost');

// 10,000 registered devices; the first CONCURRENCY are the ones that call in.
{
  const db = openDatabase({ file: join(dataDir, 'ztp.db') });
  const store = new DeviceStore(db);
  store.transaction(() => {
    for (let i = 0; i < DEVICES; i++) {
      store.upsert({ serial: `BENCH-${String(i).padStart(5, '0')}`, profile: 'rfc8572', bootImage: 'dpu-os.img', config: `hostname dpu-${i}\n`, macs: [macOf(i)] }, 'bench');
    }
  });
  db.close();
}
function macOf(i) {
  return ['02', '00', ...[(i >> 24) & 255, (i >> 16) & 255, (i >> 8) & 255, i & 255].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}
const identities = [];
for (let i = 0; i < CONCURRENCY; i++) identities.push(await issueDeviceIdentity(pki, `BENCH-${String(i).padStart(5, '0')}`));

async function startServer(mode, size = 0) {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const child = fork(serverScript, [mode, dataDir, String(port), String(size)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: process.env.ZTP_BENCH_PROFILE ? ['--cpu-prof', '--cpu-prof-dir=' + process.env.ZTP_BENCH_PROFILE] : [] });
  await new Promise((resolve, reject) => {
    child.once('message', (m) => (m.ready ? resolve() : reject(new Error('server failed'))));
    child.once('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
  const stats = () => new Promise((resolve) => { child.once('message', resolve); child.send('stats'); });
  const stop = () => new Promise((resolve) => { child.once('exit', resolve); child.kill('SIGTERM'); });
  return { port, stats, stop };
}

function call(agent, port, path, body) {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', agent, servername: 'localhost', headers: { 'content-type': 'application/yang-data+json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      let size = 0;
      res.on('data', (c) => (size += c.length));
      res.on('end', () => resolve({ status: res.statusCode, size }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** CONCURRENCY devices, each on its own keep-alive TLS connection with its own IDevID. */
async function load(port, path, bodyOf, expectStatus) {
  const agents = identities.map((id) => new Agent({ keepAlive: true, maxSockets: 1, cert: id.certPem, key: id.keyPem, ca: pki.rootCaPem }));
  // Warm-up: handshakes and caches, not measured.
  await Promise.all(agents.map((a, i) => call(a, port, path, bodyOf(i))));
  const latencies = [];
  let errors = 0;
  let bytes = 0;
  const started = performance.now();
  const deadline = started + SECONDS * 1000;
  await Promise.all(agents.map(async (agent, i) => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      const res = await call(agent, port, path, bodyOf(i));
      latencies.push(performance.now() - t0);
      bytes = res.size;
      if (res.status !== expectStatus) errors++;
    }
  }));
  const elapsed = (performance.now() - started) / 1000;
  for (const a of agents) a.destroy();
  latencies.sort((a, b) => a - b);
  const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
  return { rps: latencies.length / elapsed, p50: q(0.5), p99: q(0.99), errors, n: latencies.length, bytes };
}

const input = (o) => JSON.stringify({ 'ietf-sztp-bootstrap-server:input': o });
const results = [];

async function phase(name, mode, path, bodyOf, expectStatus, size) {
  const server = await startServer(mode, size);
  try {
    const r = await load(server.port, path, bodyOf, expectStatus);
    const { peakRss } = await server.stats();
    results.push({ name, ...r, rssMb: peakRss / 1048576 });
    return r;
  } finally {
    await server.stop();
  }
}

console.log(`bootstrap benchmark: ${DEVICES} registered devices, ${CONCURRENCY} concurrent mTLS devices, ${SECONDS} s per phase`);
const signed = await phase('get-bootstrapping-data (signed)', 'suite', RPC + 'get-bootstrapping-data', () => input({ 'signed-data-preferred': [null] }), 200);
await phase('bare fastify HTTPS, same body size', 'bare', RPC + 'get-bootstrapping-data', () => input({}), 200, signed.bytes);
const unsigned = await phase('get-bootstrapping-data (unsigned)', 'suite', RPC + 'get-bootstrapping-data', () => input({}), 200);
await phase('bare fastify HTTPS, unsigned body size', 'bare', RPC + 'get-bootstrapping-data', () => input({}), 200, unsigned.bytes);
await phase('report-progress (committed)', 'suite', RPC + 'report-progress', (i) => input({ 'progress-type': 'informational', message: `bench ${i}` }), 204);

const pad = (s, n) => String(s).padEnd(n);
console.log('\n' + pad('phase', 38) + pad('req/s', 9) + pad('p50 ms', 9) + pad('p99 ms', 9) + pad('RSS MB', 8) + pad('body B', 8) + 'errors');
for (const r of results) console.log(pad(r.name, 38) + pad(r.rps.toFixed(0), 9) + pad(r.p50.toFixed(1), 9) + pad(r.p99.toFixed(1), 9) + pad(r.rssMb.toFixed(0), 8) + pad(r.bytes, 8) + r.errors);
const bareSigned = results[1].rps;
const bareUnsigned = results[3].rps;
console.log(`\nsigned / bare: ${((results[0].rps / bareSigned) * 100).toFixed(0)}% (target ≥ 70%)   unsigned / bare: ${((results[2].rps / bareUnsigned) * 100).toFixed(0)}%`);
console.log(`report-progress: ${results[4].rps.toFixed(0)} committed reports/s (target ≥ 5,000)`);
rmSync(dataDir, { recursive: true, force: true });
