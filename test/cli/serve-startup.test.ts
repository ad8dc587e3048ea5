// Issue 10, "Start-up output" and "A port in use": the built `ztp serve`, as users run it.
// Each listener is logged once, then one "ready" line; the admin token is printed once when it
// is generated, and later starts name only the file that holds it. A port already taken names
// the service and the setting, exits 6, and the services that had started are stopped.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, Server as NetServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config.js';
import { isZtpError, type ZtpError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { startSuite } from '../../src/suite.js';
import { buildCli, startZtp, type ZtpProcess } from '../helpers/ztp-process.js';

/** Holds a kernel-picked port on 0.0.0.0 (as ztp serve binds) until closed. */
function holdPort(): Promise<{ server: Server; port: number }> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '0.0.0.0', () => {
      const address = server.address();
      resolve({ server, port: typeof address === 'object' && address ? address.port : 0 });
    });
  });
}

interface LogLine {
  msg?: string;
  service?: string;
  port?: number;
}

const logLines = (p: ZtpProcess): LogLine[] =>
  p
    .stdout()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);

/** A port the kernel picked just now (images.port 0 would disable the listener, not pick one). */
async function pickedPort(): Promise<number> {
  const { server, port } = await holdPort();
  await new Promise((r) => server.close(r));
  return port;
}

async function serveArgs(dir: string): Promise<string[]> {
  // Every listener on a kernel-picked port; DHCP off (no interface), TFTP off by default.
  const [images, imagesTls] = [await pickedPort(), await pickedPort()];
  return ['--data-dir', join(dir, 'data'), 'serve', '--bootstrap-port', '0', '--api-port', '0', '--images-port', String(images), '--images-tls-port', String(imagesTls), '--bootstrap-host', '127.0.0.1', '--api-host', '127.0.0.1', '--public-host', 'localhost'];
}

describe('ztp serve start-up output (issue 10)', () => {
  beforeAll(() => buildCli(), 300_000);

  it('logs each listener once, then one ready line; shows the admin token only on the start that generates it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ztp-startup-'));
    const runs: { stderr: string; lines: LogLine[] }[] = [];
    for (let i = 0; i < 2; i++) {
      const p = startZtp(await serveArgs(dir));
      await p.waitFor(/"msg":"ztp serve ready"/, 60_000);
      expect(await p.stop()).toBe(0);
      runs.push({ stderr: p.stderr(), lines: logLines(p) });
    }
    const token = readFileSync(join(dir, 'data', 'admin-token'), 'utf8').trim();
    expect(token.length).toBeGreaterThan(20);
    const shown = (text: string) => text.split(token).length - 1;

    const [first, second] = runs as [(typeof runs)[0], (typeof runs)[0]];
    // First start: generated, printed exactly once (not in the dashboard line, not in the logs).
    expect(shown(first.stderr)).toBe(1);
    expect(first.stderr).toMatch(/admin token: \S+ \(generated; stored in .*admin-token/);
    // Second start: the file, never the token.
    expect(shown(second.stderr)).toBe(0);
    expect(second.stderr).toContain(`admin token: in ${join(dir, 'data', 'admin-token')}`);
    for (const run of runs) {
      expect(run.lines.map((l) => JSON.stringify(l)).join('\n')).not.toContain(token);
      const listening = run.lines.filter((l) => /listening/.test(l.msg ?? ''));
      // bootstrap (https), images http + https, api: one line each, no duplicates
      expect(listening.map((l) => `${l.service}:${l.port}`).sort()).toEqual([...new Set(listening.map((l) => `${l.service}:${l.port}`))].sort());
      expect(listening.map((l) => l.service).sort()).toEqual(['api', 'bootstrap', 'images', 'images']);
      const ready = run.lines.filter((l) => l.msg === 'ztp serve ready');
      expect(ready).toHaveLength(1);
      // the ready line comes after every listener line
      expect(run.lines.indexOf(ready[0]!)).toBeGreaterThan(Math.max(...listening.map((l) => run.lines.indexOf(l))));
    }
  }, 180_000);

  it('a port in use names the service and the setting, exits 6, and stops what had started', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ztp-inuse-'));
    const held = await holdPort();
    try {
      // images starts after bootstrap: the bootstrap server had started and must be stopped.
      const args = (await serveArgs(dir)).map((a, i, all) => (all[i - 1] === '--images-port' ? String(held.port) : a));
      const p = startZtp([...args, '--images-host', '0.0.0.0']);
      const code = await p.exited;
      expect(code, p.tail()).toBe(6);
      expect(p.stderr()).toContain(`image server: port ${held.port} (images.port / ZTP_IMAGES_PORT) is in use`);
      expect(p.stderr()).not.toMatch(/at .*\.js:\d+/); // no stack trace
      expect(logLines(p).some((l) => l.msg === 'ztp serve ready')).toBe(false);
    } finally {
      held.server.close();
    }
  }, 120_000);

  it('in process: the error is typed, and the bootstrap server that had started no longer listens', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ztp-inuse-'));
    const held = await holdPort();
    const listening = () => (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles().filter((h) => h instanceof NetServer && h.listening).length;
    const before = listening();
    try {
      const config = validateConfig({ dataDir: join(dir, 'data'), logLevel: 'silent', publicHost: 'localhost', bootstrap: { host: '127.0.0.1', port: 0 }, api: { host: '127.0.0.1', port: 0 }, images: { host: '0.0.0.0', port: 0, tlsPort: held.port } });
      const err = await startSuite(config, silentLogger).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isZtpError(err, 'LISTEN_PORT_IN_USE'), String(err)).toBe(true);
      expect((err as ZtpError).message).toMatch(new RegExp(`^image server: port ${held.port} \\(images\\.tlsPort / ZTP_IMAGES_TLS_PORT\\) is in use`));
      expect((err as ZtpError).details).toMatchObject({ service: 'images', setting: 'images.tlsPort', port: held.port });
      // bootstrap and the images HTTP listener had started; both are closed again
      expect(listening()).toBe(before);
    } finally {
      held.server.close();
    }
  }, 60_000);
});

// Issue 12: a restart (PKI already on disk) loads neither @peculiar/x509 (only needed to generate
// or issue certificates), undici (only needed once a BMC is contacted) nor asn1js (only needed
// for a hardwareModuleName serial, or the CMS code of the first bootstrap reply). No start loads
// TypeBox (the configuration is checked by src/schema.ts; TypeBox words an error only when the
// check fails), @opentelemetry/api (no collector configured) nor prom-client (nothing counted or
// scraped yet) nor fast-xml-parser (no XML body yet), nor fastify's schema compilers (ajv and the fast-json-stringify compiler: no route has a schema). A module hook in the child names every package it resolves from node_modules
// on stderr.
describe('ztp serve start-up path (issue 12)', () => {
  beforeAll(() => buildCli(), 300_000);

  const packagesLoaded = (stderr: string): Set<string> => new Set([...stderr.matchAll(/^loaded-package (\S+)$/gm)].map((m) => m[1]!));

  it('a restart with the PKI on disk loads none of @peculiar/x509, asn1js, undici; the first start loads @peculiar/x509 to generate the PKI; no start loads TypeBox, the OpenTelemetry API or prom-client', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ztp-startup-'));
    const hooks = join(dir, 'hooks.mjs');
    writeFileSync(
      hooks,
      `export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(r.url);
  if (m) process.stderr.write('loaded-package ' + m[1] + '\\n');
  return r;
}
`,
    );
    // CommonJS packages (fastify's own dependencies) are loaded by require(), which the ESM
    // resolve hook does not see: a preload names those too.
    const cjsHook = join(dir, 'cjs-hook.cjs');
    writeFileSync(
      cjsHook,
      `const Module = require('node:module');
const resolve = Module._resolveFilename;
Module._resolveFilename = function (...args) {
  const file = resolve.apply(this, args);
  const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(file);
  if (m) process.stderr.write('loaded-package ' + m[1] + '\\n');
  return file;
};
`,
    );
    const register = join(dir, 'register.mjs');
    writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
    const env = { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${register} --require ${cjsHook}`.trim() };
    const loaded: Set<string>[] = [];
    for (let i = 0; i < 2; i++) {
      const p = startZtp(await serveArgs(dir), env);
      await p.waitFor(/"msg":"ztp serve ready"/, 60_000);
      expect(await p.stop()).toBe(0);
      loaded.push(packagesLoaded(p.stderr()));
    }
    const [first, restart] = loaded as [Set<string>, Set<string>];
    // the hook works: fastify is on every start, @peculiar/x509 when the PKI is generated
    expect(first).toContain('fastify');
    expect(first).toContain('@peculiar/x509');
    expect(restart).toContain('fastify');
    expect(restart).not.toContain('@peculiar/x509');
    expect(first).not.toContain('undici');
    expect(restart).not.toContain('undici');
    expect(restart).not.toContain('asn1js');
    for (const start of [first, restart]) {
      expect(start).not.toContain('@sinclair/typebox');
      expect(start).not.toContain('@opentelemetry/api');
      expect(start).not.toContain('prom-client');
      // fast-xml-parser is required on the first XML body, not imported at start
      expect(start).not.toContain('fast-xml-parser');
      // no route of the suite has a schema: fastify's compilers load on first use (lazySchemaCompilers)
      expect(start).not.toContain('ajv');
      expect(start).not.toContain('@fastify/ajv-compiler');
      // (fast-json-stringify itself is fastify's: its error serializer needs the runtime part)
      expect(start).not.toContain('@fastify/fast-json-stringify-compiler');
    }
  }, 180_000);
});
