// Runs a conveyed pre-/post-configuration script the way the simulated DPU does, in a sandbox
// directory: a fresh temp dir as cwd and HOME, a minimal environment, a time limit that kills
// the whole process group, bounded output. No shell ever sees a command line built from
// conveyed data: the script is written to a file and the interpreter is exec'd with its path.
//
// RFC 8572 §6.1 (typedef script) leaves the language and the way a script "indicates" warnings
// and errors to the device vendor. This simulated device's convention:
//   exit 0 → success; exit 1 → warning (soft error, bootstrapping continues);
//   any other exit, a signal or the time limit → error (hard error, bootstrapping stops).
// A script must be executable text: UTF-8 without NUL or other control bytes, and a `#!` line,
// when present, must name a shell we run (sh or bash). Anything else is refused before it runs.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ZtpError } from '../errors.js';

export interface ScriptLimits {
  /** wall-clock limit, ms */
  timeoutMs: number;
  /** stdout/stderr kept, bytes each */
  maxOutputBytes: number;
}

export interface ScriptOutcome {
  result: 'ok' | 'warning' | 'error';
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  durationMs: number;
}

const INTERPRETERS: Record<string, string> = {
  '/bin/sh': '/bin/sh',
  '/usr/bin/sh': '/bin/sh',
  '/bin/bash': '/bin/bash',
  '/usr/bin/bash': '/bin/bash',
  '/usr/bin/env sh': '/bin/sh',
  '/usr/bin/env bash': '/bin/bash',
};

/** Which interpreter runs `script`, or a SIM_SCRIPT_REFUSED error saying why it is not executable text. */
export function interpreterFor(script: Uint8Array): string {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(script);
  } catch {
    throw new ZtpError('SIM_SCRIPT_REFUSED', 'script is not valid UTF-8 text');
  }
  // Tab, LF, FF and CR are text; any other C0 control byte (NUL above all) or DEL is binary.
  // eslint-disable-next-line no-control-regex
  const bad = /[\x00-\x08\x0b\x0e-\x1f\x7f]/.exec(text);
  if (bad) throw new ZtpError('SIM_SCRIPT_REFUSED', `script contains control byte 0x${bad[0].charCodeAt(0).toString(16).padStart(2, '0')} at offset ${bad.index}: not executable text`);
  if (!text.startsWith('#!')) return '/bin/sh';
  const line = text.slice(2, text.indexOf('\n') === -1 ? undefined : text.indexOf('\n')).trim().replace(/\s+/g, ' ');
  const interpreter = INTERPRETERS[line];
  if (!interpreter) throw new ZtpError('SIM_SCRIPT_REFUSED', `script interpreter "#!${line.slice(0, 80)}" is not one this device runs (sh, bash)`);
  return interpreter;
}

/**
 * Runs one script with `sandboxDir` (the device's sandbox, shared by its pre- and post-scripts,
 * removed by the caller) as cwd and HOME; the script file itself sits in a fresh subdirectory.
 */
export async function runScript(name: string, script: Uint8Array, sandboxDir: string, limits: ScriptLimits, env: Record<string, string> = {}): Promise<ScriptOutcome> {
  const interpreter = interpreterFor(script);
  const scriptDir = mkdtempSync(join(sandboxDir, `.${name}-`));
  const file = join(scriptDir, `${name}.sh`);
  writeFileSync(file, script, { mode: 0o700 });
  const dir = sandboxDir;
  const started = performance.now();
  try {
    return await new Promise<ScriptOutcome>((resolve, reject) => {
      const child = spawn(interpreter, [file], {
        cwd: dir,
        env: { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: dir, TMPDIR: dir, LANG: 'C.UTF-8', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
        // Own process group: the time limit kills whatever the script started too.
        detached: true,
      });
      const out = { stdout: '', stderr: '' };
      const keep = (key: 'stdout' | 'stderr') => (chunk: Buffer) => {
        if (out[key].length < limits.maxOutputBytes) out[key] += chunk.toString('utf8').slice(0, limits.maxOutputBytes - out[key].length);
      };
      child.stdout!.on('data', keep('stdout'));
      child.stderr!.on('data', keep('stderr'));
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
      }, limits.timeoutMs);
      child.on('error', (err) => {
        clearTimeout(timer);
        reject(new ZtpError('SIM_SCRIPT_FAILED', `${name} could not start: ${err.message}`, { cause: err }));
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        const result = timedOut || signal || code === null || code > 1 ? 'error' : code === 1 ? 'warning' : 'ok';
        resolve({ result, exitCode: code, signal, timedOut, ...out, durationMs: Math.round(performance.now() - started) });
      });
    });
  } finally {
    rmSync(scriptDir, { recursive: true, force: true });
  }
}

/** One line for a progress-report message: what happened, with the tail of stderr. */
export function describeOutcome(name: string, o: ScriptOutcome): string {
  const how = o.timedOut ? `killed after the ${o.durationMs} ms time limit` : o.signal ? `killed by ${o.signal}` : `exited ${o.exitCode}`;
  const tail = o.stderr.trim().split('\n').slice(-3).join(' | ').slice(0, 300);
  return `${name} ${how}${tail ? `: ${tail}` : ''}`;
}
