// CLI and API details a newcomer hit (issue 10): a misspelt state lists nothing, --json ignored
// for usage errors, global options missing from subcommand help, `dhcp export` silently without
// option 143, `npx ztp` failing after `npm ci`, EBADENGINE on Node 20.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import semver from 'semver';
import { afterAll, describe, expect, it } from 'vitest';
import { buildApiApp } from '../../src/api/app.js';
import { EXIT } from '../../src/cli/common.js';
import { main } from '../../src/cli/main.js';
import { openDatabase } from '../../src/db/database.js';
import { DeviceStore } from '../../src/devices/store.js';
import { silentLogger } from '../../src/log.js';
import { ONBOARDING_STATES } from '../../src/onboarding/state.js';

const root = new URL('../../', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'ztp-cli-details-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function ztp(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['--data-dir', dir, ...args], { out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join(''), err: err.join('') };
}

describe('device list --state / GET /api/v1/devices?state=', () => {
  it('a state that does not exist is refused (exit 4) naming the states; a real one filters', async () => {
    expect((await ztp('device', 'add', 'ST-1')).code).toBe(EXIT.OK);
    const bogus = await ztp('device', 'list', '--state', 'bogus', '--json');
    expect(bogus.code).toBe(EXIT.INVALID);
    expect(bogus.out).toBe('');
    const error = JSON.parse(bogus.err).error;
    expect(error).toMatchObject({ code: 'DEVICE_INVALID', details: { field: 'state', states: [...ONBOARDING_STATES] } });
    expect(error.message).toMatch(/"bogus" is not a state; one of: registered, /);
    const registered = await ztp('device', 'list', '--state', 'registered', '--json');
    expect(JSON.parse(registered.out).map((d: { serial: string }) => d.serial)).toEqual(['ST-1']);
    expect(JSON.parse((await ztp('device', 'list', '--state', 'onboarded', '--json')).out)).toEqual([]);
  });

  it('the API answers 400 with the same code; ?state=registered filters, no ?state lists all', async () => {
    const store = new DeviceStore(openDatabase({ file: ':memory:' }));
    store.upsert({ serial: 'API-ST-1' }, 'test');
    const app = buildApiApp({ store, log: silentLogger, token: 'tok' });
    const get = (url: string) => app.inject({ url, headers: { authorization: 'Bearer tok' } });
    const bogus = await get('/api/v1/devices?state=bogus');
    expect(bogus.statusCode).toBe(400);
    expect(bogus.json().error).toMatchObject({ code: 'DEVICE_INVALID', details: { field: 'state' } });
    expect((await get('/api/v1/devices?state=registered')).json().devices).toHaveLength(1);
    expect((await get('/api/v1/devices?state=failed')).json().devices).toHaveLength(0);
    expect((await get('/api/v1/devices')).json().devices).toHaveLength(1);
    await app.close();
  });
});

describe('usage errors with --json', () => {
  it.each([
    [['device', 'frobnicate'], /unknown command 'frobnicate'/, 'commander.unknownCommand'],
    [['device', 'list', '--bogus'], /unknown option '--bogus'/, 'commander.unknownOption'],
    [['device', 'add'], /missing required argument 'serial'/, 'commander.missingArgument'],
    [['device'], /a subcommand is required/, 'commander.help'],
  ])('ztp %j --json: one JSON error on stderr, nothing on stdout, exit 2', async (args, message, reason) => {
    for (const argv of [[...(args as string[]), '--json'], ['--json', ...(args as string[])]]) {
      const r = await ztp(...argv);
      expect(r.code).toBe(EXIT.USAGE);
      expect(r.out).toBe('');
      const body = JSON.parse(r.err) as { error: { code: string; message: string; details: { reason: string } } };
      expect(body.error.code).toBe('CLI_USAGE');
      expect(body.error.message).toMatch(message as RegExp);
      expect(body.error.details.reason).toBe(reason);
    }
  });

  it('without --json the same error is commander\'s text with the help after it', async () => {
    const r = await ztp('device', 'list', '--bogus');
    expect(r.code).toBe(EXIT.USAGE);
    expect(r.err).toMatch(/^error: unknown option '--bogus'/);
    expect(r.err).toMatch(/Usage: ztp device list/);
  });

  it('--json after `--` is an argument, not the option', async () => {
    const r = await ztp('device', 'add', '--', '--json');
    expect(r.code).toBe(EXIT.INVALID);
    expect(r.err).toMatch(/^ztp: /);
  });
});

describe('subcommand --help', () => {
  it.each(['device add', 'serve', 'dhcp export', 'simulate'])('ztp %s --help lists the global options', async (cmd) => {
    const r = await ztp(...cmd.split(' '), '--help');
    expect(r.code).toBe(EXIT.OK);
    expect(r.out).toMatch(/Global Options:/);
    for (const flag of ['--json', '--config-file <file>', '-d, --data-dir <dir>']) expect(r.out).toContain(flag);
  });
});

describe('dhcp export without --public-host', () => {
  const config = join(dir, 'export.json');
  writeFileSync(config, JSON.stringify({ dataDir: join(dir, 'export-data') }));

  it('falls back to the host name, as ztp serve does, and warns on stderr', async () => {
    const fallback = await ztp('--config-file', config, 'dhcp', 'export', '--format', 'dnsmasq');
    expect(fallback.code).toBe(EXIT.OK);
    expect(fallback.err).toMatch(new RegExp(`warning: no --public-host .*option 143 names this host, ${hostname()}`));
    const url = `https://${hostname()}:8443`;
    const hex = Buffer.concat([Buffer.from([0, url.length]), Buffer.from(url)]).toString('hex').replace(/(..)(?!$)/g, '$1:');
    expect(fallback.out).toContain(`dhcp-option=143,${hex}`);
    // The same bytes as naming the host explicitly, which does not warn.
    const explicit = await ztp('--config-file', config, 'dhcp', 'export', '--format', 'dnsmasq', '--public-host', hostname());
    expect(explicit.out).toBe(fallback.out);
    expect(explicit.err).toBe('');
  });

  it('--json output stays parseable: the warning goes to stderr', async () => {
    const r = await ztp('--config-file', config, 'dhcp', 'export', '--format', 'kea', '--json');
    expect(r.err).toMatch(/warning: no --public-host/);
    const data = JSON.parse(r.out).Dhcp4['option-data'] as { code: number; data: string }[];
    expect(Buffer.from(data.find((o) => o.code === 143)!.data, 'hex').toString('latin1')).toContain(`https://${hostname()}:8443`);
  });
});

describe('packaging: `npx ztp` after `npm ci` alone, on Node 20', () => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string>; engines: { node: string }; bin: Record<string, string> };

  it('npm ci builds what bin/ztp.js runs (the prepare script, tsconfig.build.json src → dist)', () => {
    expect(pkg.scripts.prepare).toBe('npm run build');
    expect(pkg.scripts.build).toBe('tsc -p tsconfig.build.json');
    const build = JSON.parse(readFileSync(join(root, 'tsconfig.build.json'), 'utf8')) as { compilerOptions: { rootDir: string; outDir: string } };
    expect(build.compilerOptions).toMatchObject({ rootDir: 'src', outDir: 'dist' });
    expect(pkg.bin.ztp).toBe('bin/ztp.js');
    expect(readFileSync(join(root, 'bin/ztp.js'), 'utf8')).toContain("'../dist/cli/main.js'");
  });

  it('without dist/ the command says how to build it, exit 1, no stack trace', () => {
    const copy = join(dir, 'unbuilt');
    mkdirSync(join(copy, 'bin'), { recursive: true });
    copyFileSync(join(root, 'bin/ztp.js'), join(copy, 'bin/ztp.js'));
    writeFileSync(join(copy, 'package.json'), JSON.stringify({ type: 'module' }));
    const r = spawnSync(process.execPath, [join(copy, 'bin/ztp.js'), 'device', 'list'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^ztp: the command is not built .*dist\/cli\/main\.js is missing\): run `npm run build`/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('every locked package supports the oldest Node engines allows (npm ci cannot warn EBADENGINE)', () => {
    const oldest = semver.minVersion(pkg.engines.node)!.version;
    expect(oldest).toBe('20.19.0');
    const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, { engines?: { node?: string } | string[] }> };
    const refused: string[] = [];
    let checked = 0;
    for (const [path, p] of Object.entries(lock.packages)) {
      const range = p.engines && !Array.isArray(p.engines) ? p.engines.node : undefined;
      if (!path || !range) continue;
      checked++;
      if (!semver.satisfies(oldest, range)) refused.push(`${path} needs node ${range}`);
    }
    expect(checked).toBeGreaterThan(50);
    expect(refused).toEqual([]);
    // The check can fail: cookie@2 (the EBADENGINE of issue 10) would be caught.
    expect(semver.satisfies(oldest, '>=22')).toBe(false);
  });

  const unbuilt = existsSync(join(root, 'dist/cli/main.js')) ? '' : 'dist/ is absent (npm ci or npm run build not run here); skipping';
  if (unbuilt) console.warn(unbuilt);
  it.skipIf(unbuilt)('the built command runs (dist/ as npm ci left it)', () => {
    const r = spawnSync(process.execPath, [join(root, 'bin/ztp.js'), '--data-dir', join(dir, 'built'), 'device', 'list', '--json'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual([]);
  });
});
