// `ztp dhcp export`: Kea/dnsmasq/dhcpd text from settings and registered devices; dnsmasq and
// Kea (when installed) accept what we print.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
  it('dnsmasq: 143 as raw colon hex, opi devices tagged with the text form; dnsmasq --test accepts it', async () => {
    const { out } = await run(['dhcp', 'export', '--format', 'dnsmasq']);
    expect(out).toContain('dhcp-range=10.9.0.100,10.9.0.150,255.255.255.0,3600s');
    expect(out).toMatch(/dhcp-option=143,00:1c:68:74:74:70:73/);
    expect(out).toContain('dhcp-host=02:00:00:00:00:01,set:ztpopiOPI1');
    if (!missingTool('dnsmasq')) {
      const file = join(dir, 'dnsmasq.conf');
      writeFileSync(file, out);
      expect(execFileSync('dnsmasq', ['--test', `--conf-file=${file}`], { encoding: 'utf8', stdio: 'pipe' }) + '').toBeDefined();
    }
  });

  it('kea --json: option-def 143 binary and a Kea parser check', async () => {
    const { out } = await run(['--json', 'dhcp', 'export', '--format', 'kea']);
    const json = JSON.parse(out) as { Dhcp4: { 'option-def': unknown[]; subnet4: { subnet: string }[] } };
    expect(json.Dhcp4['option-def']).toEqual([{ name: 'sztp-redirect', code: 143, space: 'dhcp4', type: 'binary' }]);
    expect(json.Dhcp4.subnet4[0]!.subnet).toBe('10.9.0.0/24');
    if (!missingTool('kea-dhcp4')) {
      const file = join(dir, 'kea.json');
      writeFileSync(file, out);
      execFileSync('kea-dhcp4', ['-t', file], { stdio: 'pipe' });
    }
  });

  it('isc-dhcpd: declares sztp-redirect as string and sets it per opi host', async () => {
    const { out } = await run(['dhcp', 'export', '--format', 'isc-dhcpd']);
    expect(out).toContain('option sztp-redirect code 143 = string;');
    expect(out).toMatch(/host OPI-1-0 \{\n {2}hardware ethernet 02:00:00:00:00:01;\n {2}option sztp-redirect 68:74:74:70:73/);
  });
});
