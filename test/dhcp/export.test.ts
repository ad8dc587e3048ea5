// `ztp dhcp export`: Kea/dnsmasq/dhcpd text from settings and registered devices; dnsmasq and
// dhcpd accept what we print (each a test that skips with its reason when the tool is absent).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { registerDhcpCommands } from '../../src/cli/dhcp.js';
import { openDatabase } from '../../src/db/database.js';
import { DeviceStore } from '../../src/devices/store.js';
import { Command } from 'commander';
import { missingTool } from '../helpers/shared.js';

const dir = mkdtempSync(join(tmpdir(), 'ztp-dhcp-export-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const config = join(dir, 'config.json');
writeFileSync(
  config,
  JSON.stringify({
    dataDir: join(dir, 'data'),
    publicHost: 'ztp.lab.example',
    dhcp: { options: { dns: ['10.9.0.53'], domain: 'lab.example' }, subnets: [{ subnet: '10.9.0.0/24', pools: [{ start: '10.9.0.100', end: '10.9.0.150' }], options: { routers: ['10.9.0.1'] } }] },
  }),
);
const db = openDatabase({ file: join(dir, 'data', 'ztp.db') });
new DeviceStore(db).upsert({ serial: 'OPI-1', profile: 'opi', macs: ['02:00:00:00:00:01'] });
db.close();

async function run(args: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  let code = 0;
  const program = new Command('ztp').option('--json').option('--config-file <file>').option('-d, --data-dir <dir>').exitOverride();
  const action = (handler: (cmd: Command) => unknown) => async (...a: unknown[]) => {
    try {
      await handler(a[a.length - 1] as Command);
    } catch (err) {
      out += String(err);
      code = 1;
    }
  };
  registerDhcpCommands(program, action as never, { out: (t) => (out += t + '\n'), err: (t) => (out += t + '\n') });
  await program.parseAsync(['--config-file', config, ...args], { from: 'user' });
  return { code, out };
}

describe('ztp dhcp export', () => {
  it('dnsmasq: 143 as raw colon hex, opi devices tagged with the text form', async () => {
    const { out } = await run(['dhcp', 'export', '--format', 'dnsmasq']);
    expect(out).toContain('dhcp-range=10.9.0.100,10.9.0.150,255.255.255.0,3600s');
    expect(out).toMatch(/dhcp-option=143,00:1c:68:74:74:70:73/);
    expect(out).toContain('dhcp-host=02:00:00:00:00:01,set:ztpopiOPI1');
  });

  it('isc-dhcpd: declares sztp-redirect as string and sets it per opi host', async () => {
    const { out } = await run(['dhcp', 'export', '--format', 'isc-dhcpd']);
    expect(out).toContain('option sztp-redirect code 143 = string;');
    expect(out).toMatch(/host OPI-1-0 \{\n {2}hardware ethernet 02:00:00:00:00:01;\n {2}option sztp-redirect 68:74:74:70:73/);
  });
});

// The peers' own parsers read what we print. Each check is a test of its own that skips, with
// the reason printed, when the tool is absent (.ci/run installs all three and fails on a skip).
describe('ztp dhcp export, checked by the servers it is for', () => {
  /** exit status and both streams: a check that cannot see a failure is no check */
  function check(cmd: string, args: string[]) {
    const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 20_000 });
    return { status: r.status, output: `${r.stdout ?? ''}${r.stderr ?? ''}`, error: r.error };
  }

  it.skipIf(missingTool('dnsmasq'))('dnsmasq --test accepts the dnsmasq export, and refuses a broken one', async () => {
    const { out } = await run(['dhcp', 'export', '--format', 'dnsmasq']);
    const file = join(dir, 'dnsmasq.conf');
    writeFileSync(file, out);
    const ok = check('dnsmasq', ['--test', `--conf-file=${file}`]);
    expect(ok.status, ok.output).toBe(0);
    expect(ok.output).toMatch(/syntax check OK/);
    // the same check sees a mistake (so a green result above means something)
    writeFileSync(file, out + 'no-such-option=1\n');
    const bad = check('dnsmasq', ['--test', `--conf-file=${file}`]);
    expect(bad.status, bad.output).not.toBe(0);
  });

  it.skipIf(missingTool('kea-dhcp4'))('kea-dhcp4 -t accepts the Kea export, and refuses a broken one', async () => {
    const { out } = await run(['--json', 'dhcp', 'export', '--format', 'kea']);
    const json = JSON.parse(out) as { Dhcp4: { 'option-def': unknown[]; subnet4: { subnet: string }[] } };
    expect(json.Dhcp4['option-def']).toEqual([{ name: 'sztp-redirect', code: 143, space: 'dhcp4', type: 'binary' }]);
    expect(json.Dhcp4.subnet4[0]!.subnet).toBe('10.9.0.0/24');
    const file = join(dir, 'kea.json');
    writeFileSync(file, out);
    const ok = check('kea-dhcp4', ['-t', file]);
    expect(ok.status, ok.output).toBe(0);
    writeFileSync(file, JSON.stringify({ Dhcp4: { ...json.Dhcp4, 'option-def': [{ name: 'sztp-redirect', code: 143, space: 'dhcp4', type: 'no-such-type' }] } }));
    const bad = check('kea-dhcp4', ['-t', file]);
    expect(bad.status, bad.output).not.toBe(0);
  });

  // By full path: the npm package `dhcp` puts a `dhcpd` of its own in node_modules/.bin, first on
  // PATH under npx/vitest; it took -t for an interface, printed "Invalid argument 4" and exited 0.
  const ISC_DHCPD = '/usr/sbin/dhcpd';
  const noIscDhcpd = existsSync(ISC_DHCPD) ? '' : `${ISC_DHCPD} is not installed (isc-dhcp-server; .ci/run installs it); skipping`;
  if (noIscDhcpd) console.warn(noIscDhcpd);

  it.skipIf(noIscDhcpd)('dhcpd -t -cf accepts the isc-dhcpd export, and refuses a broken one', async () => {
    const { out } = await run(['dhcp', 'export', '--format', 'isc-dhcpd']);
    const file = join(dir, 'dhcpd.conf');
    writeFileSync(file, out);
    const ok = check(ISC_DHCPD, ['-t', '-4', '-cf', file]);
    expect(ok.status, ok.output).toBe(0);
    writeFileSync(file, out.replace('option sztp-redirect code 143 = string;', ''));
    const bad = check(ISC_DHCPD, ['-t', '-4', '-cf', file]);
    expect(bad.status, bad.output).not.toBe(0);
  });
});
