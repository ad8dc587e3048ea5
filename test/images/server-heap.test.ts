// issue 12: `ztp serve` sizes V8's heap for a long-running server (src/server-heap.ts). The young
// generation is what grew first under concurrent image readers (~30 MiB committed); with the
// settings applied it keeps its initial size. Each probe is a fresh node process (the flags are
// process-wide), importing the module's own source transpiled here, with and without the settings,
// so the test fails if setting them at run time stops working in a Node release.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';
import { SERVER_HEAP_FLAGS } from '../../src/server-heap.js';

const dir = mkdtempSync(join(tmpdir(), 'ztp-server-heap-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const source = readFileSync(new URL('../../src/server-heap.ts', import.meta.url), 'utf8');
const moduleFile = join(dir, 'server-heap.mjs');
writeFileSync(moduleFile, ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText);

// Requests in flight: objects that live a while (a window of 100,000 kept), plus garbage.
const probe = `
import { applyServerHeapSizing } from ${JSON.stringify(pathToFileURL(moduleFile).href)};
import { getHeapSpaceStatistics } from 'node:v8';
if (process.argv[1] === 'apply') { applyServerHeapSizing(); applyServerHeapSizing(); }
const keep = [];
for (let i = 0; i < 500; i++) {
  for (let j = 0; j < 2000; j++) keep.push({ a: j, b: [j, j], c: 'x' + j });
  if (keep.length > 100000) keep.splice(0, 50000);
  await null;
}
const space = (name) => getHeapSpaceStatistics().find((s) => s.space_name === name).physical_space_size;
console.log(JSON.stringify({ newSpace: space('new_space') }));
`;

function run(mode: 'apply' | 'default'): { newSpace: number } {
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', probe, mode], { encoding: 'utf8', timeout: 60_000 })) as { newSpace: number };
}

const MIB = 1024 * 1024;

describe('server heap sizing (issue 12)', () => {
  it('names the two V8 settings it applies', () => {
    expect(SERVER_HEAP_FLAGS).toEqual(['--semi-space-growth-factor=1', '--heap-growing-percent=20']);
  });

  it('keeps the young generation at its initial size under a request-like allocation pattern; without it V8 grows it', () => {
    const applied = run('apply');
    const unbounded = run('default');
    expect(applied.newSpace).toBeLessThanOrEqual(4 * MIB);
    // the control: the same load without the settings grows the young generation past 8 MiB
    expect(unbounded.newSpace).toBeGreaterThan(8 * MIB);
  });
});
