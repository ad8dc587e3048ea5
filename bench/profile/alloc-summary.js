#!/usr/bin/env node
// Allocation summary of a V8 sampling heap profile (HeapProfiler.stopSampling's profile, as
// bench/images/memtrace.js writes it with MEMTRACE_ALLOC): bytes allocated per function (self),
// the largest first, so per-request allocation can be read without a browser.
//   node bench/profile/alloc-summary.js <file.heapprofile> [--top 30]
import { readFileSync } from 'node:fs';
import { opt } from '../common.js';

const TOP = Number(opt('top', 30));
const profile = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const self = new Map();
let total = 0;
(function walk(node) {
  const bytes = (node.selfSize ?? 0);
  const f = node.callFrame;
  const key = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*-dist\//, 'ours/')}:${f.lineNumber + 1}`;
  self.set(key, (self.get(key) ?? 0) + bytes);
  total += bytes;
  for (const c of node.children ?? []) walk(c);
})(profile.head);
console.log(`allocated (sampled) ${(total / 1048576).toFixed(1)} MiB`);
for (const [k, b] of [...self].sort((a, b) => b[1] - a[1]).slice(0, TOP)) console.log(`${(b / 1048576).toFixed(2).padStart(9)} MiB ${((b / total) * 100).toFixed(1).padStart(5)}%  ${k}`);
