#!/usr/bin/env node
// Image server benchmark against nginx (Debian package), same files, same loopback, same client,
// in one run. Standalone: `node bench/images/run.js` (compiles src/ into bench/out/images-dist
// first; pass --no-build to reuse it). Options: --big-gib N (default 2), --full-mib N (default 64),
// --seconds N (default 10).
//
// Figures: single-stream throughput of the big file (curl -o /dev/null), 64 concurrent clients
// reading random 1 MiB ranges of it (BMC-like), 100 concurrent whole downloads of a smaller file;
// throughput, requests/s, p99 latency, and peak RSS (VmHWM) of each server process.
import { execFileSync, fork, spawn, execFile } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createServer } from 'node:net';
import { promisify } from 'node:util';

const run = promisify(execFile);
const here = import.meta.dirname;
const root = resolve(here, '../..');
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const BIG_GIB = opt('big-gib', 2);
const FULL_MIB = opt('full-mib', 64);
const SECONDS = opt('seconds', 10);
const BIG = BIG_GIB * 1024 ** 3;

function log(...m) {
  console.error('[bench]', ...m);
}

async function freePort() {
  return new Promise((res) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => res(p));
    });
  });
}

function procStatus(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? 0);
    return { rss: kb('VmRSS') * 1024, hwm: kb('VmHWM') * 1024 };
  } catch {
    return { rss: 0, hwm: 0 };
  }
}

/** Samples RSS of pids every 100 ms; returns max observed and VmHWM at the end. */
function rssMonitor(pids) {
  let max = 0;
  const t = setInterval(() => {
    const total = pids().reduce((n, p) => n + procStatus(p).rss, 0);
    max = Math.max(max, total);
  }, 100);
  return { stop: () => (clearInterval(t), { maxSampled: max, hwm: pids().reduce((n, p) => n + procStatus(p).hwm, 0) }) };
}

async function load(argv) {
  const { stdout } = await run(process.execPath, [join(here, 'load.js'), ...argv.map(String)], { maxBuffer: 1 << 20 });
  return JSON.parse(stdout.trim().split('\n').pop());
}

async function singleStream(url) {
  const t = performance.now();
  const { stdout } = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{size_download} %{http_code}', url]);
  const seconds = (performance.now() - t) / 1000;
  const [bytes, code] = stdout.trim().split(' ').map(Number);
  if (code !== 200 || bytes !== BIG) throw new Error(`single stream: ${code} ${bytes}`);
  return { bytes, seconds, requests: 1, p99: seconds * 1000, errors: 0 };
}

async function suite(name, base, pids) {
  log(`${name}: warm-up`);
  await singleStream(`${base}/images/big.bin`); // page cache warm for both servers
  const mon = rssMonitor(pids);
  log(`${name}: single stream ${BIG_GIB} GiB`);
  const single = await singleStream(`${base}/images/big.bin`);
  log(`${name}: 64 clients × random 1 MiB ranges for ${SECONDS}s`);
  const ranges = await load(['ranges', `${base}/images/big.bin`, BIG, 64, SECONDS, 1024 * 1024]);
  log(`${name}: 100 concurrent full downloads of ${FULL_MIB} MiB`);
  const full = await load(['full', `${base}/images/full.bin`, 100, 1]);
  const rss = mon.stop();
  return { single, ranges, full, rss };
}

const mib = (b) => b / 1024 ** 2;
function row(label, r) {
  return { label, 'MiB/s': (mib(r.bytes) / r.seconds).toFixed(0), 'req/s': (r.requests / r.seconds).toFixed(1), 'p99 ms': r.p99.toFixed(1), errors: r.errors };
}

async function main() {
  execFileSync('sh', ['-c', 'command -v nginx && command -v curl'], { stdio: 'ignore' });
  const work = mkdtempSync(join(tmpdir(), 'ztp-bench-images-'));
  const cleanup = [];
  try {
    if (!args.includes('--no-build')) {
      log('compiling src/ into bench/out/images-dist');
      try {
        execFileSync(join(root, 'node_modules/.bin/tsc'), ['-p', join(root, 'tsconfig.build.json'), '--outDir', join(root, 'bench/out/images-dist'), '--tsBuildInfoFile', join(root, 'bench/out/images-dist/.tsbuildinfo'), '--declaration', 'false', '--sourceMap', 'false'], { stdio: 'pipe' });
      } catch (err) {
        // type errors elsewhere in the tree still emit JavaScript; only a missing output is fatal
        if (!existsSync(join(root, 'bench/out/images-dist/images/app.js'))) throw err;
        log('tsc reported errors outside the image server; continuing with the emitted JavaScript');
      }
    }
    const files = join(work, 'files');
    mkdirSync(files, { recursive: true });
    log(`writing ${BIG_GIB} GiB + ${FULL_MIB} MiB of random data`);
    execFileSync('sh', ['-c', `head -c ${BIG} /dev/urandom > ${files}/big.bin && head -c ${FULL_MIB * 1024 * 1024} /dev/urandom > ${files}/full.bin`]);

    // --- nginx: loopback, temp prefix, own pid/log files, one worker (like our one Node process)
    const nginxPort = await freePort();
    const prefix = join(work, 'nginx');
    mkdirSync(join(prefix, 'logs'), { recursive: true });
    const conf = join(prefix, 'nginx.conf');
    writeFileSync(
      conf,
      `user root;\nworker_processes 1;\ndaemon off;\npid ${prefix}/nginx.pid;\nerror_log ${prefix}/logs/error.log warn;\n` +
        `events { worker_connections 4096; }\n` +
        `http {\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  keepalive_requests 1000000;\n  default_type application/octet-stream;\n` +
        `  client_body_temp_path ${prefix}/body; proxy_temp_path ${prefix}/proxy; fastcgi_temp_path ${prefix}/fcgi; uwsgi_temp_path ${prefix}/uwsgi; scgi_temp_path ${prefix}/scgi;\n` +
        `  server { listen 127.0.0.1:${nginxPort}; location /images/ { alias ${files}/; } }\n}\n`,
    );
    const nginx = spawn('nginx', ['-p', prefix, '-c', conf], { stdio: 'ignore' });
    cleanup.push(() => nginx.kill('SIGQUIT'));
    await new Promise((r) => setTimeout(r, 500));
    const nginxPids = () => {
      try {
        return [nginx.pid, ...execFileSync('pgrep', ['-P', String(nginx.pid)]).toString().trim().split('\n').map(Number)].filter(Boolean);
      } catch {
        return [nginx.pid];
      }
    };

    // --- ours: a separate Node process
    const ourPort = await freePort();
    const ours = fork(join(here, 'server.js'), [String(ourPort), files, join(work, 'data')], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    cleanup.push(() => ours.kill('SIGTERM'));
    await new Promise((res, rej) => {
      ours.once('message', res);
      ours.once('exit', (c) => rej(new Error(`our server exited ${c}`)));
    });

    const n = await suite('nginx', `http://127.0.0.1:${nginxPort}`, nginxPids);
    const o = await suite('dpu-ztp', `http://127.0.0.1:${ourPort}`, () => [ours.pid]);

    const table = [];
    for (const [k, label] of [['single', `single stream ${BIG_GIB} GiB`], ['ranges', '64 clients random 1 MiB ranges'], ['full', `100 concurrent full ${FULL_MIB} MiB`]]) {
      table.push(row(`nginx    ${label}`, n[k]), row(`dpu-ztp  ${label}`, o[k]));
      table.push({ label: `  ratio dpu-ztp/nginx`, 'MiB/s': ((o[k].bytes / o[k].seconds) / (n[k].bytes / n[k].seconds)).toFixed(2), 'req/s': '', 'p99 ms': '', errors: '' });
    }
    console.table(table);
    console.log(`peak RSS: dpu-ztp ${mib(o.rss.hwm).toFixed(1)} MiB (VmHWM; max sampled ${mib(o.rss.maxSampled).toFixed(1)} MiB), nginx master+worker ${mib(n.rss.hwm).toFixed(1)} MiB`);
    console.log(`node ${process.version}, nginx worker_processes 1, ${execFileSync('nproc').toString().trim()} CPUs, loopback HTTP/1.1, random data in page cache`);
    const out = join(root, 'bench/out');
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'images.json'), JSON.stringify({ at: new Date().toISOString(), bigGiB: BIG_GIB, fullMiB: FULL_MIB, seconds: SECONDS, nginx: n, ours: o }, null, 2));
  } finally {
    for (const f of cleanup.reverse()) {
      try {
        f();
      } catch {
        // already gone
      }
    }
    await new Promise((r) => setTimeout(r, 300));
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
