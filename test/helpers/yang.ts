// yanglint (libyang2-tools) as an independent validator of our RESTCONF JSON/XML.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sharedPath } from './shared.js';

export const YANG_DIR = sharedPath('yang');
export const BOOTSTRAP_MODULE = join(YANG_DIR, 'ietf-sztp-bootstrap-server@2019-04-30.yang');

/**
 * yanglint does not validate rc:yang-data directly (SZTP-INTEROP.md): write a copy of the module
 * with the `rc:yang-data NAME { … }` wrapper removed, so its content becomes top-level data.
 * Generated per test run into a temp dir; never shipped.
 */
export function unwrapYangData(moduleFile: string): string {
  const text = readFileSync(join(YANG_DIR, moduleFile), 'utf8');
  const start = text.search(/rc:yang-data\s+[\w-]+\s*\{/);
  if (start < 0) throw new Error(`${moduleFile} has no rc:yang-data`);
  const open = text.indexOf('{', start);
  let depth = 0;
  let close = open;
  for (let i = open; i < text.length; i++) {
    if (text[i] === '{') depth++;
    else if (text[i] === '}' && --depth === 0) {
      close = i;
      break;
    }
  }
  const unwrapped = text.slice(0, start) + text.slice(open + 1, close) + text.slice(close + 1);
  const dir = mkdtempSync(join(tmpdir(), 'ztp-yang-'));
  writeFileSync(join(dir, moduleFile), unwrapped);
  return join(dir, moduleFile);
}

export interface LintResult {
  ok: boolean;
  output: string;
}

export function yanglint(args: string[], dataText: string, ext: 'json' | 'xml'): LintResult {
  const dir = mkdtempSync(join(tmpdir(), 'ztp-lint-'));
  const file = join(dir, `data.${ext}`);
  writeFileSync(file, dataText);
  try {
    const out = execFileSync('yanglint', ['-p', YANG_DIR, ...args, file], { stdio: ['ignore', 'pipe', 'pipe'] });
    return { ok: true, output: out.toString() };
  } catch (err) {
    const e = err as { stdout?: Buffer; stderr?: Buffer };
    return { ok: false, output: `${e.stdout?.toString() ?? ''}${e.stderr?.toString() ?? ''}` };
  }
}
