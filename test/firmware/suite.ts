// The product under test, as users run it: `npm run build`, then `node bin/ztp.js` for
// `image add`, `device add` and `serve` (serve inside the lab's namespace).
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { FirmwareLab, Proc } from './qemu.js';
import { tail } from './qemu.js';

export const REPO = resolve(import.meta.dirname, '../..');
const BIN = join(REPO, 'bin', 'ztp.js');

// `npm run build` once for all test files (a lock and a freshness stamp: see the helper).
export { buildCli } from '../helpers/ztp-process.js';

/** Runs one `ztp` command to completion (JSON output parsed). */
export function ztp(dataDir: string, args: string[]): unknown {
  const out = execFileSync(process.execPath, [BIN, '--json', '--data-dir', dataDir, ...args], { cwd: REPO, encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
  return out.trim() ? JSON.parse(out) : undefined;
}

export interface Served {
  proc: Proc;
  /** pino lines so far, parsed */
  logs(): Record<string, unknown>[];
  /** the log tail, for failure messages */
  tail(): string;
}

/** Writes the config file and starts `ztp serve` in the lab's server namespace; resolves when every service started. */
export async function serve(lab: FirmwareLab, config: Record<string, unknown>, name = 'config'): Promise<Served> {
  const file = join(lab.dir, `${name}.json`);
  writeFileSync(file, JSON.stringify(config, null, 2));
  const proc = lab.spawn(lab.srv, process.execPath, [BIN, '--config-file', file, 'serve']);
  const served: Served = {
    proc,
    logs: () =>
      proc
        .stdout()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => {
          try {
            return JSON.parse(l) as Record<string, unknown>;
          } catch {
            return {};
          }
        }),
    tail: () => tail(proc.stdout() + proc.stderr(), 4000),
  };
  const end = Date.now() + 60_000;
  while (!proc.stderr().includes('admin token:')) {
    if (proc.child.exitCode !== null) throw new Error(`ztp serve exited (${proc.child.exitCode}):\n${served.tail()}`);
    if (Date.now() > end) throw new Error(`ztp serve did not start:\n${served.tail()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return served;
}
