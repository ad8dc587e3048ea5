// CI installs every peer the tests use (openssl, yanglint, dnsmasq, Kea, dhcpd, QEMU, Chromium...)
// and runs as root with ../shared present, so a skipped test in CI is a broken install or a
// broken skip condition, not an optional extra: fail, naming each one, unless allowed below.
//
// .ci/allowed-skips: one line per allowed skip, `<test file> | <full test name regex> | <why>`;
// blank lines and lines starting with # are ignored. Every entry must say why.
import { readFileSync, existsSync } from 'node:fs';
import { relative, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const results = JSON.parse(readFileSync(resolve(root, process.argv[2] ?? 'test-results.json'), 'utf8'));
const allowFile = resolve(root, '.ci/allowed-skips');
const allowed = [];
if (existsSync(allowFile)) {
  for (const [i, raw] of readFileSync(allowFile, 'utf8').split('\n').entries()) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const [file, pattern, why] = line.split('|').map((s) => s.trim());
    if (!file || !pattern || !why) {
      console.error(`.ci/allowed-skips line ${i + 1}: expected "<file> | <name regex> | <why>"`);
      process.exit(2);
    }
    allowed.push({ file, name: new RegExp(pattern), why });
  }
}

const skipped = [];
for (const suite of results.testResults ?? []) {
  const file = relative(root, suite.name);
  for (const t of suite.assertionResults ?? []) {
    if (t.status === 'passed' || t.status === 'failed') continue;
    if (allowed.some((a) => a.file === file && a.name.test(t.fullName))) continue;
    skipped.push(`${file} > ${t.fullName} (${t.status})`);
  }
}
if (skipped.length > 0) {
  console.error(`${skipped.length} test(s) skipped in CI, where every peer is installed (see the skip reasons printed above):`);
  for (const s of skipped) console.error(`  - ${s}`);
  console.error('Fix the install (.ci/run PACKAGES) or the skip condition, or allow-list it with a reason in .ci/allowed-skips.');
  process.exit(1);
}
console.log('no unexpected skipped tests');
