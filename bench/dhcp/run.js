#!/usr/bin/env node
// DHCPv4 four-way exchanges per second (perfdhcp, Debian kea-admin) against the product as users
// run it — `node bin/ztp.js serve` with every service on (bootstrap, images, admin API,
// onboarding, TFTP), leases and history in SQLite, default log level (info) — and, in the same
// run, Kea (memfile, persist on) and dnsmasq (--no-ping, lease file). perfdhcp runs in a client
// network namespace joined to the server's by a veth pair this bench creates and removes.
//
// Per round, each server is started fresh (new data dir), waits for its ready signal (UDP 67
// bound; for ztp also "every service started"), gets the same warm-up (1 s idle, then perfdhcp
// 2 s at 1,000/s over the same clients), then every offered rate for SECONDS each. Rounds repeat
// the whole sequence; the table gives the median and the min–max spread over rounds.
// Per point: exchanges/s (perfdhcp "Rate"), drops % (both exchanges), CPU ms per completed
// exchange (the server's utime+stime delta from /proc/<pid>/stat over ACKs received) and the
// server's peak RSS (VmHWM) over its run.
//
// `node bench/dhcp/run.js` (root; needs `npm run build`), `--quick` (1 round, 4 s, 5k and 30k).
// Env: BENCH_SECONDS, BENCH_ROUNDS, BENCH_RATES (comma list), BENCH_SERVERS (ztp,kea,dnsmasq),
// BENCH_VERBOSE=1 prints perfdhcp's output.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpuTimes, Lab, median, peakRssMb, skipReason, sleep, spread, startServe, writeServeConfig } from './lab.js';

const quick = process.argv.includes('--quick') || process.env.BENCH_QUICK === '1';
const SECONDS = Number(process.env.BENCH_SECONDS ?? (quick ? 4 : 10));
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (quick ? 1 : 3));
const RATES = (process.env.BENCH_RATES ?? (quick ? '5000,30000' : '5000,10000,30000')).split(',').map(Number);
const SERVERS = (process.env.BENCH_SERVERS ?? 'ztp,kea,dnsmasq').split(',');
const CLIENTS = 20000;
const POOL = { start: '10.77.1.0', end: '10.77.254.255' };

const why = skipReason(['perfdhcp', 'kea-dhcp4', 'dnsmasq']);
if (why) {
  console.log(`bench/dhcp: ${why}; skipped`);
  process.exit(0);
}
const lab = new Lab('zb');

function perf(rate, seconds, clients = CLIENTS) {
  const r = spawnSync('ip', ['netns', 'exec', lab.C, 'perfdhcp', '-4', '-l', lab.clientIf, '-r', String(rate), '-R', String(clients), '-p', String(seconds)], { encoding: 'utf8', timeout: (seconds + 30) * 1000 });
  const out = (r.stdout ?? '') + (r.stderr ?? '');
  const rateOut = Number(/Rate: ([\d.]+) 4-way exchanges\/second/.exec(out)?.[1] ?? NaN);
  const sent = [...out.matchAll(/sent packets: (\d+)/g)].map((m) => Number(m[1]));
  const received = [...out.matchAll(/received packets: (\d+)/g)].map((m) => Number(m[1]));
  const drops = [...out.matchAll(/drops: (\d+)/g)].map((m) => Number(m[1]));
  const dropPct = sent.length ? (100 * drops.reduce((a, b) => a + b, 0)) / sent.reduce((a, b) => a + b, 0) : NaN;
  // The second exchange (REQUEST-ACK) completes a four-way exchange.
  return { rate: rateOut, dropPct, acks: received[1] ?? NaN, raw: out };
}

const servers = {
  ztp: {
    label: '`ztp serve` (all services, SQLite, log info)',
    async start(tag) {
      const { file } = writeServeConfig(lab, `ztp-${tag}`, { port: 67, subnets: [{ subnet: '10.77.0.0/16', pools: [POOL] }] });
      return startServe(lab, file);
    },
  },
  kea: {
    label: 'Kea 2.2 (memfile, persist)',
    async start(tag) {
      const conf = join(lab.dir, `kea-${tag}.json`);
      writeFileSync(conf, JSON.stringify({
        Dhcp4: {
          'interfaces-config': { interfaces: [lab.serverIf] },
          'lease-database': { type: 'memfile', persist: true, name: join(lab.dir, `kea-${tag}-leases.csv`), 'lfc-interval': 0 },
          'valid-lifetime': 3600,
          subnet4: [{ id: 1, subnet: '10.77.0.0/16', pools: [{ pool: `${POOL.start} - ${POOL.end}` }] }],
          loggers: [{ name: 'kea-dhcp4', severity: 'WARN', output_options: [{ output: 'stdout' }] }],
        },
      }));
      const p = lab.spawn(lab.S, ['kea-dhcp4', '-c', conf], { ...process.env, KEA_PIDFILE_DIR: lab.dir, KEA_LOCKFILE_DIR: lab.dir });
      await lab.waitFor(p, () => lab.udpBound(67), 'kea-dhcp4');
      return p;
    },
  },
  dnsmasq: {
    label: 'dnsmasq 2.90 (--no-ping, lease file)',
    async start(tag) {
      const p = lab.spawn(lab.S, ['dnsmasq', '--keep-in-foreground', '--port=0', `--interface=${lab.serverIf}`, '--bind-interfaces', `--dhcp-range=${POOL.start},${POOL.end},1h`, `--dhcp-leasefile=${join(lab.dir, `dnsmasq-${tag}.leases`)}`, '--no-ping', '--dhcp-lease-max=70000', `--pid-file=${join(lab.dir, `dnsmasq-${tag}.pid`)}`]);
      await lab.waitFor(p, () => lab.udpBound(67), 'dnsmasq');
      return p;
    },
  },
};

/** results[server][rate] = [{ rate, dropPct, cpuPerExchange, rss }] per round */
const results = {};
try {
  lab.up();
  const t0 = Date.now();
  console.log(`bench/dhcp: ${ROUNDS} round(s) × ${SERVERS.join(', ')} × ${RATES.join('/')}/s offered, ${SECONDS} s per point, ${CLIENTS} clients`);
  for (let round = 1; round <= ROUNDS; round++) {
    for (const name of SERVERS) {
      const s = servers[name];
      const p = await s.start(`${round}`);
      // The same warm-up for every server after its ready signal.
      await sleep(1000);
      perf(1000, 2);
      let rss = NaN;
      const points = [];
      for (const rate of RATES) {
        const before = cpuTimes(p.pid);
        const r = perf(rate, SECONDS);
        const after = cpuTimes(p.pid);
        rss = peakRssMb(p.pid);
        const user = after.user - before.user;
        const sys = after.sys - before.sys;
        points.push({ offered: rate, rate: r.rate, dropPct: r.dropPct, cpuPerExchange: (user + sys) / r.acks, sysShare: sys / (user + sys) });
        if (process.env.BENCH_VERBOSE) console.log(`\n--- ${name} round ${round} ${rate}/s\n${r.raw}`);
      }
      await lab.stop(p);
      for (const pt of points) {
        ((results[name] ??= {})[pt.offered] ??= []).push({ ...pt, rss });
        console.log(`  round ${round} ${name.padEnd(7)} ${String(pt.offered).padStart(6)}/s offered: ${pt.rate.toFixed(0).padStart(6)} exch/s, drops ${pt.dropPct.toFixed(2)}%, ${pt.cpuPerExchange.toFixed(3)} CPU ms/exch (${(100 * pt.sysShare).toFixed(0)}% kernel), peak RSS ${rss.toFixed(0)} MB`);
      }
    }
  }
  const fmt = (xs, digits) => {
    const [lo, hi] = spread(xs);
    return `${median(xs).toFixed(digits)} (${lo.toFixed(digits)}–${hi.toFixed(digits)})`;
  };
  console.log(`\nDHCPv4 four-way exchanges, perfdhcp -R ${CLIENTS} -p ${SECONDS}, ${ROUNDS} round(s): median (min–max); client and servers share this machine (${(Date.now() - t0) / 1000 | 0} s)\n`);
  console.log('| offered/s | server | exchanges/s | drops % | CPU ms/exchange | peak RSS MB | ztp / this |');
  console.log('|---:|---|---:|---:|---:|---:|---:|');
  for (const rate of RATES) {
    const ours = results.ztp?.[rate]?.map((x) => x.rate) ?? [];
    for (const name of SERVERS) {
      const rs = results[name]?.[rate] ?? [];
      // Ratio per round (same round, same machine state), then the median of those.
      const ratios = rs.map((x, i) => (ours[i] ?? NaN) / x.rate);
      console.log(`| ${rate} | ${servers[name].label} | ${fmt(rs.map((x) => x.rate), 0)} | ${fmt(rs.map((x) => x.dropPct), 2)} | ${fmt(rs.map((x) => x.cpuPerExchange), 3)} | ${fmt(rs.map((x) => x.rss), 0)} | ${name === 'ztp' ? '—' : fmt(ratios, 2)} |`);
    }
  }
} catch (err) {
  console.error(`bench/dhcp failed: ${err.stack ?? err.message}`);
  process.exitCode = 1;
}
