#!/usr/bin/env node
// The `ztp` command: runs the compiled CLI in dist/, which `npm ci` builds (the prepare script)
// and `npm start` rebuilds.
import { existsSync } from 'node:fs';

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write(`ztp: the command is not built (${entry.pathname} is missing): run \`npm run build\` in ${new URL('..', import.meta.url).pathname} (npm ci runs it)\n`);
  process.exit(1);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
