// Shared pieces of the DHCP benchmarks: a server and a client network namespace joined by a
// veth pair (created here, removed on every exit path; real interfaces are never touched),
// processes started inside them, and per-process CPU / RSS from /proc.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const REPO = resolve(import.meta.dirname, '../..');
export const BIN = join(REPO, 'bin', 'ztp.js');
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sh = (...a) => execFileSync(a[0], a.slice(1), { stdio: 'pipe', encoding: 'utf8' });
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** Why the bench cannot run here, or ''. */
export function skipReason(tools) {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces)';
  for (const t of ['ip', ...tools]) if (spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0) return `${t} is not installed`;
  if (!existsSync(join(REPO, 'dist', 'cli', 'main.js'))) return 'dist/ missing: run `npm run build` first (npm run bench does)';
  return '';
}

export class Lab {
  constructor(tag) {
    const id = `${tag}${(process.pid % 10000).toString(36)}`;
    this.S = `${id}s`;
    this.C = `${id}c`;
    this.dir = mkdtempSync(join(tmpdir(), `ztp-${tag}-bench-`));
    this.started = [];
    this.serverIf = 'vs0';
    this.clientIf = 'vc0';
    process.on('exit', () => this.cleanup());
    process.on('SIGINT', () => process.exit(130));
    process.on('SIGTERM', () => process.exit(143));
  }

  /** 10.77.0.1/16 server side, 10.77.255.254/16 client side (perfdhcp needs an address), v6 link-local. */
  up() {
    sh('ip', 'netns', 'add', this.S);
    sh('ip', 'netns', 'add', this.C);
    for (const ns of [this.S, this.C]) this.run(ns, 'sysctl', '-q', '-w', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0');
    sh('ip', 'link', 'add', this.serverIf, 'netns', this.S, 'type', 'veth', 'peer', 'name', this.clientIf, 'netns', this.C);
    this.run(this.S, 'ip', 'addr', 'add', '10.77.0.1/16', 'dev', this.serverIf);
    this.run(this.C, 'ip', 'addr', 'add', '10.77.255.254/16', 'dev', this.clientIf);
    for (const [ns, dev] of [[this.S, this.serverIf], [this.C, this.clientIf], [this.S, 'lo'], [this.C, 'lo']]) this.run(ns, 'ip', 'link', 'set', dev, 'up');
  }

  run(ns, ...a) {
    return sh('ip', 'netns', 'exec', ns, ...a);
  }

  /** `ip netns exec` execs the command in place: the child's pid is the server's pid. */
  spawn(ns, args, env = process.env) {
    const p = spawn('ip', ['netns', 'exec', ns, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    this.started.push(p);
    p.out = '';
    p.stdout.on('data', (d) => (p.out = (p.out + d).slice(-200_000)));
    p.stderr.on('data', (d) => (p.out = (p.out + d).slice(-200_000)));
    return p;
  }

  /** Is UDP port `port` bound in the server namespace (/proc/net/udp is per namespace)? */
  udpBound(port, v6 = false) {
    const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
    try {
      return this.run(this.S, 'cat', v6 ? '/proc/net/udp6' : '/proc/net/udp').split('\n').some((l) => l.trim().split(/\s+/)[1]?.endsWith(hex));
    } catch {
      return false;
    }
  }

  async waitFor(p, test, what, ms = 60_000) {
    const end = Date.now() + ms;
    while (!test()) {
      if (p.exitCode !== null) throw new Error(`${what}: process exited (${p.exitCode}): ${p.out.slice(-3000)}`);
      if (Date.now() > end) throw new Error(`${what}: not ready after ${ms} ms: ${p.out.slice(-3000)}`);
      await sleep(50);
    }
  }

  async stop(p) {
    if (p.exitCode !== null || p.signalCode !== null) return;
    p.kill('SIGTERM');
    const end = Date.now() + 8000;
    while (p.exitCode === null && p.signalCode === null && Date.now() < end) await sleep(50);
    if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    while (p.exitCode === null && p.signalCode === null) await sleep(20);
  }

  cleanup() {
    for (const p of this.started) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    for (const ns of [this.S, this.C]) {
      try {
        for (const pid of sh('ip', 'netns', 'pids', ns).split(/\s+/).filter(Boolean)) process.kill(Number(pid), 'SIGKILL');
      } catch { /* gone */ }
      try { sh('ip', 'netns', 'del', ns); } catch { /* gone */ }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** utime + stime of a process (all threads) in ms. */
export function cpuMs(pid) {
  const t = cpuTimes(pid);
  return t.user + t.sys;
}

/** utime and stime of a process (all threads) in ms. */
export function cpuTimes(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: (Number(f[11]) * 1000) / CLK_TCK, sys: (Number(f[12]) * 1000) / CLK_TCK };
}

/** Peak resident set (VmHWM) in MB. */
export function peakRssMb(pid) {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** A `ztp serve` config for the lab: every service on (TFTP too), SQLite in dataDir, default log level. */
export function writeServeConfig(lab, name, dhcp, extra = {}) {
  const file = join(lab.dir, `${name}.json`);
  const dataDir = join(lab.dir, `${name}-data`);
  writeFileSync(file, JSON.stringify({ dataDir, publicHost: '10.77.0.1', tftp: { enabled: true }, dhcp: { interface: lab.serverIf, ...dhcp }, ...extra }));
  return { file, dataDir };
}

/** Starts `node bin/ztp.js serve` in the server namespace; resolves once every service started and DHCP is bound. */
export async function startServe(lab, configFile, env = process.env, nodeArgs = []) {
  const p = lab.spawn(lab.S, [process.execPath, ...nodeArgs, BIN, '--config-file', configFile, 'serve'], env);
  await lab.waitFor(p, () => p.out.includes('admin token:') && lab.udpBound(67), 'ztp serve');
  p.adminToken = /admin token: (\S+)/.exec(p.out)?.[1];
  return p;
}

export function median(xs) {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function spread(xs) {
  const s = xs.filter((x) => Number.isFinite(x));
  return s.length ? [Math.min(...s), Math.max(...s)] : [NaN, NaN];
}
