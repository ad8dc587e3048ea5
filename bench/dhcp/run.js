#!/usr/bin/env node
// DHCPv4 four-way exchanges per second (perfdhcp, Debian kea-admin) against our responder,
// Kea (memfile, persist on) and dnsmasq (--no-ping, lease file), in the same run on the same
// pair of network namespaces; leases persisted by each. Standalone: `node bench/dhcp/run.js`
// (root; compiles src/dhcp/standalone.ts itself). Env: BENCH_SECONDS (10), BENCH_RATE (30000).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const REPO = resolve(import.meta.dirname, '../..');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const RATE = Number(process.env.BENCH_RATE ?? 30000);
const CLIENTS = 20000;
const need = ['ip', 'perfdhcp', 'kea-dhcp4', 'dnsmasq'];
if (process.getuid?.() !== 0) {
  console.log('bench/dhcp: needs root (network namespaces); skipped');
  process.exit(0);
}
for (const t of need) {
  if (spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0) {
    console.log(`bench/dhcp: ${t} is not installed; skipped`);
    process.exit(0);
  }
}
const id = `zb${(process.pid % 10000).toString(36)}`;
const S = `${id}s`;
const C = `${id}c`;
const dir = mkdtempSync(join(tmpdir(), 'ztp-dhcp-bench-'));
const sh = (...a) => execFileSync(a[0], a.slice(1), { stdio: 'pipe', encoding: 'utf8' });
const inNs = (ns, ...a) => sh('ip', 'netns', 'exec', ns, ...a);
const started = [];

function cleanup() {
  for (const p of started) if (p.exitCode === null) p.kill('SIGKILL');
  for (const ns of [S, C]) {
    try {
      for (const pid of sh('ip', 'netns', 'pids', ns).split(/\s+/).filter(Boolean)) process.kill(Number(pid), 'SIGKILL');
    } catch { /* gone */ }
    try { sh('ip', 'netns', 'del', ns); } catch { /* gone */ }
  }
  rmSync(dir, { recursive: true, force: true });
}
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function startProc(args, readyTest, env = process.env) {
  const p = spawn('ip', ['netns', 'exec', S, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  started.push(p);
  let out = '';
  p.stdout.on('data', (d) => (out += d));
  p.stderr.on('data', (d) => (out += d));
  const end = Date.now() + 15000;
  while (!readyTest(out)) {
    if (p.exitCode !== null || Date.now() > end) throw new Error(`${args[0]} did not start: ${out.slice(-2000)}`);
    await sleep(100);
  }
  return p;
}

async function stopProc(p) {
  if (p.exitCode !== null) return;
  p.kill('SIGTERM');
  const end = Date.now() + 5000;
  while (p.exitCode === null && p.signalCode === null && Date.now() < end) await sleep(50);
  if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
}

function perf() {
  const r = spawnSync('ip', ['netns', 'exec', C, 'perfdhcp', '-4', '-l', 'vc0', '-r', String(RATE), '-R', String(CLIENTS), '-p', String(SECONDS), '-x', 'i'], { encoding: 'utf8', timeout: (SECONDS + 30) * 1000 });
  const out = (r.stdout ?? '') + (r.stderr ?? '');
  const rate = Number(/Rate: ([\d.]+) 4-way exchanges\/second/.exec(out)?.[1] ?? NaN);
  const sent = [...out.matchAll(/sent packets: (\d+)/g)].map((m) => Number(m[1]));
  const drops = [...out.matchAll(/drops: (\d+)/g)].map((m) => Number(m[1]));
  const dropPct = sent.length ? (100 * drops.reduce((a, b) => a + b, 0)) / sent.reduce((a, b) => a + b, 0) : NaN;
  return { rate, dropPct, raw: out };
}

try {
  sh('ip', 'netns', 'add', S);
  sh('ip', 'netns', 'add', C);
  sh('ip', 'link', 'add', 'vs0', 'netns', S, 'type', 'veth', 'peer', 'name', 'vc0', 'netns', C);
  inNs(S, 'ip', 'addr', 'add', '10.77.0.1/16', 'dev', 'vs0');
  inNs(C, 'ip', 'addr', 'add', '10.77.255.254/16', 'dev', 'vc0');
  for (const [ns, dev] of [[S, 'vs0'], [C, 'vc0'], [S, 'lo'], [C, 'lo']]) inNs(ns, 'ip', 'link', 'set', dev, 'up');

  // ours: compiled standalone runner, SQLite leases, info logs off (warn) to measure the responder
  const out = join(REPO, 'node_modules', '.cache', 'dpu-ztp-dhcp', `bench-${process.pid}`);
  spawnSync(join(REPO, 'node_modules', '.bin', 'tsc'), ['-p', join(REPO, 'test/dhcp/tsconfig.standalone.json'), '--outDir', out], { stdio: 'ignore' });
  if (!existsSync(join(out, 'dhcp', 'standalone.js'))) throw new Error('could not compile src/dhcp/standalone.ts');
  const results = [];
  const pool = { start: '10.77.1.0', end: '10.77.254.255' };
  writeFileSync(join(dir, 'ztp.json'), JSON.stringify({ dataDir: join(dir, 'ztp-data'), logLevel: 'warn', dhcp: { interface: 'vs0', subnets: [{ subnet: '10.77.0.0/16', pools: [pool] }] } }));
  let p = await startProc([process.execPath, join(out, 'dhcp', 'standalone.js'), '--config', join(dir, 'ztp.json'), '--public-host', 'ztp.bench'], (o) => o.includes('"ready":true'));
  results.push({ server: 'dpu-ztp (node, SQLite WAL)', ...perf() });
  await stopProc(p);

  writeFileSync(join(dir, 'kea.json'), JSON.stringify({
    Dhcp4: {
      'interfaces-config': { interfaces: ['vs0'] },
      'lease-database': { type: 'memfile', persist: true, name: join(dir, 'kea-leases.csv'), 'lfc-interval': 0 },
      'valid-lifetime': 3600,
      subnet4: [{ id: 1, subnet: '10.77.0.0/16', pools: [{ pool: `${pool.start} - ${pool.end}` }] }],
      loggers: [{ name: 'kea-dhcp4', severity: 'WARN', output_options: [{ output: 'stdout' }] }],
    },
  }));
  const keaEnv = { ...process.env, KEA_PIDFILE_DIR: dir, KEA_LOCKFILE_DIR: dir, KEA_LOCKFILE_DIR_: dir };
  p = await startProc(['kea-dhcp4', '-c', join(dir, 'kea.json')], () => true, keaEnv);
  await sleep(1500);
  results.push({ server: 'Kea 2.2 (memfile, persist)', ...perf() });
  await stopProc(p);

  p = await startProc(['dnsmasq', '--keep-in-foreground', '--port=0', '--interface=vs0', '--bind-interfaces', `--dhcp-range=${pool.start},${pool.end},1h`, `--dhcp-leasefile=${join(dir, 'dnsmasq.leases')}`, '--no-ping', `--dhcp-lease-max=70000`, `--pid-file=${join(dir, 'dnsmasq.pid')}`], () => true);
  await sleep(1000);
  results.push({ server: 'dnsmasq 2.90 (--no-ping, lease file)', ...perf() });
  await stopProc(p);

  const ours = results[0].rate;
  console.log(`\nDHCPv4 four-way exchanges/s, perfdhcp -r ${RATE} -R ${CLIENTS} -p ${SECONDS}, client and servers sharing this machine\n`);
  console.log('| server | exchanges/s | drops % | dpu-ztp / this |');
  console.log('|---|---:|---:|---:|');
  for (const r of results) console.log(`| ${r.server} | ${r.rate.toFixed(0)} | ${r.dropPct.toFixed(2)} | ${(ours / r.rate).toFixed(2)} |`);
  if (process.env.BENCH_VERBOSE) for (const r of results) console.log(`\n--- ${r.server}\n${r.raw}`);
} catch (err) {
  console.error(`bench/dhcp failed: ${err.message}`);
  process.exitCode = 1;
}
