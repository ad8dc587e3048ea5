// Tests find the shared reference data (YANG modules, Redfish mockups) through one env var,
// ZTP_SHARED, defaulting to ../shared beside the checkout. Absent (a user's clone): skip with a reason.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { execFileSync } from 'node:child_process';

export const SHARED_DIR = resolve(process.env.ZTP_SHARED ?? resolve(import.meta.dirname, '../../../shared'));

export function sharedPath(...parts: string[]): string {
  return resolve(SHARED_DIR, ...parts);
}

/** Why a test needing shared data must skip, or '' when it can run. */
export function missingShared(...parts: string[]): string {
  const path = sharedPath(...parts);
  if (existsSync(path)) return '';
  const reason = `shared data ${path} is absent (set ZTP_SHARED); skipping`;
  console.warn(reason);
  return reason;
}

/** Why a test needing an external program must skip, or '' when it is on PATH. */
export function missingTool(tool: string): string {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    return '';
  } catch {
    const reason = `${tool} is not installed (.ci/run installs it); skipping`;
    console.warn(reason);
    return reason;
  }
}

export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
