// Network-namespace lab for the DHCP peer tests and the benchmark.
//
// Choice: every participant runs inside namespaces this helper creates (never the root
// namespace): the server under test is a child `node` process started with `ip netns exec`,
// compiled once per test file from src/dhcp/standalone.ts with tsc into node_modules/.cache
// (inside the checkout so node resolves pino/better-sqlite3; independent of other modules'
// mid-edit state). Clients (dhclient, udhcpc, perfdhcp) and peers (dnsmasq, kea) are
// child processes too. Names are unique per run; cleanup kills only the PIDs started here
// plus whatever still runs inside our own namespaces, then deletes the namespaces.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { isRoot, missingTool } from '../helpers/shared.js';

export const REPO = resolve(import.meta.dirname, '../..');

/** Why namespace tests must skip, or ''. Prints the reason once. */
export function labSkipReason(...tools: string[]): string {
  if (!isRoot) {
    const r = 'not root: network namespace tests skipped';
    console.warn(r);
    return r;
  }
  for (const t of ['ip', ...tools]) {
    const r = missingTool(t);
    if (r) return r;
  }
  return '';
}

let built: string | undefined;

/** Compiles the standalone DHCP runner; returns the path of standalone.js. */
export function buildStandalone(): string {
  if (built && existsSync(built)) return built;
  const out = join(REPO, 'node_modules', '.cache', 'dpu-ztp-dhcp', `${process.pid}-${Date.now()}`);
  try {
    execFileSync(join(REPO, 'node_modules', '.bin', 'tsc'), ['-p', join(REPO, 'test/dhcp/tsconfig.standalone.json'), '--outDir', out], { stdio: 'pipe' });
  } catch (err) {
    // tsc exits non-zero on type errors elsewhere but still emits; only a missing output is fatal.
    if (!existsSync(join(out, 'dhcp', 'standalone.js'))) throw err;
  }
  built = join(out, 'dhcp', 'standalone.js');
  return built;
}

let seq = 0;

export interface Proc {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

export class Lab {
  readonly id = `${(process.pid % 10000).toString(36)}${(seq++).toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
  readonly namespaces: string[] = [];
  readonly procs: Proc[] = [];
  readonly dir = mkdtempSync(join(tmpdir(), 'ztp-dhcp-'));

  ns(role: string): string {
    const name = `zd${this.id}${role}`;
    execFileSync('ip', ['netns', 'add', name]);
    this.namespaces.push(name);
    this.run(name, 'ip', ['link', 'set', 'lo', 'up']);
    // No IPv6 duplicate address detection: link-local addresses are usable at once (DHCPv6 tests).
    this.run(name, 'sysctl', ['-q', '-w', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0']);
    return name;
  }

  /** A veth pair between two namespaces; addresses like '10.9.0.1/24' or '' for none. */
  link(nsA: string, addrA: string, nsB: string, addrB: string, tag = ''): { a: string; b: string } {
    const a = `va${this.id}${tag}`.slice(0, 15);
    const b = `vb${this.id}${tag}`.slice(0, 15);
    execFileSync('ip', ['link', 'add', a, 'netns', nsA, 'type', 'veth', 'peer', 'name', b, 'netns', nsB]);
    for (const [ns, dev, addr] of [[nsA, a, addrA], [nsB, b, addrB]] as const) {
      if (addr) this.run(ns, 'ip', ['addr', 'add', addr, 'dev', dev]);
      this.run(ns, 'ip', ['link', 'set', dev, 'up']);
    }
    return { a, b };
  }

  run(ns: string, cmd: string, args: string[], timeoutMs = 30_000): string {
    return execFileSync('ip', ['netns', 'exec', ns, cmd, ...args], { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /** Runs to completion whatever the exit status (perfdhcp exits 3 when it saw drops). */
  runStatus(ns: string, cmd: string, args: string[], timeoutMs = 60_000): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync('ip', ['netns', 'exec', ns, cmd, ...args], { encoding: 'utf8', timeout: timeoutMs });
    return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  }

  spawn(ns: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Proc {
    const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    const proc = { child, stdout: () => out, stderr: () => err, exited };
    this.procs.push(proc);
    return proc;
  }

  /** Waits until `test()` holds, polling. */
  async until(test: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!test()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Starts the compiled DHCP standalone server in `ns` with a config file; resolves when ready. */
  async startServer(ns: string, configFile: string, publicHost = 'ztp.lab.example'): Promise<Proc> {
    const script = buildStandalone();
    const proc = this.spawn(ns, process.execPath, [script, '--config', configFile, '--public-host', publicHost]);
    await Promise.race([
      this.until(() => proc.stdout().includes('"ready":true'), 20_000, 'DHCP server ready'),
      proc.exited.then((code) => {
        throw new Error(`DHCP server exited (${code}): ${proc.stderr()}`);
      }),
    ]);
    return proc;
  }

  async stop(proc: Proc, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) return;
    proc.child.kill(signal);
    const t = setTimeout(() => proc.child.kill('SIGKILL'), 5000);
    await proc.exited;
    clearTimeout(t);
  }

  async cleanup(): Promise<void> {
    for (const p of this.procs) {
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
    }
    await Promise.all(this.procs.map((p) => Promise.race([p.exited, new Promise((r) => setTimeout(r, 3000))])));
    for (const ns of this.namespaces) {
      // Daemons that detached from our child (dhclient -nw, dnsmasq) still run inside our namespace.
      try {
        const pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).split(/\s+/).filter(Boolean);
        for (const pid of pids) {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            /* already gone */
          }
        }
      } catch {
        /* namespace gone */
      }
      try {
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      } catch {
        /* already deleted */
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
