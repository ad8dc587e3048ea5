// The DHCP responders ask the device registry about every packet's MAC (DeviceStore.cachedByMac),
// so the answer comes from memory: the whole MAC index, reloaded after a registry change made
// through this store, and — since the `ztp device` CLI writes the same database from another
// process — after SQLite's data_version says another connection committed (checked at most
// once a second of the store's clock).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase, type Db } from '../../src/db/database.js';
import { DeviceStore } from '../../src/devices/store.js';

const dirs: string[] = [];
const dbs: Db[] = [];
afterEach(() => {
  while (dbs.length) dbs.pop()!.close();
  while (dirs.length) rmSync(dirs.pop()!, { recursive: true, force: true });
});

function open(file: string): Db {
  const db = openDatabase({ file });
  dbs.push(db);
  return db;
}

describe('DeviceStore.cachedByMac', () => {
  it('answers from memory, sees its own registry changes at once and another process’s within a second', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ztp-inv-'));
    dirs.push(dir);
    const file = join(dir, 'ztp.db');
    let t = Date.parse('2026-01-01T00:00:00Z');
    const clock = { now: () => new Date(t) };
    const serve = new DeviceStore(open(file), clock);
    const cli = new DeviceStore(open(file));

    serve.upsert({ serial: 'SN-A', profile: 'rfc8572', macs: ['02:00:00:00:00:0a'] });
    expect(serve.cachedByMac('02:00:00:00:00:0A')?.serial).toBe('SN-A');
    expect(serve.cachedByMac('02:00:00:00:00:0b')).toBeUndefined();

    // Registered from another connection (the CLI): not visible until the next check...
    cli.upsert({ serial: 'SN-B', profile: 'opi', macs: ['02:00:00:00:00:0b'] });
    t += 500;
    expect(serve.cachedByMac('02:00:00:00:00:0b')).toBeUndefined();
    // ...which notices the foreign commit.
    t += 600;
    expect(serve.cachedByMac('02:00:00:00:00:0b')?.serial).toBe('SN-B');

    // Removed elsewhere: gone after the next check; the device cache starts over too.
    cli.remove('SN-A');
    t += 1100;
    expect(serve.cachedByMac('02:00:00:00:00:0a')).toBeUndefined();
    expect(serve.cachedByMac('02:00:00:00:00:0b')?.profile).toBe('opi');
  });
});
