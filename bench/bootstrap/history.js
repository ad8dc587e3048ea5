#!/usr/bin/env node
// The history write of the bootstrap server alone (issue 12): `recordCommitted` (group commit,
// WAL, committed before it resolves) as the bootstrap routes call it, `concurrency` devices each
// with one report in flight, on a WAL database file of `devices` registered devices. CPU (user +
// system) of the process per committed event; each phase is a fresh child process on a fresh copy
// of the same registry, builds alternating per round.
//   node bench/bootstrap/history.js [--rounds 3] [--events 40000] [--concurrency 200]
//        [--devices 10000] [--against <dist>] [--no-build]
//        [--sql "<statements run on the copy before the phase>"] [--pragma "name=value"]
// --sql / --pragma (applied to this build's phase only) are for trying a schema or setting
// before changing the code, e.g. --sql "DROP INDEX events_type" or --pragma wal_autocheckpoint=0.
import { compiledSources, log, opt, median, medianSpread } from '../common.js';
import { registryCopies, serialOf } from './registry.js';
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';


if (process.argv[2] === '--child') await child(JSON.parse(process.argv[3]));
else await main();

async function main() {
  const dist = compiledSources('bootstrap', 'bootstrap/app.js');
  const ROUNDS = Number(opt('rounds', 3));
  const EVENTS = Number(opt('events', 40000));
  const CONCURRENCY = Number(opt('concurrency', 200));
  const DEVICES = Number(opt('devices', 10000));
  const AGAINST = opt('against', null) && resolve(opt('against'));
  const SQL = opt('sql', null);
  const PRAGMA = opt('pragma', null);
  const dataDir = mkdtempSync(join(tmpdir(), 'ztp-bench-history-'));
  const builds = { this: dist, ...(AGAINST ? { against: AGAINST } : {}) };

  const freshDb = registryCopies(dataDir, DEVICES);

  async function run(name) {
    const build = builds[name];
    const spec = { build, file: await freshDb(build), events: EVENTS, concurrency: CONCURRENCY, sql: name === 'this' ? SQL : null, pragma: name === 'this' ? PRAGMA : null };
    const c = fork(new URL(import.meta.url).pathname, ['--child', JSON.stringify(spec)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    return new Promise((res, rej) => {
      c.once('message', res);
      c.once('exit', (code) => code && rej(new Error(`${name}: child exited ${code}`)));
    });
  }

  const results = Object.fromEntries(Object.keys(builds).map((k) => [k, []]));
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? Object.keys(builds) : Object.keys(builds).reverse();
    for (const name of order) {
      const r = await run(name);
      results[name].push(r);
      log(`round ${round + 1} ${name}: ${r.usPerEvent.toFixed(2)} µs/event, ${r.perSecond.toFixed(0)} events/s, ${r.commits} commits`);
    }
  }
  rmSync(dataDir, { recursive: true, force: true });

  const ms = (xs, d = 2) => medianSpread(xs, d);
  const pad = (s, n) => String(s).padEnd(n);
  console.log(`history write (recordCommitted): ${DEVICES} devices, ${CONCURRENCY} in flight, ${EVENTS} events per phase, ${ROUNDS} rounds; node ${process.version}, ${cpus().length} cores, load average ${loadavg()[0].toFixed(1)} at the end`);
  if (SQL || PRAGMA) console.log(`this build's phases with ${[SQL && `--sql "${SQL}"`, PRAGMA && `--pragma ${PRAGMA}`].filter(Boolean).join(' ')}`);
  console.log('median (min–max) over the rounds\n');
  console.log(pad('build', 10) + pad('µs/event (CPU)', 26) + pad('events/s', 26) + 'events/commit');
  for (const [k, rs] of Object.entries(results)) {
    console.log(pad(k, 10) + pad(ms(rs.map((r) => r.usPerEvent)), 26) + pad(ms(rs.map((r) => r.perSecond), 0), 26) + median(rs.map((r) => EVENTS / r.commits)).toFixed(0));
  }
  if (AGAINST) console.log(`\nthis / against, per round: ${ms(results.this.map((r, i) => r.usPerEvent / results.against[i].usPerEvent))}`);
}

async function child(spec) {
  const { openDatabase } = await import(join(spec.build, 'db/database.js'));
  const { DeviceStore } = await import(join(spec.build, 'devices/store.js'));
  const db = openDatabase({ file: spec.file });
  if (spec.sql) db.exec(spec.sql);
  if (spec.pragma) db.pragma(spec.pragma);
  const store = new DeviceStore(db);
  // What report-progress writes, per device.
  const event = (i, n) => ({ serial: serialOf(i), source: 'bootstrap', type: 'progress', data: { progressType: 'informational', message: `bench ${n}`, auth: 'cert' } });
  let left = 0;
  let n = 0;
  const drive = () => Promise.all(Array.from({ length: spec.concurrency }, async (_, i) => {
    while (left-- > 0) await store.recordCommitted(event(i, n++));
  }));
  left = spec.concurrency * 5;
  await drive();
  // A batch's events are announced together after its commit: one count per announcing turn.
  // (`ztp serve` has listeners too: the event feed, the onboarding conductor.)
  let batches = 0;
  let counted = false;
  store.events.on('event', () => {
    if (counted) return;
    counted = true;
    batches++;
    process.nextTick(() => (counted = false));
  });
  left = spec.events;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  await drive();
  const cpu = process.cpuUsage(cpu0);
  const seconds = (performance.now() - t0) / 1000;
  process.send({ usPerEvent: (cpu.user + cpu.system) / spec.events, perSecond: spec.events / seconds, commits: batches });
  db.close();
  process.exit(0);
}
