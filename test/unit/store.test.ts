import { describe, expect, it } from 'vitest';
import { openDatabase, schemaVersion } from '../../src/db/database.js';
import { MIGRATIONS } from '../../src/db/migrations.js';
import { DeviceStore } from '../../src/devices/store.js';
import { importDevices, parseCsv, parseImport } from '../../src/devices/import.js';
import { parseDeviceInput } from '../../src/devices/model.js';
import { nextState } from '../../src/onboarding/state.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const fresh = () => new DeviceStore(openDatabase({ file: ':memory:' }));

describe('database', () => {
  it('migrates to the latest user_version and reopens without re-running', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'ztp-db-')), 'ztp.db');
    const db = openDatabase({ file });
    expect(schemaVersion(db)).toBe(MIGRATIONS.length);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
    const again = openDatabase({ file });
    expect(schemaVersion(again)).toBe(MIGRATIONS.length);
    again.close();
  });

  it('refuses a database from a newer dpu-ztp', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'ztp-db-')), 'ztp.db');
    const db = openDatabase({ file });
    db.pragma(`user_version = ${MIGRATIONS.length + 5}`);
    db.close();
    expect(() => openDatabase({ file })).toThrow(/newer/);
  });

  it('history counts by source and type (for /metrics) are kept by the database for every writer, and seeded on upgrade', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'ztp-db-')), 'ztp.db');
    const groupBy = (db: ReturnType<typeof openDatabase>) => db.prepare('SELECT source, type, count(*) AS n FROM events GROUP BY source, type ORDER BY source, type').all();
    // a database at migration 005 with history already in it
    const old = openDatabase({ file });
    const oldStore = new DeviceStore(old);
    for (let i = 0; i < 5; i++) oldStore.record({ serial: null, source: 'admin', type: 'audit' });
    oldStore.record({ serial: null, source: 'dhcp', type: 'lease' });
    old.exec('DROP TRIGGER events_counted; DROP TABLE event_counts;');
    old.pragma('user_version = 5');
    old.close();
    const db = openDatabase({ file });
    const store = new DeviceStore(db);
    expect(store.eventCounts()).toEqual([{ source: 'admin', type: 'audit', n: 5 }, { source: 'dhcp', type: 'lease', n: 1 }]);
    // the suite's writes (single and group-committed) and another process's connection
    store.record({ serial: null, source: 'dhcp', type: 'lease' });
    await Promise.all([1, 2, 3].map(() => store.recordCommitted({ serial: null, source: 'bootstrap', type: 'progress' })));
    const other = openDatabase({ file });
    new DeviceStore(other).record({ serial: null, source: 'images', type: 'download' });
    other.close();
    expect(store.eventCounts()).toEqual(groupBy(db));
    expect(store.eventCounts()).toContainEqual({ source: 'bootstrap', type: 'progress', n: 3 });
    db.close();
  });

  it('history is append-only: UPDATE and DELETE are refused by the database', () => {
    const db = openDatabase({ file: ':memory:' });
    const store = new DeviceStore(db);
    store.record({ serial: null, source: 'admin', type: 'x' });
    expect(() => db.prepare('UPDATE events SET type = ?').run('y')).toThrow(/append-only/);
    expect(() => db.prepare('DELETE FROM events').run()).toThrow(/append-only/);
  });
});

describe('device registry', () => {
  it('upsert is idempotent and keeps the password hashed', () => {
    const store = fresh();
    expect(store.upsert(parseDeviceInput({ serial: 'S1', password: 'pw', macs: ['AA-BB-CC-DD-EE-FF'] }))).toBe('created');
    expect(store.upsert(parseDeviceInput({ serial: 'S1', password: 'pw', macs: ['aa:bb:cc:dd:ee:ff'] }))).toBe('unchanged');
    expect(store.upsert(parseDeviceInput({ serial: 'S1', profile: 'opi' }))).toBe('updated');
    const d = store.require('S1');
    expect(d.macs).toEqual(['aa:bb:cc:dd:ee:ff']);
    expect(d.profile).toBe('opi');
    expect(store.passwordHashOf('S1')).toMatch(/^scrypt\$/);
    expect(store.checkPassword('S1', 'pw')).toBe(true);
    expect(store.checkPassword('S1', 'nope')).toBe(false);
    expect(store.getByMac('aa:bb:cc:dd:ee:ff')?.serial).toBe('S1');
  });

  it('a MAC belongs to one device only', () => {
    const store = fresh();
    store.upsert({ serial: 'A', macs: ['02:00:00:00:00:01'] });
    expect(() => store.upsert({ serial: 'B', macs: ['02:00:00:00:00:01'] })).toThrow(/already belongs to device A/);
  });

  it.each([
    [{ serial: '../etc' }, 'serial'],
    [{ serial: 'S', profile: 'cisco' }, 'profile'],
    [{ serial: 'S', macs: ['zz'] }, 'macs'],
    [{ serial: 'S', bootImage: 'https://x/img' }, 'bootImageSha256'],
    [{ serial: 'S', bootImageSha256: 'abc' }, 'bootImageSha256'],
    [{ serial: 'S', unknown: 1 }, 'unknown'],
    [{ serial: 'S', redirect: ['host:99999'] }, 'redirect'],
  ])('rejects %j naming %s', (input, field) => {
    expect(() => parseDeviceInput(input)).toThrow(new RegExp(field));
  });

  it('state follows history: dhcp → image → bootstrapping → provisioning → onboarded', () => {
    const store = fresh();
    store.upsert({ serial: 'S' });
    const seq: [string, string, Record<string, unknown>, string][] = [
      ['dhcp', 'lease', {}, 'dhcp-bound'],
      ['images', 'download', { completed: false }, 'dhcp-bound'],
      ['images', 'download', { completed: true }, 'image-fetched'],
      ['bootstrap', 'request', { result: 'ok', response: 'onboarding-information' }, 'bootstrapping'],
      ['bootstrap', 'progress', { progressType: 'boot-image-initiated' }, 'provisioning'],
      ['dhcp', 'lease', {}, 'provisioning'],
      ['bootstrap', 'progress', { progressType: 'config-error' }, 'failed'],
      ['bootstrap', 'progress', { progressType: 'informational' }, 'failed'],
      ['bootstrap', 'request', { result: 'ok', response: 'onboarding-information' }, 'bootstrapping'],
      ['bootstrap', 'progress', { progressType: 'bootstrap-complete' }, 'onboarded'],
    ];
    for (const [source, type, data, expected] of seq) {
      store.record({ serial: 'S', source: source as 'dhcp', type, data });
      expect(store.require('S').state, `${source}:${type} ${JSON.stringify(data)}`).toBe(expected);
    }
    // Replaying the history through the pure function gives the same state.
    const replayed = store.history('S').reduce((s, e) => nextState(s, e), 'registered' as ReturnType<typeof nextState>);
    expect(replayed).toBe('onboarded');
  });
});

describe('device import', () => {
  it('parses RFC 4180 CSV with quotes and CRLF', () => {
    expect(parseCsv('a,b\r\n"x, y","say ""hi"""\n')).toEqual([['a', 'b'], ['x, y', 'say "hi"']]);
  });

  it('imports CSV and JSON idempotently', () => {
    const store = fresh();
    const csv = 'serial,profile,password,macs,redirect\nS1,opi,pw,02:00:00:00:00:01;02:00:00:00:00:02,\nS2,rfc8572,,,bs.lab:9443\n';
    const first = importDevices(store, parseImport(csv), 'test');
    expect(first).toMatchObject({ created: 2, updated: 0, unchanged: 0 });
    expect(store.require('S2').redirect).toEqual([{ address: 'bs.lab', port: 9443 }]);
    expect(importDevices(store, parseImport(csv), 'test')).toMatchObject({ created: 0, unchanged: 2 });
    const json = JSON.stringify([{ serial: 'S3', macs: ['02:00:00:00:00:03'] }]);
    expect(importDevices(store, parseImport(json), 'test').created).toBe(1);
  });

  it('reports every bad row and imports nothing', () => {
    const store = fresh();
    const csv = 'serial,profile,macs\nGOOD,opi,\n../bad,opi,\nGOOD2,weird,\nGOOD,opi,\n';
    try {
      parseImport(csv);
      expect.unreachable();
    } catch (err) {
      const errors = (err as { details: { errors: { row: number }[] } }).details.errors;
      expect(errors.map((e) => e.row)).toEqual([3, 4, 5]);
    }
    expect(store.count()).toBe(0);
  });

  it('a write-time conflict rolls back the whole import', () => {
    const store = fresh();
    store.upsert({ serial: 'OWNER', macs: ['02:00:00:00:00:09'] });
    const rows = parseImport(JSON.stringify([{ serial: 'N1' }, { serial: 'N2', macs: ['02:00:00:00:00:09'] }]));
    expect(() => importDevices(store, rows, 'test')).toThrow(/already belongs/);
    expect(store.get('N1')).toBeUndefined();
  });
});

describe('history listeners', () => {
  it('see committed events only: a rolled-back import announces nothing', () => {
    const store = fresh();
    const seen: string[] = [];
    store.events.on('event', (e: { type: string; serial: string | null }) => seen.push(`${e.serial}:${e.type}`));
    store.upsert({ serial: 'OWNER', macs: ['02:00:00:00:00:09'] });
    expect(seen).toEqual(['OWNER:device-added']);
    const rows = parseImport(JSON.stringify([{ serial: 'N1' }, { serial: 'N2', macs: ['02:00:00:00:00:09'] }]));
    expect(() => importDevices(store, rows, 'test')).toThrow();
    expect(seen).toEqual(['OWNER:device-added']);
    importDevices(store, parseImport(JSON.stringify([{ serial: 'N1' }, { serial: 'N3' }])), 'test');
    expect(seen).toEqual(['OWNER:device-added', 'N1:device-added', 'N3:device-added']);
  });
});

describe('hot-path caches', () => {
  it('cachedByMac remembers misses and forgets them when a device takes the MAC', () => {
    const store = fresh();
    expect(store.cachedByMac('02:00:00:00:00:10')).toBeUndefined();
    store.upsert({ serial: 'LATE', macs: ['02:00:00:00:00:10'] });
    expect(store.cachedByMac('02:00:00:00:00:10')?.serial).toBe('LATE');
    store.upsert({ serial: 'LATE', macs: [] });
    expect(store.cachedByMac('02:00:00:00:00:10')).toBeUndefined();
  });

  it('cached devices follow state changes and updates', () => {
    const store = fresh();
    store.upsert({ serial: 'C' });
    expect(store.cached('C')?.device.state).toBe('registered');
    store.record({ serial: 'C', source: 'dhcp', type: 'lease' });
    expect(store.cached('C')?.device.state).toBe('dhcp-bound');
    store.upsert({ serial: 'C', password: 'x' });
    expect(store.cached('C')?.passwordHash).toMatch(/^scrypt/);
    store.remove('C');
    expect(store.cached('C')).toBeUndefined();
  });
});
