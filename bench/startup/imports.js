#!/usr/bin/env node
// What each module costs `ztp serve` at start (issue 12): every module is imported alone in a
// fresh process, several rounds, and the child reports the CPU (user + system) and the RSS that
// import added. Inclusive figures: a module counts with everything it imports, so rows overlap
// (dist/suite.js contains fastify). Rows are packages from node_modules and modules of the
// compiled dist; `--against <dist>` adds the same dist modules of another build.
// --after a,b: import these dist modules first (not counted), so a row is what its module adds
// to them (e.g. --after cli/main.js,log.js: what a service costs beyond the CLI and the logger).
//   node bench/startup/imports.js [--rounds 5] [--against <dist>] [--no-build] [--only a,b] [--after a,b]
import { compiledSources, log, opt, root, medianSpread } from '../common.js';
import { execFileSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const dist = compiledSources('startup', 'cli/main.js');
const ROUNDS = Number(opt('rounds', 5));
const AGAINST = opt('against', null) && resolve(opt('against'));
const ONLY = opt('only', null)?.split(',');
const AFTER = opt('after', null)?.split(',') ?? [];

const PACKAGES = [
  'fastify',
  '@sinclair/typebox',
  '@sinclair/typebox/value',
  '@sinclair/typebox/compiler',
  'commander',
  'pino',
  'prom-client',
  'better-sqlite3',
  'fast-xml-parser',
  '@opentelemetry/api',
  'p-limit',
  '@fastify/static',
];
const DIST_MODULES = ['config.js', 'log.js', 'metrics.js', 'telemetry.js', 'api/dashboard.js', 'bootstrap/restconf.js', 'http/listener.js', 'pki/lab.js', 'tftp/service.js', 'db/database.js', 'devices/store.js', 'bootstrap/service.js', 'images/service.js', 'api/app.js', 'onboarding/service.js', 'dhcp/threaded.js', 'suite.js', 'cli/serve.js', 'cli/main.js'];

// The child: baseline, import, figures as one JSON line. RSS is read without forcing a GC
// (what the process holds, as /proc reports it), CPU from process.cpuUsage().
const child = (url, before) => `
for (const m of ${JSON.stringify(before)}) await import(m);
const rss0 = process.memoryUsage.rss(); const cpu0 = process.cpuUsage(); const t0 = performance.now();
await import(${JSON.stringify(url)});
const cpu = process.cpuUsage(cpu0);
console.log(JSON.stringify({ wallMs: performance.now() - t0, cpuMs: (cpu.user + cpu.system) / 1000, rssMb: (process.memoryUsage.rss() - rss0) / 2 ** 20 }));
process.exit(0);`;

function measure(spec, before) {
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', child(spec, before)], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return JSON.parse(out.trim().split('\n').pop());
}

const fmt = medianSpread;

const rows = [
  ...PACKAGES.map((p) => ({ label: p, spec: p, cwd: root })),
  ...DIST_MODULES.map((m) => ({ label: m, spec: pathToFileURL(join(dist, m)).href, before: AFTER.map((a) => pathToFileURL(join(dist, a)).href) })),
  ...(AGAINST ? DIST_MODULES.map((m) => ({ label: `${m} (against)`, spec: pathToFileURL(join(AGAINST, m)).href, before: AFTER.map((a) => pathToFileURL(join(AGAINST, a)).href) })) : []),
].filter((r) => !ONLY || ONLY.some((o) => r.label.includes(o)));

// Packages resolve from this checkout's root (the child imports a file URL, as the dist would).
for (const r of rows) {
  if (!r.spec.startsWith('file:')) r.spec = pathToFileURL(execFileSync(process.execPath, ['--input-type=module', '-e', `console.log(new URL(import.meta.resolve(${JSON.stringify(r.spec)})).pathname)`], { cwd: r.cwd, encoding: 'utf8' }).trim()).href;
}

log(`${rows.length} modules × ${ROUNDS} rounds, each import in a fresh process`);
const results = new Map(rows.map((r) => [r.label, []]));
for (let i = 0; i < ROUNDS; i++) for (const r of rows) results.get(r.label).push(measure(r.spec, r.before ?? []));
console.log(`import cost, each module alone in a fresh node ${process.version}${AFTER.length ? ` after ${AFTER.join(', ')} (dist modules)` : ''}, ${ROUNDS} rounds, median (min–max); load average ${loadavg()[0].toFixed(1)} at the end`);
console.log('module'.padEnd(36) + 'CPU ms'.padEnd(20) + 'wall ms'.padEnd(20) + 'RSS added, MB');
for (const [label, xs] of results) {
  console.log(label.padEnd(36) + fmt(xs.map((x) => x.cpuMs)).padEnd(20) + fmt(xs.map((x) => x.wallMs)).padEnd(20) + fmt(xs.map((x) => x.rssMb), 1));
}
