// What the benchmarks share: the repository root, `--name value` flags, a log to stderr (stdout
// carries the tables), and compiling src/ into a private dist so a bench never runs the
// TypeScript sources or another checkout's build.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const root = resolve(import.meta.dirname, '..');
export const args = process.argv.slice(2);

/** The value after `--name`, or `def`. */
export function opt(name, def) {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
}

export const log = (...m) => console.error('[bench]', ...m);

/**
 * Compiles src/ into bench/out/<name>-dist (unless --no-build) and returns that directory.
 * tsc exits non-zero on type errors elsewhere but still emits: only a missing `probe` file is fatal.
 */
export function compiledSources(name, probe) {
  const dist = join(root, 'bench/out', `${name}-dist`);
  if (!args.includes('--no-build')) {
    log(`compiling src/ into bench/out/${name}-dist`);
    try {
      execFileSync(join(root, 'node_modules/.bin/tsc'), ['-p', join(root, 'tsconfig.build.json'), '--outDir', dist, '--tsBuildInfoFile', join(dist, '.tsbuildinfo'), '--declaration', 'false', '--sourceMap', 'false'], { stdio: 'pipe' });
    } catch (err) {
      if (!existsSync(join(dist, probe))) throw err;
      log('tsc reported errors; continuing with the emitted JavaScript');
    }
  }
  return dist;
}

/** The median of a list of numbers (the mean of the two middle ones for an even count). */
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** "median (min–max)" with d decimals: how every bench prints a figure over its rounds. */
export const medianSpread = (xs, d = 0) => `${median(xs).toFixed(d)} (${Math.min(...xs).toFixed(d)}–${Math.max(...xs).toFixed(d)})`;
