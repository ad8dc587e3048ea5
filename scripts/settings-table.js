#!/usr/bin/env node
// Regenerates the README "Configuration" table from the one config schema (npm run docs).
import { readFileSync, writeFileSync } from 'node:fs';
import { listSettings } from '../dist/config.js';

const rows = listSettings().map((s) => `| \`${s.env}\` | \`${s.flag}\` | \`${JSON.stringify(s.default)}\` | ${s.description} |`);
const table = ['| env var | flag (`ztp serve`) | default | meaning |', '|---|---|---|---|', ...rows].join('\n');
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const next = readme.replace(/<!-- settings:begin -->[\s\S]*<!-- settings:end -->/, `<!-- settings:begin -->\n${table}\n<!-- settings:end -->`);
writeFileSync(new URL('../README.md', import.meta.url), next);
console.log(`README: ${rows.length} settings`);
