// Server side of the bootstrap benchmark, run as its own process so its RSS and CPU are its own.
//   node bench/bootstrap/server.js suite <dist> <dataDir>      the real bootstrap app (compiled src/)
//   node bench/bootstrap/server.js bare <dist> <dataDir> <n>   a bare fastify HTTPS route, n-byte body
//   node bench/bootstrap/server.js bareCommitted <dist> <dataDir> <n>   the same, plus one history row
//                                                               committed per request (apps.js)
//   node bench/bootstrap/server.js bareRow <dist> <dataDir> <n>   the same with the cheapest row:
//                                                               an unindexed table of its own
// Listens on a port the kernel picks and sends {ready, port} over IPC; on "reset" starts counting
// CPU, on "stats" replies with peak RSS and the CPU (user + system, ms) since the reset.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { join } from 'node:path';
import { bareApp, bareCommittedApp, bareRowApp, suiteBootstrapApp } from './apps.js';

const [mode, dist, dataDir, sizeArg] = process.argv.slice(2);
const load = (m) => import(join(dist, m));
// As `ztp serve` runs it: V8's heap sized for a server (src/server-heap.ts), in builds that have it.
// BENCH_NO_SERVER_HEAP=1 leaves V8's defaults (to measure what the sizing costs this path).
if (mode === 'suite' && !process.env.BENCH_NO_SERVER_HEAP) (await load('server-heap.js').catch(() => undefined))?.applyServerHeapSizing();
const { validateConfig } = await load('config.js');
const { ensureLabPki } = await load('pki/lab.js');
const config = validateConfig({ dataDir });
const { pki } = await ensureLabPki(dataDir, config.pki, 'localhost');
const https = { cert: pki.tls.certPem, key: pki.tls.keyPem, requestCert: true, rejectUnauthorized: false, ca: pki.deviceTrustPem };

let app;
let events = 0;
let commits = 0;
if (mode === 'bare') {
  app = bareApp({ path: '/restconf/operations/ietf-sztp-bootstrap-server:get-bootstrapping-data', body: 'x'.repeat(Number(sizeArg)), https });
} else if (mode === 'bareRow') {
  app = bareRowApp({ path: '/restconf/operations/ietf-sztp-bootstrap-server:get-bootstrapping-data', body: 'x'.repeat(Number(sizeArg)), https, file: join(dataDir, `bare-rows-${process.pid}.db`) });
} else {
  // the suite, or the bare route with the suite's store (bareCommitted)
  const { openDatabase } = await load('db/database.js');
  const { DeviceStore } = await load('devices/store.js');
  const db = openDatabase({ file: join(dataDir, 'ztp.db') });
  // As `ztp serve` runs it: WAL checkpoints on their own thread, in builds that have them.
  // BENCH_NO_CHECKPOINTER=1 leaves them to SQLite (to measure what the worker changes).
  const checkpointer = process.env.BENCH_NO_CHECKPOINTER ? undefined : await load('db/checkpointer.js').catch(() => undefined);
  checkpointer?.checkpointInBackground(db);
  // BENCH_PRAGMA="name=value": a setting to try on our connection before changing the code.
  if (process.env.BENCH_PRAGMA) db.pragma(process.env.BENCH_PRAGMA);
  const store = new DeviceStore(db);
  // Group commits: a batch's events are announced together after its commit, one count per turn.
  let announcing = false;
  store.events.on('event', () => {
    events++;
    if (announcing) return;
    announcing = true;
    commits++;
    process.nextTick(() => (announcing = false));
  });
  app = mode === 'bareCommitted'
    ? bareCommittedApp({ path: '/restconf/operations/ietf-sztp-bootstrap-server:get-bootstrapping-data', body: 'x'.repeat(Number(sizeArg)), https, store })
    : await suiteBootstrapApp(dist, { store, pki, maxBodyBytes: config.bootstrap.maxBodyBytes, https });
}

let peakRss = 0;
let cpu0 = process.cpuUsage();
// How long the event loop was held (commits, checkpoints, GC): every reply in flight waits that long.
const loopDelay = monitorEventLoopDelay({ resolution: 5 });
const sample = () => (peakRss = Math.max(peakRss, process.memoryUsage.rss()));
setInterval(sample, 100).unref();
process.on('message', (msg) => {
  sample();
  if (msg === 'stats') {
    const cpu = process.cpuUsage(cpu0);
    loopDelay.disable();
    process.send?.({ peakRss, cpuMs: (cpu.user + cpu.system) / 1000, events, commits, loopP99Ms: loopDelay.percentile(99) / 1e6, loopMaxMs: loopDelay.max / 1e6 });
  }
  if (msg === 'reset') {
    cpu0 = process.cpuUsage();
    loopDelay.reset();
    loopDelay.enable();
    events = 0;
    commits = 0;
  }
});
process.on('SIGTERM', () => app.close().then(() => process.exit(0)));
await app.listen({ host: '127.0.0.1', port: 0 });
sample();
process.send?.({ ready: true, port: app.server.address().port });
