// `ztp bmc-emulator` through main(): prints the BMCs (URL, credentials, identity), serves them on a
// real socket until SIGTERM, then closes every listener; bad flags are usage errors (exit 2).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { until } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'ztp-bmc-emu-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (t: string) => void out.push(t), err: (t: string) => void err.push(t) }, out, err };
}

describe('ztp bmc-emulator', () => {
  it('runs N BMCs on one port and per-BMC ports until SIGTERM', async () => {
    const { io, out } = capture();
    const done = main(['--json', '--data-dir', dir, 'bmc-emulator', '--count', '3', '--base-port', '0', '--mockup', 'builtin', '--zero-delays', '--quirks', 'supermicro'], io);
    await until(() => out.length > 0, 10_000);
    const printed = JSON.parse(out[0]!) as { url: string; bmcs: { id: string; url: string; prefixUrl: string; username: string; password: string; serial: string; macs: string[] }[] };
    expect(printed.bmcs.map((b) => b.id)).toEqual(['bmc-0001', 'bmc-0002', 'bmc-0003']);
    expect(printed.bmcs[0]).toMatchObject({ username: 'ADMIN', password: 'ADMIN' });
    expect(new Set(printed.bmcs.map((b) => b.serial)).size).toBe(3);
    for (const b of printed.bmcs) {
      const viaPort = await fetch(`${b.url}/redfish/v1`);
      expect((await viaPort.json()) as object).toMatchObject({ Vendor: 'Supermicro', Links: { Sessions: { '@odata.id': '/redfish/v1/SessionService/Sessions' } } });
      const viaPrefix = await fetch(`${b.prefixUrl}/redfish/v1/Systems`, { headers: { authorization: 'Basic ' + Buffer.from('ADMIN:ADMIN').toString('base64') } });
      expect(((await viaPrefix.json()) as { Members: { '@odata.id': string }[] }).Members[0]!['@odata.id']).toBe(`/bmc/${b.id}/redfish/v1/Systems/1`);
    }
    process.emit('SIGTERM');
    expect(await done).toBe(0);
    await expect(fetch(`${printed.url}/bmc/bmc-0001/redfish/v1`)).rejects.toThrow();
  });

  it('refuses bad flags with exit code 2', async () => {
    for (const args of [['--quirks', 'huawei'], ['--count', '0'], ['--faults', 'explode'], ['--port', '1', '--base-port', '2'], ['--mockup', dir]]) {
      const { io, err } = capture();
      expect(await main(['--data-dir', dir, 'bmc-emulator', ...args], io)).toBe(2);
      expect(err.join('\n')).toMatch(/ztp: /);
    }
  });
});
