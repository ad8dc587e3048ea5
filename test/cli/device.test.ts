// The `ztp` CLI as fleet scripts use it: --json, stable exit codes, idempotent commands.
import { mkdtempSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { EXIT } from '../../src/cli/common.js';

async function ztp(dataDir: string, ...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['--data-dir', dataDir, ...args], { out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join(''), err: err.join(''), json: () => JSON.parse(out.join('')) };
}

describe('ztp device', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ztp-cli-'));

  it('add is idempotent and says what it did', async () => {
    writeFileSync(join(dir, 'dpu.cfg'), 'hostname dpu-1\n');
    const args = ['device', 'add', 'SN-1', '--password', 'pw', '--profile', 'opi', '--mac', '02:00:00:00:00:01', '--config', join(dir, 'dpu.cfg'), '--json'];
    const first = await ztp(dir, ...args);
    expect(first.code).toBe(EXIT.OK);
    expect(first.json().outcome).toBe('created');
    const second = await ztp(dir, ...args);
    expect(second.json().outcome).toBe('unchanged');
    expect(second.out).not.toContain('pw"');
    const shown = await ztp(dir, 'device', 'show', 'SN-1', '--json');
    expect(shown.json().device).toMatchObject({ serial: 'SN-1', profile: 'opi', config: 'hostname dpu-1\n', hasPassword: true, state: 'registered' });
    expect(JSON.stringify(shown.json())).not.toMatch(/scrypt/);
  });

  it('list --json is a stable array; human output is a table', async () => {
    const list = await ztp(dir, 'device', 'list', '--json');
    expect(list.json().map((d: { serial: string }) => d.serial)).toEqual(['SN-1']);
    const human = await ztp(dir, 'device', 'list');
    expect(human.out).toMatch(/SERIAL\s+PROFILE\s+STATE/);
  });

  it('exit codes: not found 3, invalid 4, usage 2', async () => {
    const missing = await ztp(dir, 'device', 'show', 'NOPE', '--json');
    expect(missing.code).toBe(EXIT.NOT_FOUND);
    expect(JSON.parse(missing.err).error.code).toBe('DEVICE_NOT_FOUND');
    expect((await ztp(dir, 'device', 'add', 'bad/serial')).code).toBe(EXIT.INVALID);
    expect((await ztp(dir, 'device', 'frobnicate')).code).toBe(EXIT.USAGE);
    expect((await ztp(dir, 'device', 'add', 'X', '--profile', 'cisco')).code).toBe(EXIT.INVALID);
  });

  it('import reports every bad row, imports nothing, then imports a fixed file', async () => {
    writeFileSync(join(dir, 'bad.csv'), 'serial,profile\nOK-1,opi\n,opi\nOK-2,nonsense\n');
    const bad = await ztp(dir, 'device', 'import', join(dir, 'bad.csv'), '--json');
    expect(bad.code).toBe(EXIT.INVALID);
    expect(JSON.parse(bad.err).error.details.errors.map((e: { row: number }) => e.row)).toEqual([3, 4]);
    expect((await ztp(dir, 'device', 'show', 'OK-1')).code).toBe(EXIT.NOT_FOUND);
    writeFileSync(join(dir, 'good.json'), JSON.stringify({ devices: [{ serial: 'OK-1', profile: 'opi' }, { serial: 'OK-2' }] }));
    const good = await ztp(dir, 'device', 'import', join(dir, 'good.json'), '--json');
    expect(good.json()).toMatchObject({ created: 2 });
    expect((await ztp(dir, 'device', 'import', join(dir, 'good.json'), '--json')).json()).toMatchObject({ unchanged: 2 });
  });

  it('rm is idempotent', async () => {
    expect((await ztp(dir, 'device', 'rm', 'OK-2', '--json')).json()).toEqual({ serial: 'OK-2', removed: true });
    expect((await ztp(dir, 'device', 'rm', 'OK-2', '--json')).json()).toEqual({ serial: 'OK-2', removed: false });
  });

  it('device cert issues an IDevID with the serial in subject serialNumber, key 0600', async () => {
    const out = join(dir, 'id');
    const res = await ztp(dir, 'device', 'cert', 'SN-1', '--out', out, '--json');
    expect(res.code).toBe(EXIT.OK);
    expect(statSync(join(out, 'SN-1.key')).mode & 0o777).toBe(0o600);
    const { X509Certificate } = await import('node:crypto');
    const cert = new X509Certificate(readFileSync(join(out, 'SN-1.crt')));
    expect(cert.subject).toContain('serialNumber=SN-1');
  });

  it('pki init is idempotent and keys are 0600', async () => {
    const res = await ztp(dir, 'pki', 'init', '--json');
    expect(res.json().generated).toEqual([]);
    expect(statSync(join(dir, 'pki', 'owner.key')).mode & 0o777).toBe(0o600);
  });

  it('a bad configuration is exit 2 naming the key', async () => {
    writeFileSync(join(dir, 'bad-config.json'), JSON.stringify({ bootstrap: { port: 'x' } }));
    const res = await ztp(dir, '--config-file', join(dir, 'bad-config.json'), 'config', 'show');
    expect(res.code).toBe(EXIT.USAGE);
    expect(res.err).toContain('bootstrap.port');
  });
});
