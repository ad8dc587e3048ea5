// WAL checkpoints on a thread of their own (issue 12). SQLite's automatic checkpoint runs inside
// the commit that crosses 1,000 WAL pages, on whatever thread committed: for `ztp serve` that is
// the event loop, which then copies the pages into the database file and, with
// synchronous = NORMAL, waits for two fsyncs. Under a fleet's report-progress load that was every
// few group commits, 10–50 ms each (bench/bootstrap: p90 commit 10.8 ms instead of 2.8 ms), and
// every reply in flight waited for it.
//
// Here a worker thread with its own connection runs PASSIVE checkpoints on a timer: PASSIVE never
// waits for, nor blocks, readers or writers; it copies what it can. The main connection keeps a
// far higher automatic threshold as a safety net should the worker stop or fall behind.
// A worker costs ~10 MB of RSS and ~70 ms to start, so it starts only once the database is
// written in earnest (the WAL file passes `startAtWalBytes`, looked at once a second): an idle
// or lightly used suite keeps SQLite's own checkpoints and its start-up time and memory.
// Durability does not change: a transaction is committed once its WAL frames are written; the
// checkpoint only moves committed pages into the main file.
import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { Db } from './database.js';

export interface CheckpointerOptions {
  /** how often the worker checkpoints, ms (default 200) */
  intervalMs?: number;
  /** WAL file size from which checkpoints move to the worker, bytes (default 2 MiB, ~500 pages) */
  startAtWalBytes?: number;
  /** how often the WAL size is looked at until then, ms (default 1000) */
  watchMs?: number;
  /** WAL pages past which a commit on the main connection checkpoints after all (default 10,000, ~40 MB) */
  fallbackPages?: number;
  /** the worker failed (it is not restarted; the fallback threshold bounds the WAL) */
  onError?: (err: Error) => void;
}

export interface Checkpointer {
  /** whether the worker has been started (false until the WAL grew, and for in-memory databases) */
  readonly started: boolean;
  /** Starts the worker now, whatever the WAL size (no-op when started or closed). */
  start(): void;
  /** Stops watching, and the worker after a last checkpoint; resolves when it has exited. */
  close(): Promise<void>;
}

// The worker's whole program: CommonJS evaluated by node:worker_threads, so it runs the same from
// src/ (tests) and dist/. better-sqlite3 is required by the path the main thread resolved.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
// A SqliteError reaches the main thread as a bare {code} (structured clone drops its message):
// rethrown as a plain Error, the owner's log says what failed.
const plain = (fn) => {
  try {
    return fn();
  } catch (e) {
    throw new Error('background checkpoint: ' + (e && e.code ? e.code + ': ' : '') + (e && e.message ? e.message : String(e)));
  }
};
const Database = require(workerData.driver);
const db = plain(() => new Database(workerData.file, { fileMustExist: true }));
db.pragma('busy_timeout = 5000');
db.pragma('synchronous = NORMAL');
// This connection never writes, so it never checkpoints on its own.
db.pragma('wal_autocheckpoint = 0');
const checkpoint = () => plain(() => db.pragma('wal_checkpoint(PASSIVE)'));
const timer = setInterval(checkpoint, workerData.intervalMs);
parentPort.on('message', (m) => {
  if (m !== 'close') return;
  clearInterval(timer);
  try { checkpoint(); } finally { db.close(); parentPort.close(); }
});
`;

const driverPath = createRequire(import.meta.url).resolve('better-sqlite3');

/** Background checkpoints for `db` (a WAL database file), from when its WAL grows. */
export function checkpointInBackground(db: Db, options: CheckpointerOptions = {}): Checkpointer {
  if (db.memory) return { started: false, start() {}, close: async () => {} };
  const walFile = `${db.name}-wal`;
  const startAt = options.startAtWalBytes ?? 2 * 1024 * 1024;
  let worker: Worker | undefined;
  let exited: Promise<void> = Promise.resolve();
  let failed = false;
  let closed = false;

  const start = () => {
    if (worker || closed) return;
    clearInterval(watch);
    const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { driver: driverPath, file: db.name, intervalMs: options.intervalMs ?? 200 }, name: 'sqlite-checkpoint' });
    worker = w;
    // Never what keeps the process alive.
    w.unref();
    exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
    w.on('error', (err) => {
      failed = true;
      options.onError?.(err);
    });
    db.pragma(`wal_autocheckpoint = ${options.fallbackPages ?? 10_000}`);
  };
  const walBytes = () => {
    try {
      return statSync(walFile).size;
    } catch {
      return 0;
    }
  };
  const watch = setInterval(() => walBytes() >= startAt && start(), options.watchMs ?? 1000);
  watch.unref();

  let closing: Promise<void> | undefined;
  return {
    get started() {
      return worker !== undefined;
    },
    start,
    close() {
      closing ??= (async () => {
        closed = true;
        clearInterval(watch);
        if (!worker) return;
        if (!failed) worker.postMessage('close');
        // A worker stuck in a checkpoint (a busy disk) is not waited for past 5 s.
        const timeout = setTimeout(() => void worker!.terminate(), 5000);
        timeout.unref();
        await exited;
        clearTimeout(timeout);
      })();
      return closing;
    },
  };
}
