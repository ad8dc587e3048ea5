// The `ztp` command as users run it: `npm run build`, then `node bin/ztp.js …` as a child
// process (what test/firmware does, without the network namespaces). For tests that need a real
// process boundary: `kill -9` of the server, signals to `ztp simulate`.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from './ports.js';

export const REPO = resolve(import.meta.dirname, '../..');
export const BIN = join(REPO, 'bin', 'ztp.js');

const STAMP = join(REPO, 'dist', '.build-stamp');
const LOCK = join(tmpdir(), `ztp-build-${createHash('sha256').update(REPO).digest('hex').slice(0, 12)}.lock`);

/** Newest modification time of what the build reads (src/, the build config, package.json). */
function newestInput(): number {
  let newest = Math.max(statSync(join(REPO, 'tsconfig.build.json')).mtimeMs, statSync(join(REPO, 'package.json')).mtimeMs);
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, e.name);
      if (e.isDirectory()) walk(path);
      else newest = Math.max(newest, statSync(path).mtimeMs);
    }
  };
  walk(join(REPO, 'src'));
  return newest;
}

const fresh = () => existsSync(STAMP) && existsSync(join(REPO, 'dist', 'cli', 'main.js')) && statSync(STAMP).mtimeMs >= newestInput();
const pause = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/**
 * `npm run build` (tsc -p tsconfig.build.json → dist/) unless dist/ is newer than every source.
 * Test files run in parallel workers: a lock (a directory in the temp dir) keeps two builds from
 * rewriting dist/ at once, or one from rewriting it under a process another test is starting.
 */
export function buildCli(): void {
  const deadline = Date.now() + 240_000;
  for (;;) {
    if (fresh()) return;
    try {
      mkdirSync(LOCK);
      break;
    } catch {
      // another worker is building; a lock left by a killed run is taken over after 5 minutes
      try {
        if (Date.now() - statSync(LOCK).mtimeMs > 300_000) rmSync(LOCK, { recursive: true, force: true });
      } catch {
        // gone meanwhile
      }
      if (Date.now() > deadline) throw new Error(`waited 240 s for another build (${LOCK})`);
      pause(250);
    }
  }
  try {
    if (fresh()) return;
    const started = Date.now();
    try {
      execFileSync('npm', ['run', '--silent', 'build'], { cwd: REPO, stdio: 'pipe', timeout: 240_000 });
    } catch (err) {
      // type errors elsewhere still emit; only a missing CLI is fatal
      if (!existsSync(join(REPO, 'dist', 'cli', 'main.js'))) throw err;
    }
    writeFileSync(STAMP, '');
    utimesSync(STAMP, new Date(started), new Date(started));
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}

export interface ZtpProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** resolves with the exit code (or the signal name) */
  exited: Promise<number | string>;
  /** the last `n` characters of both streams, for failure messages */
  tail(n?: number): string;
  /** waits until `pattern` shows in stdout+stderr (or the process exits, or the time is up) */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit */
  stop(graceMs?: number): Promise<number | string>;
}

const LIMIT = 4 * 1024 * 1024;

/** Starts `node bin/ztp.js ...args`. */
export function startZtp(args: string[], env: NodeJS.ProcessEnv = {}): ZtpProcess {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (out = (out + c).slice(-LIMIT)));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (err = (err + c).slice(-LIMIT)));
  const exited = new Promise<number | string>((r) => child.once('exit', (code, signal) => r(code ?? signal ?? 'unknown')));
  let exitedNow = false;
  void exited.then(() => (exitedNow = true));
  const proc: ZtpProcess = {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    tail: (n = 4000) => `--- stdout ---\n${out.slice(-n)}\n--- stderr ---\n${err.slice(-n)}`,
    async waitFor(pattern, timeoutMs = 60_000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const m = (out + '\n' + err).match(pattern);
        if (m) return m;
        if (exitedNow) throw new Error(`ztp ${args.join(' ')} exited before ${pattern}:\n${proc.tail()}`);
        if (Date.now() > end) throw new Error(`ztp ${args.join(' ')}: no ${pattern} within ${timeoutMs} ms:\n${proc.tail()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop(graceMs = 10_000) {
      if (exitedNow) return exited;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
  return proc;
}

/** `ztp serve` on a config file; resolves once every service has started (it prints the admin token). */
export async function startServe(configFile: string, config: Record<string, unknown>): Promise<ZtpProcess> {
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const proc = startZtp(['--config-file', configFile, 'serve']);
  await proc.waitFor(/admin token: /);
  return proc;
}

/**
 * A `ztp serve` configuration on loopback ports picked now (the process binds them itself, so
 * they are in the file), with a fixed admin token: the preamble of the process-level tests.
 */
export async function loopbackServeConfig(dataDir: string, token: string, logLevel: string): Promise<{ config: Record<string, unknown>; apiBase: string; ports: { bootstrap: number; api: number; images: number; imagesTls: number } }> {
  const [bootstrap, api, images, imagesTls] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  return {
    config: {
      dataDir,
      publicHost: 'localhost',
      logLevel,
      bootstrap: { host: '127.0.0.1', port: bootstrap },
      api: { host: '127.0.0.1', port: api, token },
      images: { host: '127.0.0.1', port: images, tlsPort: imagesTls },
    },
    apiBase: `http://127.0.0.1:${api}`,
    ports: { bootstrap, api, images, imagesTls },
  };
}
