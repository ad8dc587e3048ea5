#!/usr/bin/env node
// Flame summary of a V8 .cpuprofile (node --cpu-prof): self time per package / source file and
// per function, so "where the time goes" can be read without a browser.
//   node bench/profile/summary.js <file.cpuprofile> [--top 25] [--by package|file|function]
import { readFileSync } from 'node:fs';
import { opt } from '../common.js';

const file = process.argv[2];
const TOP = Number(opt('top', 25));
const profile = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map();
// timeDeltas[i] is the time before samples[i]: attribute it to that sample's node.
profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
const total = [...self.values()].reduce((a, b) => a + b, 0);

function packageOf(url) {
  if (!url) return '(native/V8)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 13).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  if (url.startsWith('node:')) return url;
  const dist = /-dist\/(.*)$|\/dist\/(.*)$/.exec(url);
  return dist ? `ours: ${(dist[1] ?? dist[2]).split('/')[0]}` : url.replace(/^file:\/\//, '');
}
const keyOf = {
  package: (n) => packageOf(n.callFrame.url),
  file: (n) => n.callFrame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*-dist\//, 'ours/') || '(native/V8)',
  function: (n) => `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*-dist\//, 'ours/')}:${n.callFrame.lineNumber + 1}`,
};
for (const by of opt('by', null) ? [opt('by')] : ['package', 'function']) {
  const agg = new Map();
  for (const [id, t] of self) {
    const k = keyOf[by](byId.get(id));
    agg.set(k, (agg.get(k) ?? 0) + t);
  }
  console.log(`\nself time by ${by} (total ${(total / 1000).toFixed(0)} ms sampled)`);
  for (const [k, t] of [...agg].sort((a, b) => b[1] - a[1]).slice(0, TOP)) console.log(`${(t / 1000).toFixed(1).padStart(8)} ms ${((t / total) * 100).toFixed(1).padStart(5)}%  ${k}`);
}
