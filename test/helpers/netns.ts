// Network namespaces and child processes that a test owns: names unique per run, everything
// started here stopped here (on failure paths too): our PIDs first, then whatever still runs
// inside our namespaces (daemons that detached: dhclient -nw, dnsmasq, qemu), then the
// namespaces themselves and the scratch directory. Never touches the root namespace's links.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Proc {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

let seq = 0;

export class NamespaceLab {
  readonly id = `${(process.pid % 10000).toString(36)}${(seq++).toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
  readonly dir: string;
  protected readonly namespaces: string[] = [];
  protected readonly procs: Proc[] = [];

  constructor(scratchPrefix: string) {
    this.dir = mkdtempSync(join(tmpdir(), scratchPrefix));
  }

  /** Creates namespace `name` with loopback up. */
  protected addNamespace(name: string): string {
    execFileSync('ip', ['netns', 'add', name]);
    this.namespaces.push(name);
    this.run(name, 'ip', ['link', 'set', 'lo', 'up']);
    return name;
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

  async stop(proc: Proc, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) return;
    proc.child.kill(signal);
    const t = setTimeout(() => proc.child.kill('SIGKILL'), 5000);
    await proc.exited;
    clearTimeout(t);
  }

  async cleanup(): Promise<void> {
    const alive = (p: Proc): boolean => p.child.exitCode === null && p.child.signalCode === null;
    for (const p of this.procs) if (alive(p)) p.child.kill('SIGTERM');
    await Promise.all(this.procs.map((p) => Promise.race([p.exited, new Promise((r) => setTimeout(r, 5000))])));
    for (const p of this.procs) if (alive(p)) p.child.kill('SIGKILL');
    for (const ns of this.namespaces) {
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
