#!/usr/bin/env node
// `npm run bench`: every benchmark in turn, each printing its comparison with its peer.
//   bench/bootstrap  RFC 8572 server vs a bare fastify HTTPS route (same run, same load generator)
//   bench/images     image server vs nginx (needs nginx; Debian package)
//   bench/dhcp       `ztp serve` DHCP vs Kea and dnsmasq with perfdhcp (needs root and the packages)
//   shared-loop      bench/dhcp/shared-loop.js: admin API + bootstrap latency while DHCP takes 5,000 packets/s
//   bench/redfish    Redfish client driving 250/500/1,000 emulated BMCs through bootFromIso; python3-sushy as peer
//   bench/fleet      250/500/1,000 simulated DPUs + emulated BMCs onboarded end to end by `ztp serve`
//   bench/dashboard  server CPU of 0 / 1 / 10 open dashboard event streams while a 1,000-device lab is written
//   bench/hostile    other services' p99 while one client sends 100 req/s of each costly kind (issue 11)
//   bench/startup    `ztp serve` cold start to ready and idle RSS (median of several starts)
// Pass names to run a subset: npm run bench -- bootstrap images
import { spawnSync } from 'node:child_process';

const all = ['bootstrap', 'images', 'dhcp', 'shared-loop', 'redfish', 'fleet', 'dashboard', 'hostile', 'startup'];
const scripts = { 'shared-loop': './dhcp/shared-loop.js' };
const chosen = process.argv.slice(2).filter((a) => all.includes(a));
let failed = 0;
for (const name of chosen.length ? chosen : all) {
  console.log(`\n=== bench/${name} ===`);
  const res = spawnSync(process.execPath, [new URL(scripts[name] ?? `./${name}/run.js`, import.meta.url).pathname], { stdio: 'inherit' });
  if (res.status !== 0) {
    failed++;
    console.log(`bench/${name} exited with ${res.status ?? res.signal}`);
  }
}
process.exitCode = failed ? 1 : 0;
