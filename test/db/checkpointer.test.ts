// WAL checkpoints on a worker thread (issue 12): they move committed pages into the main file off
// the event loop, start only once the WAL grows, and stop cleanly. Polls wait for the worker's
// effect with a generous deadline; nothing here asserts how long anything took.
import Database from 'better-sqlite3';
import { copyFileSync, mkdtempSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { checkpointInBackground } from '../../src/db/checkpointer.js';
import { openDatabase } from '../../src/db/database.js';
import { DeviceStore } from '../../src/devices/store.js';

const dbFile = () => join(mkdtempSync(join(tmpdir(), 'ztp-checkpoint-')), 'ztp.db');

/** Events found in the main database file alone (a copy without its WAL): what was checkpointed. */
function checkpointedEvents(file: string, type: string): number {
  const copy = join(mkdtempSync(join(tmpdir(), 'ztp-checkpoint-copy-')), 'copy.db');
  copyFileSync(file, copy);
  const db = new Database(copy, { readonly: true });
  try {
    // Before the first checkpoint even the schema is only in the WAL.
    const hasEvents = db.prepare(`SELECT count(*) FROM sqlite_schema WHERE name = 'events'`).pluck().get() === 1;
    return hasEvents ? (db.prepare(`SELECT count(*) FROM events WHERE type = ?`).pluck().get(type) as number) : 0;
  } finally {
    db.close();
  }
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (condition()) return;
    await sleep(50);
  }
  throw new Error(`gave up waiting for ${what}`);
}

describe('checkpointInBackground', () => {
  it('does nothing for an in-memory database', async () => {
    const db = openDatabase({ file: ':memory:' });
    const checkpoints = checkpointInBackground(db);
    checkpoints.start();
    expect(checkpoints.started).toBe(false);
    await checkpoints.close();
  });

  it('does not start a worker while the WAL stays small (an idle suite pays no thread)', async () => {
    const db = openDatabase({ file: dbFile() });
    const checkpoints = checkpointInBackground(db, { watchMs: 10 });
    new DeviceStore(db).record({ serial: null, source: 'admin', type: 'small' });
    await sleep(100);
    expect(checkpoints.started).toBe(false);
    // SQLite's own threshold is left as it was.
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
    await checkpoints.close();
    db.close();
  });

  it('starts once the WAL passes its threshold, raises the main connection\'s own threshold, and checkpoints what the main connection committed', async () => {
    const file = dbFile();
    const db = openDatabase({ file });
    const store = new DeviceStore(db);
    const checkpoints = checkpointInBackground(db, { watchMs: 10, intervalMs: 20, startAtWalBytes: 64 * 1024 });
    store.transaction(() => {
      for (let i = 0; i < 500; i++) store.record({ serial: null, source: 'admin', type: 'bulk', data: { pad: 'x'.repeat(200), i } });
    });
    await until(() => checkpoints.started, 'the worker to start');
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(10_000);
    // Committed after the worker started: only the worker can have copied these into the main file.
    for (let i = 0; i < 20; i++) await store.recordCommitted({ serial: null, source: 'bootstrap', type: 'after-start', data: { i } });
    await until(() => checkpointedEvents(file, 'after-start') === 20, 'a background checkpoint');
    await checkpoints.close();
    expect(checkpoints.started).toBe(true);
    db.close();
    const again = openDatabase({ file });
    expect(new DeviceStore(again).eventsAfter(0, 10_000).filter((e) => e.type === 'after-start')).toHaveLength(20);
    again.close();
  });

  it('a worker that fails (its database file gone) is reported once, close() does not hang, and the owner keeps committing with the fallback threshold', async () => {
    const file = dbFile();
    const db = openDatabase({ file });
    const errors: Error[] = [];
    const checkpoints = checkpointInBackground(db, { intervalMs: 10, fallbackPages: 5_000, onError: (err) => errors.push(err) });
    // The owner's connection stays open on the moved file; the worker opens by name and fails.
    renameSync(file, `${file}.moved`);
    checkpoints.start();
    await until(() => errors.length > 0, 'the worker to report its failure');
    expect(errors).toHaveLength(1);
    expect(errors[0]!.message).toMatch(/^background checkpoint: SQLITE_CANTOPEN: /);
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(5_000);
    await checkpoints.close();
    const store = new DeviceStore(db);
    await store.recordCommitted({ serial: null, source: 'admin', type: 'after-failure' });
    expect(store.eventsAfter(0).map((e) => e.type)).toContain('after-failure');
    db.close();
  });

  it('close() is idempotent and leaves the database usable by its owner', async () => {
    const file = dbFile();
    const db = openDatabase({ file });
    const checkpoints = checkpointInBackground(db, { intervalMs: 10 });
    checkpoints.start();
    expect(checkpoints.started).toBe(true);
    await Promise.all([checkpoints.close(), checkpoints.close()]);
    checkpoints.start();
    const store = new DeviceStore(db);
    await store.recordCommitted({ serial: null, source: 'admin', type: 'after-close' });
    expect(store.eventsAfter(0).map((e) => e.type)).toContain('after-close');
    db.close();
  });
});
