// Issue 7: BMC passwords are encrypted at rest (they used to sit as plain JSON in devices.bmc),
// keyed by <dataDir>/secret.key (0600), migrated by 004, and never shown by the CLI or the API.
import Database from 'better-sqlite3';
import { mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildApiApp } from '../../src/api/app.js';
import { EXIT } from '../../src/cli/common.js';
import { main } from '../../src/cli/main.js';
import { openDatabase, schemaVersion } from '../../src/db/database.js';
import { MIGRATIONS } from '../../src/db/migrations.js';
import { SECRET_KEY_FILE, SecretBox } from '../../src/devices/secrets.js';
import { DeviceStore } from '../../src/devices/store.js';
import { isZtpError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';

const SECRET = 'calvin-Zq8-unique-bmc-secret';

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'ztp-secrets-'));
}

/** Every byte SQLite wrote for this database (main file, WAL, shared memory). */
function databaseBytes(dir: string): string {
  return readdirSync(dir)
    .filter((f) => f.startsWith('ztp.db'))
    .map((f) => readFileSync(join(dir, f)).toString('latin1'))
    .join('');
}

async function ztp(dataDir: string, ...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['--data-dir', dataDir, ...args], { out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join(''), err: err.join('') };
}

describe('BMC passwords at rest', () => {
  it('are sealed in the row, open again for the store, and the key file is 0600', () => {
    const dir = tempDir();
    const db = openDatabase({ file: join(dir, 'ztp.db') });
    const store = new DeviceStore(db);
    store.upsert({ serial: 'SN-A', bmc: { address: 'https://bmc-a', username: 'root', password: SECRET } });
    const column = (db.prepare(`SELECT bmc FROM devices WHERE serial = 'SN-A'`).get() as { bmc: string }).bmc;
    expect(column).not.toContain(SECRET);
    expect(JSON.parse(column)).toMatchObject({ address: 'https://bmc-a', username: 'root', passwordSealed: expect.stringMatching(/^v1\./) });
    expect(JSON.parse(column).password).toBeUndefined();
    expect(store.get('SN-A')!.bmc!.password).toBe(SECRET);
    expect(statSync(join(dir, SECRET_KEY_FILE)).mode & 0o777).toBe(0o600);
    db.close();
    // A later process (new handle, same data dir) reads it back.
    const again = new DeviceStore(openDatabase({ file: join(dir, 'ztp.db') }));
    expect(again.get('SN-A')!.bmc!.password).toBe(SECRET);
    expect(databaseBytes(dir)).not.toContain(SECRET);
  });

  it('re-importing without a password keeps the sealed one; the same input twice is unchanged', () => {
    const store = new DeviceStore(openDatabase({ file: ':memory:' }));
    expect(store.upsert({ serial: 'SN-B', bmc: { address: 'https://bmc-b', username: 'root', password: SECRET } })).toBe('created');
    expect(store.upsert({ serial: 'SN-B', bmc: { address: 'https://bmc-b', username: 'root', password: SECRET } })).toBe('unchanged');
    expect(store.upsert({ serial: 'SN-B', bmc: { address: 'https://bmc-b', username: 'root' } })).toBe('unchanged');
    expect(store.get('SN-B')!.bmc!.password).toBe(SECRET);
    store.setBmcPassword('SN-B', 'generated-new-one');
    expect(store.get('SN-B')!.bmc!.password).toBe('generated-new-one');
    expect(store.recentHistory('SN-B', 1)[0]).toMatchObject({ source: 'admin', type: 'device-updated', data: { actor: 'redfish', fields: ['bmc'] } });
    expect(JSON.stringify(store.recentHistory('SN-B'))).not.toContain('generated-new-one');
  });

  it('importing the same inventory (BMC passwords and trust settings) twice: unchanged the second time', async () => {
    const dir = tempDir();
    const file = join(dir, 'inventory.json');
    // Keys after the password: the stored record comes back with the opened password last, and
    // every write seals it under a fresh IV, so neither key order nor ciphertext may decide.
    writeFileSync(file, JSON.stringify({ devices: [
      { serial: 'SN-I1', bmc: { address: 'https://bmc-i1', username: 'root', password: SECRET, insecure: true, systemId: 'Bluefield' } },
      { serial: 'SN-I2', bmc: { password: SECRET + '2', address: 'https://bmc-i2', username: 'admin' } },
    ] }));
    const first = await ztp(dir, 'device', 'import', file, '--json');
    expect(first.code).toBe(EXIT.OK);
    expect(JSON.parse(first.out)).toMatchObject({ created: 2 });
    const second = await ztp(dir, 'device', 'import', file, '--json');
    expect(JSON.parse(second.out)).toMatchObject({ unchanged: 2 });
    expect(JSON.parse(second.out).updated ?? 0).toBe(0);
    expect(second.out + second.err).not.toContain(SECRET);
    const store = new DeviceStore(openDatabase({ file: join(dir, 'ztp.db') }));
    expect(store.history('SN-I1').filter((e) => e.type === 'device-updated')).toEqual([]);
    expect(databaseBytes(dir)).not.toContain(SECRET);
    // A changed password is still an update.
    writeFileSync(file, JSON.stringify({ devices: [{ serial: 'SN-I2', bmc: { password: 'another-one', address: 'https://bmc-i2', username: 'admin' } }] }));
    expect(JSON.parse((await ztp(dir, 'device', 'import', file, '--json')).out)).toMatchObject({ updated: 1 });
    expect(store.get('SN-I2')!.bmc!.password).toBe('another-one');
  });

  it('migration 004 seals the clear passwords an older database holds', () => {
    const dir = tempDir();
    const file = join(dir, 'ztp.db');
    const old = new Database(file);
    for (const m of MIGRATIONS.slice(0, 3)) old.exec(m.sql);
    old.pragma('user_version = 3');
    const now = new Date().toISOString();
    old.prepare(`INSERT INTO devices (serial, profile, bmc, state_changed_at, created_at, updated_at) VALUES (?, 'opi', ?, ?, ?, ?)`)
      .run('SN-OLD', JSON.stringify({ address: 'https://bmc-old', username: 'root', password: SECRET }), now, now, now);
    old.prepare(`INSERT INTO devices (serial, profile, bmc, state_changed_at, created_at, updated_at) VALUES (?, 'opi', ?, ?, ?, ?)`)
      .run('SN-NOPW', JSON.stringify({ address: 'https://bmc-nopw' }), now, now, now);
    old.close();

    const db = openDatabase({ file });
    expect(schemaVersion(db)).toBeGreaterThanOrEqual(4);
    const rows = db.prepare(`SELECT serial, bmc FROM devices ORDER BY serial`).all() as { serial: string; bmc: string }[];
    expect(rows.map((r) => r.bmc).join('')).not.toContain(SECRET);
    const store = new DeviceStore(db);
    expect(store.get('SN-OLD')!.bmc).toMatchObject({ address: 'https://bmc-old', username: 'root', password: SECRET });
    expect(store.get('SN-NOPW')!.bmc).toEqual({ address: 'https://bmc-nopw' });
    db.exec('VACUUM');
    db.close();
    expect(databaseBytes(dir)).not.toContain(SECRET);
  });

  it('a sealed value does not open under another serial or another key', () => {
    // Tamper with the ciphertext itself (editing base64 text can leave the bytes unchanged).
    const flipLastByte = (v: string): string => {
      const parts = v.split('.');
      const ct = Buffer.from(parts[3]!, 'base64url');
      ct[ct.length - 1]! ^= 0x01;
      return [...parts.slice(0, 3), ct.toString('base64url')].join('.');
    };
    const box = SecretBox.ephemeral();
    const sealed = box.seal(SECRET, 'SN-1');
    expect(box.open(sealed, 'SN-1')).toBe(SECRET);
    for (const attempt of [() => box.open(sealed, 'SN-2'), () => SecretBox.ephemeral().open(sealed, 'SN-1'), () => box.open('v1.x.y', 'SN-1'), () => box.open(flipLastByte(sealed), 'SN-1')]) {
      let caught: unknown;
      try {
        attempt();
      } catch (err) {
        caught = err;
      }
      expect(isZtpError(caught, 'SECRETS_UNREADABLE')).toBe(true);
    }
  });

  it('a replaced key file leaves devices listable, the password marked unreadable', () => {
    const dir = tempDir();
    const store = new DeviceStore(openDatabase({ file: join(dir, 'ztp.db') }));
    store.upsert({ serial: 'SN-K', bmc: { address: 'https://bmc-k', username: 'root', password: SECRET } });
    writeFileSync(join(dir, SECRET_KEY_FILE), Buffer.alloc(32, 7).toString('base64'));
    const reopened = new DeviceStore(openDatabase({ file: join(dir, 'ztp.db') }));
    expect(reopened.get('SN-K')!.bmc).toMatchObject({ address: 'https://bmc-k', passwordUnreadable: true });
    expect(reopened.get('SN-K')!.bmc!.password).toBeUndefined();
  });

  it('never reach --json output, human output or the admin API', async () => {
    const dir = tempDir();
    const added = await ztp(dir, 'device', 'add', 'SN-C', '--bmc', 'https://bmc-c', '--bmc-user', 'root', '--bmc-password', SECRET, '--json');
    expect(added.code).toBe(EXIT.OK);
    expect(added.out + added.err).not.toContain(SECRET);
    expect(JSON.parse(added.out).device.bmc).toMatchObject({ address: 'https://bmc-c', username: 'root', hasPassword: true });
    for (const args of [['device', 'show', 'SN-C', '--json'], ['device', 'show', 'SN-C'], ['device', 'list', '--json']]) {
      const r = await ztp(dir, ...args);
      expect(r.code).toBe(EXIT.OK);
      expect(r.out + r.err).not.toContain(SECRET);
      expect(r.out).not.toContain('passwordSealed');
    }
    // An independent reader of the file (the sqlite3 CLI is not installed; strings(1) is not
    // either): the raw bytes of every database file.
    expect(databaseBytes(dir)).not.toContain(SECRET);

    const store = new DeviceStore(openDatabase({ file: join(dir, 'ztp.db') }));
    const app = buildApiApp({ store, log: silentLogger, token: 'tok' });
    for (const url of ['/api/v1/devices', '/api/v1/devices/SN-C']) {
      const res = await app.inject({ method: 'GET', url, headers: { authorization: 'Bearer tok' } });
      expect(res.statusCode).toBe(200);
      expect(res.body).not.toContain(SECRET);
      expect(res.body).not.toContain('passwordSealed');
    }
    await app.close();
  });

  it('the key file is created 0600 even under a permissive umask', () => {
    const dir = tempDir();
    const previous = process.umask(0);
    try {
      SecretBox.forDataDir(dir);
    } finally {
      process.umask(previous);
    }
    expect(statSync(join(dir, SECRET_KEY_FILE)).mode & 0o777).toBe(0o600);
  });

  it('device add takes the BMC trust settings (--bmc-ca, --bmc-fingerprint, --bmc-insecure, --bmc-system) and refuses bad ones', async () => {
    const dir = tempDir();
    const ca = join(dir, 'bmc-ca.pem');
    writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    const fp = 'AB:'.repeat(31) + 'AB';
    const ok = await ztp(dir, 'device', 'add', 'SN-T', '--bmc', 'https://bmc-t:8443', '--bmc-user', 'root', '--bmc-password', SECRET,
      '--bmc-ca', ca, '--bmc-fingerprint', fp, '--bmc-system', 'Bluefield', '--json');
    expect(ok.code).toBe(EXIT.OK);
    const store = new DeviceStore(openDatabase({ file: join(dir, 'ztp.db') }));
    expect(store.get('SN-T')!.bmc).toMatchObject({ caBundle: expect.stringContaining('BEGIN CERTIFICATE'), fingerprint256: 'ab'.repeat(32), systemId: 'Bluefield', password: SECRET });
    const insecure = await ztp(dir, 'device', 'add', 'SN-U', '--bmc', 'https://bmc-u', '--bmc-user', 'root', '--bmc-password', 'x', '--bmc-insecure', '--json');
    expect(JSON.parse(insecure.out).device.bmc.insecure).toBe(true);
    const mode = await ztp(dir, 'device', 'add', 'SN-M', '--bmc', 'https://bmc-m', '--bmc-user', 'root', '--bmc-password', 'x', '--bmc-mode', 'nic', '--json');
    expect(mode.err).toBe('');
    expect(JSON.parse(mode.out).device.bmc.operationMode).toBe('NIC');
    writeFileSync(join(dir, 'not-a-ca'), 'hello');
    for (const bad of [['--bmc-fingerprint', 'abc'], ['--bmc-ca', join(dir, 'not-a-ca')], ['--bmc-mode', 'smart']]) {
      const r = await ztp(dir, 'device', 'add', 'SN-V', '--bmc', 'https://bmc-v', ...bad, '--json');
      expect(r.code).toBe(EXIT.INVALID);
    }
  });
});
