#!/usr/bin/env node
// Regenerates the README "CLI reference" from the commander program (npm run docs).
import { readFileSync, writeFileSync } from 'node:fs';
import { REGISTRARS } from '../dist/cli/commands.js';
import { buildProgram } from '../dist/cli/main.js';
import { cliReference } from '../dist/cli/reference.js';

const text = cliReference(buildProgram({ out: () => undefined, err: () => undefined }, () => undefined, REGISTRARS));
const file = new URL('../README.md', import.meta.url);
const readme = readFileSync(file, 'utf8');
if (!readme.includes('<!-- cli:begin -->')) throw new Error('README.md has no <!-- cli:begin --> marker');
writeFileSync(file, readme.replace(/<!-- cli:begin -->[\s\S]*<!-- cli:end -->/, `<!-- cli:begin -->\n${text}\n<!-- cli:end -->`));
console.log('README: CLI reference regenerated');
