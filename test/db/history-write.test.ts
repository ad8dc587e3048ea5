// The history write on the bootstrap hot path (issue 12): group commits through
// recordCommitted, acknowledged only once committed, and the indexes the history readers need.
import Database from 'better-sqlite3';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/database.js';
import { DeviceStore, type HistoryEvent } from '../../src/devices/store.js';
import { JobStore } from '../../src/onboarding/jobs.js';

const dbFile = () => join(mkdtempSync(join(tmpdir(), 'ztp-history-')), 'ztp.db');

describe('recordCommitted (group commit)', () => {
  it('events queued in one turn share one commit and one timestamp, and each is readable by another connection when it resolves', async () => {
    const file = dbFile();
    const store = new DeviceStore(openDatabase({ file }));
    for (let i = 0; i < 5; i++) store.upsert({ serial: `D-${i}`, profile: 'rfc8572' });
    const announced: HistoryEvent[][] = [[]];
    store.events.on('event', (e: HistoryEvent) => announced.at(-1)!.push(e));
    const other = new Database(file, { readonly: true });
    const count = other.prepare(`SELECT count(*) AS n FROM events WHERE source = 'bootstrap'`).pluck();
    const stored = await Promise.all([0, 1, 2, 3, 4].map((i) => store.recordCommitted({ serial: `D-${i}`, source: 'bootstrap', type: 'progress', data: { progressType: 'informational', n: i } })));
    // Resolved ⇒ committed: a second connection sees all of them.
    expect(count.get()).toBe(5);
    expect(new Set(stored.map((e) => e.at)).size).toBe(1);
    expect(stored.map((e) => e.id)).toEqual([...stored.map((e) => e.id)].sort((a, b) => a - b));
    expect(announced[0]!.map((e) => e.id)).toEqual(stored.map((e) => e.id));
    expect(store.history('D-3').at(-1)!.data).toEqual({ progressType: 'informational', n: 3 });
    other.close();
  });

  it('a batch that fails to commit rejects every report in it, announces nothing, and the next batch commits', async () => {
    const store = new DeviceStore(openDatabase({ file: dbFile() }));
    store.upsert({ serial: 'D-1', profile: 'rfc8572' });
    const announced: HistoryEvent[] = [];
    store.events.on('event', (e: HistoryEvent) => announced.push(e));
    const before = store.latestEventId();
    const good = store.recordCommitted({ serial: 'D-1', source: 'bootstrap', type: 'progress', data: {} });
    // The CHECK constraint on source fails the shared transaction.
    const bad = store.recordCommitted({ serial: 'D-1', source: 'nonsense' as never, type: 'progress', data: {} });
    await expect(good).rejects.toThrow(/CHECK/);
    await expect(bad).rejects.toThrow(/CHECK/);
    expect(store.latestEventId()).toBe(before);
    expect(announced).toEqual([]);
    const next = await store.recordCommitted({ serial: 'D-1', source: 'bootstrap', type: 'progress', data: {} });
    expect(next.id).toBeGreaterThan(before);
    expect(announced.map((e) => e.id)).toEqual([next.id]);
  });

  it('a nested transaction that fails rolls back to its savepoint; the outer one commits', () => {
    const store = new DeviceStore(openDatabase({ file: ':memory:' }));
    store.transaction(() => {
      store.record({ serial: null, source: 'admin', type: 'outer' });
      expect(() => store.transaction(() => {
        store.record({ serial: null, source: 'admin', type: 'inner' });
        throw new Error('inner fails');
      })).toThrow('inner fails');
    });
    expect(store.eventsAfter(0).map((e) => e.type)).toEqual(['outer']);
  });

  it('advances the onboarding state within the batch (bootstrapping, then provisioning on a progress report)', async () => {
    const store = new DeviceStore(openDatabase({ file: ':memory:' }));
    store.upsert({ serial: 'D-1', profile: 'rfc8572' });
    const request = await store.recordCommitted({ serial: 'D-1', source: 'bootstrap', type: 'request', data: { rpc: 'get-bootstrapping-data', result: 'ok' } });
    expect(request.stateChange?.to).toBe(store.get('D-1')!.state);
    const [a, b] = await Promise.all([
      store.recordCommitted({ serial: 'D-1', source: 'bootstrap', type: 'progress', data: { progressType: 'bootstrap-initiated' } }),
      store.recordCommitted({ serial: 'D-1', source: 'bootstrap', type: 'progress', data: { progressType: 'bootstrap-complete' } }),
    ]);
    // Each event of the batch sees the state the one before it left.
    const changes = [request, a!, b!].flatMap((e) => (e.stateChange ? [e.stateChange] : []));
    for (let i = 1; i < changes.length; i++) expect(changes[i]!.from).toBe(changes[i - 1]!.to);
    expect(store.get('D-1')!.state).toBe(changes.at(-1)!.to);
    expect(store.get('D-1')!.state).not.toBe('registered');
  });
});

describe('history readers use an index (EXPLAIN QUERY PLAN)', () => {
  // Every statement that reads the history by device: the bootstrap server pays for the
  // events(serial, id) index on every write, so each of these must actually use it.
  const bySerial = [
    `SELECT * FROM events WHERE serial = ? AND id > ? ORDER BY id LIMIT ?`,
    `SELECT * FROM (SELECT * FROM events WHERE serial = ? AND (? = '' OR type = ?) ORDER BY id DESC LIMIT ?) ORDER BY id`,
    `SELECT coalesce(max(id), 0) AS id FROM events WHERE serial = ?`,
  ];

  it('the store and the onboarding jobs read a device history through events_serial, never a scan', () => {
    const db = openDatabase({ file: ':memory:' });
    const store = new DeviceStore(db);
    // The statements the code prepares (not copies): found by their SQL text.
    const sources = (o: object) => Object.values((o as { stmts: Record<string, { source: string }> }).stmts).map((s) => s.source);
    const prepared = [...sources(store), ...sources(new JobStore(db, store))];
    for (const sql of bySerial) expect(prepared).toContain(sql);
    for (const sql of bySerial) {
      const params = ['S', 0, '', '', 10].slice(0, sql.split('?').length - 1);
      const plan = (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[]).map((r) => r.detail).join('\n');
      expect(plan, sql).toMatch(/USING (COVERING )?INDEX events_serial/);
      expect(plan, sql).not.toMatch(/SCAN events(?! USING)/);
    }
  });
});
