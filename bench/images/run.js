#!/usr/bin/env node
// Image server benchmark: `ztp serve` (the product as users run it: every default service on,
// SQLite, log level info to a file) against nginx (Debian package, one worker, sendfile on plain
// HTTP, TLS 1.3 with a certificate made at run time by openssl) serving the SAME blob files on
// loopback, in one run, rounds alternating which server goes first. A third peer, Node's floor
// (bench/images/node-floor.js: node:http(s) + fs.createReadStream and nothing else), splits the
// gap to nginx into what any Node server pays and what `ztp serve` adds.
//
//   node bench/images/run.js [--rounds 3] [--seconds 8] [--big-gib 2] [--only id,id]
//                            [--no-build] [--server-cpu-prof DIR] [--node-args '--max-semi-space-size=2']
//                            [--against <dist of another build>] [--against-node-args '…'] [--memory-trace DIR] [--keep]
//
// --against: a second `ztp serve` from another build (e.g. main before a change, compiled with
// tsc into a directory) serves in the same rounds, so before/after share the machine's load.
// --memory-trace: each `ztp serve` loads bench/images/memtrace.js, which samples where its RSS is
// (smaps by kind of mapping, V8 spaces, external memory); the bench prints that at each case's peak.
// It also writes DIR/<name>.heapprofile (allocations by function, bench/profile/alloc-summary.js).
// Both perturb the process (sampling allocates): take CPU figures from runs without it.
// --server-cpu-prof DIR: a V8 CPU profile per `ztp serve` in DIR/<ours|before>/ (read it with
// bench/profile/summary.js).
//
// Load generators: wrk (C, epoll, 2 threads; a Lua script picks random ranges) for the concurrent
// cases, curl for single streams. They share the 2 cores with the server, so the CPU they burn is
// printed too: a server's "CPU s per GiB" (utime+stime of its processes, /proc/<pid>/stat) is
// the figure that does not depend on who else was running. Peak RSS is VmHWM, reset before each
// case (/proc/<pid>/clear_refs 5), nginx master+worker summed.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, openSync, writeSync, closeSync, existsSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createServer } from 'node:net';
import { randomBytes } from 'node:crypto';
import { args, compiledSources, log, opt, root, median, medianSpread } from '../common.js';

const ROUNDS = Number(opt('rounds', 3));
const SECONDS = Number(opt('seconds', 8));
const BIG_GIB = Number(opt('big-gib', 2));
const TLS_GIB = 1;
const FULL_MIB = 64;
const MIB = 1024 ** 2;
const GIB = 1024 ** 3;
const ONLY = (opt('only', '') ?? '').split(',').filter(Boolean);
const PROFILE = opt('server-cpu-prof', null) && resolve(opt('server-cpu-prof'));
const AGAINST = opt('against', null) && resolve(opt('against'));
const MEMTRACE = opt('memory-trace', null) && resolve(opt('memory-trace'));
const NODE_ARGS = (opt('node-args', '') ?? '').split(' ').filter(Boolean);
// node options of the --against server (default: the same as --node-args)
const AGAINST_NODE_ARGS = opt('against-node-args', null) === null ? NODE_ARGS : opt('against-node-args').split(' ').filter(Boolean);
const here = import.meta.dirname;
const TICK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

const FILES = { big: BIG_GIB * GIB, mid: TLS_GIB * GIB, full: FULL_MIB * MIB };
const CASES = [
  { id: 'single', label: `single stream ${BIG_GIB} GiB (curl)`, scheme: 'http', file: 'big' },
  { id: 'ranges64', label: '64 clients × random 1 MiB ranges', scheme: 'http', file: 'big', conns: 64, range: MIB },
  { id: 'full100', label: `100 concurrent full downloads, ${FULL_MIB} MiB`, scheme: 'http', file: 'full', conns: 100 },
  { id: 'ranges256', label: '256 clients × random 1 MiB ranges', scheme: 'http', file: 'big', conns: 256, range: MIB },
  { id: 'tls-ranges64', label: 'HTTPS: 64 clients × random 1 MiB ranges', scheme: 'https', file: 'big', conns: 64, range: MIB },
  { id: 'tls-ranges256', label: 'HTTPS: 256 clients × random 1 MiB ranges', scheme: 'https', file: 'big', conns: 256, range: MIB },
  { id: 'tls-single', label: `HTTPS: single stream ${TLS_GIB} GiB (curl)`, scheme: 'https', file: 'mid' },
].filter((c) => ONLY.length === 0 || ONLY.includes(c.id));

/** A port the kernel picked (closed again: nginx and `ztp serve` take ports from their config). */
function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => res(p));
    });
  });
}

function cpuSeconds(pids) {
  let t = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      t += (Number(f[11]) + Number(f[12])) / TICK;
    } catch {
      // gone
    }
  }
  return t;
}

function kib(pid, key) {
  try {
    return Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

/** Peak RSS over one case: VmHWM reset at the start, plus sampling (for the sum over processes). */
function rssWatch(pids) {
  for (const p of pids) {
    try {
      writeFileSync(`/proc/${p}/clear_refs`, '5');
    } catch {
      // not permitted: VmHWM then covers the whole run
    }
  }
  let max = 0;
  const t = setInterval(() => (max = Math.max(max, pids.reduce((n, p) => n + kib(p, 'VmRSS'), 0))), 100);
  return () => {
    clearInterval(t);
    return Math.max(max, pids.reduce((n, p) => n + kib(p, 'VmHWM'), 0));
  };
}

/**
 * Runs a load generator under sh so its CPU (children's utime+stime, read from the shell's own
 * /proc/<pid>/stat after wait) is known. Resolves with its stdout and CPU seconds.
 */
function measured(cmd, argv, env = {}) {
  return new Promise((resolve, reject) => {
    const script = '"$@" > "$BENCH_OUT" 2>&1; rc=$?; cat /proc/$$/stat; exit $rc';
    const out = join(tmpdir(), `ztp-bench-images-${process.pid}-${randomBytes(4).toString('hex')}.out`);
    const child = spawn('sh', ['-c', script, 'sh', cmd, ...argv], { env: { ...process.env, ...env, BENCH_OUT: out }, stdio: ['ignore', 'pipe', 'inherit'] });
    let stat = '';
    child.stdout.on('data', (c) => (stat += c));
    const killer = setTimeout(() => child.kill('SIGKILL'), (SECONDS + 120) * 1000);
    child.once('exit', (code) => {
      clearTimeout(killer);
      const text = existsSync(out) ? readFileSync(out, 'utf8') : '';
      rmSync(out, { force: true });
      if (code !== 0) return reject(new Error(`${cmd} exited ${code}: ${text.slice(-1000)}`));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      resolve({ text, cpu: (Number(f[13]) + Number(f[14])) / TICK });
    });
  });
}

async function runCase(c, base, caFile, serverPids) {
  const url = `${base[c.scheme]}/images/${c.file}`;
  const pids = serverPids();
  const peak = rssWatch(pids);
  const cpu0 = cpuSeconds(pids);
  const at0 = Date.now();
  const t0 = performance.now();
  let r;
  if (!c.conns) {
    const { text, cpu } = await measured('curl', ['-sS', '-o', '/dev/null', '--cacert', caFile, '-w', '%{size_download} %{http_code}', url]);
    const seconds = (performance.now() - t0) / 1000;
    const [bytes, status] = text.trim().split(' ').map(Number);
    if (status !== 200 || bytes !== FILES[c.file]) throw new Error(`${url}: HTTP ${status}, ${bytes} bytes`);
    r = { bytes, seconds, requests: 1, p50: seconds * 1000, p99: seconds * 1000, errors: 0, genCpu: cpu };
  } else {
    const env = { BENCH_SIZE: String(FILES[c.file]), BENCH_RANGE: String(c.range ?? 0) };
    const { text, cpu } = await measured('wrk', ['-t2', `-c${c.conns}`, `-d${SECONDS}s`, '--timeout', '60s', '-s', join(here, 'wrk.lua'), url], env);
    const line = text.split('\n').find((l) => l.startsWith('WRKJSON '));
    if (!line) throw new Error(`wrk printed no summary: ${text.slice(-500)}`);
    const w = JSON.parse(line.slice(8));
    r = { bytes: w.bytes, seconds: w.us / 1e6, requests: w.requests, p50: w.p50, p99: w.p99, errors: w.errors, genCpu: cpu };
  }
  r.serverCpu = cpuSeconds(pids) - cpu0;
  r.rss = peak();
  r.t0 = at0;
  r.t1 = Date.now();
  return r;
}

const fmt = (xs, d) => (xs.length === 1 ? xs[0].toFixed(d) : medianSpread(xs, d));

/** nginx and `ztp serve` as the TLS client sees them: protocol and cipher. */
function tlsOf(port, caFile) {
  const r = spawnSync('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-CAfile', caFile, '-brief'], { input: '', encoding: 'utf8', timeout: 10_000 });
  const text = `${r.stdout}${r.stderr}`;
  return `${/Protocol version: (\S+)/.exec(text)?.[1] ?? '?'} ${/Ciphersuite: (\S+)/.exec(text)?.[1] ?? '?'}`;
}

const LABEL = { nginx: 'nginx', floor: 'Node floor', ours: '`ztp serve`', before: '`ztp serve` (before)' };

function readTrace(file) {
  try {
    return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  } catch {
    return [];
  }
}

/** Starts `ztp serve` of the build in `distDir` on `dataDir`, images on kernel-picked ports; resolves once it is up. */
async function startZtp(name, distDir, dataDir, work, cleanup) {
  const [bPort, aPort, iPort, iTlsPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const configFile = join(work, `${name}.json`);
  writeFileSync(configFile, JSON.stringify({ dataDir, publicHost: '127.0.0.1', bootstrap: { host: '127.0.0.1', port: bPort }, api: { host: '127.0.0.1', port: aPort }, images: { host: '127.0.0.1', port: iPort, tlsPort: iTlsPort } }));
  const entry = `import { main } from ${JSON.stringify(join(distDir, 'cli/main.js'))}; process.exitCode = await main(['serve']);`;
  const logFile = openSync(join(work, `${name}.log`), 'w');
  const traceFile = MEMTRACE ? join(MEMTRACE, `${name}.jsonl`) : undefined;
  const nodeArgs = [...(name === 'before' ? AGAINST_NODE_ARGS : NODE_ARGS), ...(PROFILE ? ['--cpu-prof', '--cpu-prof-dir', join(PROFILE, name)] : []), ...(traceFile ? ['--import', pathToFileURL(join(here, 'memtrace.js')).href] : [])];
  const child = spawn(process.execPath, [...nodeArgs, '--input-type=module', '-e', entry], { env: { ...process.env, ZTP_CONFIG: configFile, ...(traceFile ? { MEMTRACE_OUT: traceFile, MEMTRACE_ALLOC: traceFile.replace(/\.jsonl$/, '.heapprofile') } : {}) }, stdio: ['ignore', logFile, 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c) => (stderr = (stderr + c).slice(-20_000)));
  cleanup.push(async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  });
  await new Promise((res, rej) => {
    child.stderr.on('data', () => stderr.includes('admin token:') && res());
    child.once('exit', (code) => rej(new Error(`ztp serve (${name}) exited ${code}: ${stderr.slice(-2000)}`)));
    setTimeout(() => rej(new Error(`ztp serve (${name}) not up after 60 s: ${stderr.slice(-2000)}`)), 60_000).unref();
  });
  return { child, base: { http: `http://127.0.0.1:${iPort}`, https: `https://127.0.0.1:${iTlsPort}` }, tlsPort: iTlsPort };
}

async function main() {
  execFileSync('sh', ['-c', 'command -v nginx && command -v curl && command -v wrk && command -v openssl'], { stdio: 'ignore' });
  const dist = compiledSources('images', 'cli/main.js');
  const work = mkdtempSync(join(tmpdir(), 'ztp-bench-images-'));
  const cleanup = [];
  const load0 = loadavg();
  const t0 = Date.now();
  try {
    const dataDir = join(work, 'data');
    mkdirSync(dataDir);
    // Random content, added the way an operator does (`ztp image add`: hashed, stored once).
    const names = {};
    for (const [name, size] of Object.entries(FILES)) {
      log(`writing ${(size / MIB).toFixed(0)} MiB of random data and adding it with ztp image add`);
      const path = join(work, `${name}.bin`);
      const fd = openSync(path, 'w');
      const chunk = randomBytes(16 * MIB);
      for (let at = 0; at < size; at += chunk.length) writeSync(fd, chunk, 0, Math.min(chunk.length, size - at));
      closeSync(fd);
      const added = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', `import { main } from ${JSON.stringify(join(dist, 'cli/main.js'))}; process.exitCode = await main(process.argv.slice(1));`, '--', '--json', '--data-dir', dataDir, 'image', 'add', path, '--name', name], { encoding: 'utf8' }));
      names[name] = added.sha256 ?? added.entry?.sha256 ?? added.image?.sha256;
      rmSync(path);
      if (!names[name]) throw new Error(`ztp image add printed no sha256: ${JSON.stringify(added).slice(0, 300)}`);
    }
    const blobs = join(dataDir, 'images', 'sha256');

    // --- certificates for nginx, made here with openssl (ztp serve uses its own lab PKI)
    const crt = join(work, 'nginx-tls');
    mkdirSync(crt);
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(crt, 'key.pem'), '-out', join(crt, 'cert.pem')], { stdio: 'ignore' });

    // --- nginx: one worker (ours is one process), sendfile on, TLS 1.3 only
    const [nPort, nTlsPort] = [await freePort(), await freePort()];
    const prefix = join(work, 'nginx');
    mkdirSync(join(prefix, 'logs'), { recursive: true });
    const conf = join(prefix, 'nginx.conf');
    writeFileSync(
      conf,
      `user root;\nworker_processes 1;\ndaemon off;\npid ${prefix}/nginx.pid;\nerror_log ${prefix}/logs/error.log warn;\n` +
        `events { worker_connections 4096; }\n` +
        `http {\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  keepalive_requests 1000000;\n  default_type application/octet-stream;\n` +
        `  client_body_temp_path ${prefix}/body; proxy_temp_path ${prefix}/proxy; fastcgi_temp_path ${prefix}/fcgi; uwsgi_temp_path ${prefix}/uwsgi; scgi_temp_path ${prefix}/scgi;\n` +
        `  ssl_protocols TLSv1.3; ssl_certificate ${crt}/cert.pem; ssl_certificate_key ${crt}/key.pem;\n` +
        `  server { listen 127.0.0.1:${nPort}; listen 127.0.0.1:${nTlsPort} ssl;\n` +
        Object.entries(names).map(([n, sha]) => `    location = /images/${n} { alias ${blobs}/${sha}; }\n`).join('') +
        `  }\n}\n`,
    );
    const nginx = spawn('nginx', ['-p', prefix, '-c', conf], { stdio: 'ignore' });
    cleanup.push(() => nginx.kill('SIGQUIT'));
    await new Promise((r) => setTimeout(r, 500));
    if (nginx.exitCode !== null) throw new Error(`nginx exited: ${readFileSync(join(prefix, 'logs/error.log'), 'utf8').slice(-1000)}`);
    const nginxPids = () => {
      try {
        return [nginx.pid, ...execFileSync('pgrep', ['-P', String(nginx.pid)]).toString().trim().split('\n').map(Number)].filter(Boolean);
      } catch {
        return [nginx.pid];
      }
    };

    // --- Node's floor (bench/images/node-floor.js): node:http(s) + fs.createReadStream, nothing else
    const [fPort, fTlsPort] = [await freePort(), await freePort()];
    const floor = spawn(process.execPath, [join(here, 'node-floor.js'), String(fPort), String(fTlsPort), join(crt, 'cert.pem'), join(crt, 'key.pem'), ...Object.entries(names).map(([n, sha]) => `${n}=${blobs}/${sha}`)], { stdio: ['ignore', 'pipe', 'inherit'] });
    cleanup.push(() => floor.kill('SIGTERM'));
    await new Promise((res, rej) => {
      floor.stdout.once('data', res);
      floor.once('exit', (code) => rej(new Error(`node-floor exited ${code}`)));
    });

    // --- ztp serve with every default service; images on kernel-picked ports. With --against, a
    // second `ztp serve` from another build gets a copy of the data directory whose blobs are hard
    // links (same inodes, so the same page cache) and its own SQLite file and PKI.
    const ztps = { ours: { dist, dataDir } };
    if (AGAINST) {
      const dataBefore = join(work, 'data-before');
      mkdirSync(dataBefore);
      execFileSync('sh', ['-c', 'cd "$1" && tar --exclude=./images/sha256 -cf - . | (cd "$2" && tar xf -) && cp -al "$1/images/sha256" "$2/images/sha256"', 'sh', dataDir, dataBefore]);
      ztps.before = { dist: AGAINST, dataDir: dataBefore };
    }
    if (MEMTRACE) mkdirSync(MEMTRACE, { recursive: true });
    for (const [name, z] of Object.entries(ztps)) Object.assign(z, await startZtp(name, z.dist, z.dataDir, work, cleanup));
    const caFile = join(work, 'ca.pem');
    writeFileSync(caFile, [readFileSync(join(crt, 'cert.pem'), 'utf8'), ...Object.values(ztps).map((z) => readFileSync(join(z.dataDir, 'pki', 'root-ca.crt'), 'utf8'))].join(''));

    const servers = {
      nginx: { base: { http: `http://127.0.0.1:${nPort}`, https: `https://127.0.0.1:${nTlsPort}` }, pids: nginxPids, tls: tlsOf(nTlsPort, caFile) },
    };
    servers.floor = { base: { http: `http://127.0.0.1:${fPort}`, https: `https://127.0.0.1:${fTlsPort}` }, pids: () => [floor.pid], tls: tlsOf(fTlsPort, caFile) };
    for (const [name, z] of Object.entries(ztps)) servers[name] = { base: z.base, pids: () => [z.child.pid], tls: tlsOf(z.tlsPort, caFile) };
    const names_ = Object.keys(servers);
    // Warm-up: page cache, and our first-serve digest verification of each blob (issue 11).
    for (const [name, s] of Object.entries(servers)) {
      log(`${name}: warm-up (whole files once)`);
      for (const f of Object.keys(FILES)) execFileSync('curl', ['-sS', '-o', '/dev/null', '--cacert', caFile, `${s.base.https}/images/${f}`, '-o', '/dev/null', `${s.base.http}/images/${f}`]);
    }
    const idle0 = Object.fromEntries(names_.map((n) => [n, cpuSeconds(servers[n].pids())]));
    const idleRss = Object.fromEntries(names_.map((n) => [n, servers[n].pids().reduce((sum, pid) => sum + kib(pid, 'VmRSS'), 0)]));
    const idleAt = Date.now();

    /** results[caseId][server] = [run, …] */
    const results = {};
    for (let round = 0; round < ROUNDS; round++) {
      // every server goes first once in a while: the order rotates each round
      const order = names_.map((_, i) => names_[(i + round) % names_.length]);
      for (const c of CASES) {
        for (const name of order) {
          log(`round ${round + 1}/${ROUNDS} ${c.id} ${name}`);
          const r = await runCase(c, servers[name].base, caFile, servers[name].pids);
          ((results[c.id] ??= {})[name] ??= []).push(r);
          await new Promise((res) => setTimeout(res, 300));
        }
      }
    }
    const load1 = loadavg();

    const lines = [];
    const p = (s = '') => lines.push(s);
    p(`image server: \`ztp serve\` vs nginx and Node's floor ${execFileSync('nginx', ['-v'], { stdio: ['ignore', 'pipe', 'pipe'] }).toString().trim() || ''}`.trim());
    p(`${new Date().toISOString().slice(0, 10)}, ${cpus().length} × ${cpus()[0]?.model.trim()}, Linux ${release()}, node ${process.version}; ${ROUNDS} rounds alternating which server goes first, ${SECONDS} s per concurrent case; loopback`);
    p(`load generators (wrk -t2, curl) and servers share the ${cpus().length} cores; other engineers were using the machine: load average ${load0.map((x) => x.toFixed(1)).join(' ')} before, ${load1.map((x) => x.toFixed(1)).join(' ')} after (${((Date.now() - t0) / 1000) | 0} s)`);
    if (NODE_ARGS.length) p(`ztp serve ran with node ${NODE_ARGS.join(' ')}`);
    if (AGAINST && AGAINST_NODE_ARGS !== NODE_ARGS) p(`ztp serve (before) ran with node ${AGAINST_NODE_ARGS.join(' ') || '(no options)'}`);
    if (AGAINST) p(`\`ztp serve\` (before) is the build in ${AGAINST}, run in the same rounds (its own data directory, the same blob inodes)`);
    p(`RSS after start and warm-up, before the cases: ${names_.map((n) => `${LABEL[n]} ${(idleRss[n] / MIB).toFixed(0)} MiB`).join(', ')} (ztp serve: every service, not only images)`);
    p(`TLS as negotiated: ${names_.map((n) => `${LABEL[n]} ${servers[n].tls}`).join('; ')}`);
    p();
    p('| case | server | MiB/s | req/s | p99 ms | server CPU s/GiB | load-gen CPU s/GiB | peak RSS MiB | / nginx (MiB/s, per round) | / Node floor (CPU s/GiB, per round) |');
    p('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|');
    const summary = {};
    const perRound = (rs, a, b, f) => rs[a].map((x, i) => f(x) / f(rs[b][i]));
    const cpuPerGiB = (r) => r.serverCpu / (r.bytes / GIB);
    const rate = (r) => r.bytes / r.seconds;
    for (const c of CASES) {
      const rs = results[c.id];
      const ratios = perRound(rs, 'ours', 'nginx', rate);
      const overFloor = perRound(rs, 'ours', 'floor', cpuPerGiB);
      summary[c.id] = { median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios), cpuOverFloor: median(overFloor) };
      for (const name of names_) {
        const runs = rs[name];
        const errors = runs.reduce((n, r) => n + r.errors, 0);
        p(
          `| ${c.label} | ${LABEL[name]} | ${fmt(runs.map((r) => r.bytes / r.seconds / MIB), 0)} | ${fmt(runs.map((r) => r.requests / r.seconds), 1)} | ${fmt(runs.map((r) => r.p99), 0)} | ` +
            `${fmt(runs.map(cpuPerGiB), 2)} | ${fmt(runs.map((r) => r.genCpu / (r.bytes / GIB)), 2)} | ${fmt(runs.map((r) => r.rss / MIB), 0)} | ` +
            `${name !== 'nginx' ? fmt(perRound(rs, name, 'nginx', rate), 2) : ''}${errors ? ` (${errors} errors)` : ''} | ${name !== 'nginx' && name !== 'floor' ? fmt(perRound(rs, name, 'floor', cpuPerGiB), 2) : ''} |`,
        );
      }
    }
    if (AGAINST) {
      p();
      p('this build / --against build, per round (CPU per GiB; peak RSS):');
      for (const c of CASES) {
        const rs = results[c.id];
        p(`- ${c.label}: CPU s/GiB ${fmt(perRound(rs, 'ours', 'before', cpuPerGiB), 2)}; peak RSS ${fmt(perRound(rs, 'ours', 'before', (r) => r.rss), 2)}`);
      }
    }
    if (MEMTRACE) {
      p();
      p(`where RSS is at each case's peak sample (--memory-trace, every 250 ms; MiB, median over rounds): brk = main malloc arena, arenas = glibc thread arenas (count), v8 = V8 heap pages, mmap = malloc'd blocks ≥ 128 KiB, anon = other anonymous`);
      p('| case | server | RSS | brk | arenas (n) | v8 pages | mmap | anon | files+stacks | V8 new / old / large committed | external / arrayBuffers |');
      p('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
      const traces = Object.fromEntries(Object.keys(ztps).map((n) => [n, readTrace(join(MEMTRACE, `${n}.jsonl`))]));
      const row = (label, name, samples) => {
        const m = (f) => (median(samples.map(f)) / MIB).toFixed(0);
        p(
          `| ${label} | ${LABEL[name]} | ${m((x) => x.rss)} | ${m((x) => x.smaps.brk)} | ${m((x) => x.smaps.arenas)} (${median(samples.map((x) => x.smaps.arenaCount))}) | ${m((x) => x.smaps.v8Pages)} | ${m((x) => x.smaps.mallocMmap)} | ${m((x) => x.smaps.anonOther)} | ` +
            `${m((x) => x.smaps.file + x.smaps.stack)} | ${m((x) => x.spaces.new ?? 0)} / ${m((x) => x.spaces.old ?? 0)} / ${m((x) => x.spaces.large_object ?? 0)} | ${m((x) => x.external)} / ${m((x) => x.arrayBuffers)} |`,
        );
      };
      for (const name of Object.keys(ztps)) {
        const before = traces[name].filter((x) => x.t <= idleAt);
        if (before.length) row('after start and warm-up', name, [before[before.length - 1]]);
      }
      for (const c of CASES) {
        for (const name of Object.keys(ztps)) {
          const peaks = results[c.id][name].map((r) => traces[name].filter((x) => x.t >= r.t0 && x.t <= r.t1).reduce((a, b) => (a && a.rss >= b.rss ? a : b), undefined)).filter(Boolean);
          if (peaks.length) row(c.label, name, peaks);
        }
      }
    }
    p();
    p(`idle-to-end CPU: ${names_.map((n) => `${LABEL[n]} ${(cpuSeconds(servers[n].pids()) - idle0[n]).toFixed(1)} s`).join(', ')}; ztp serve log: ${readFileSync(join(work, 'ours.log'), 'utf8').split('\n').length - 1} lines`);
    console.log(lines.join('\n'));
    const out = join(root, 'bench/out');
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'images.json'), JSON.stringify({ at: new Date().toISOString(), rounds: ROUNDS, seconds: SECONDS, load: { before: load0, after: load1 }, summary, results }, null, 2));
    writeFileSync(join(out, 'images.md'), lines.join('\n') + '\n');
  } finally {
    for (const f of cleanup.reverse()) {
      try {
        await f();
      } catch {
        // already gone
      }
    }
    await new Promise((r) => setTimeout(r, 300));
    if (!args.includes('--keep')) rmSync(work, { recursive: true, force: true });
  }
}

await main();
