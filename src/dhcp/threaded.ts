// DHCP off the main event loop (issue 8, "All services share one process"). Measured under a
// 5,000 packets/s flood (bench/dhcp/shared-loop.js): with DHCP on the main thread, the admin API
// and bootstrap server stalls were the main thread waiting for a CPU (runnable, not running: a
// thread that handles every packet uses ~half a core, and the kernel's fair scheduler makes such
// a thread queue behind others on a busy machine, where a mostly idle one is woken at once) and
// young-generation GC pauses driven by the DHCP allocations. On its own thread the DHCP service
// has its own event loop and V8 heap; the HTTP services' thread is mostly idle again.
//
// The main-thread side: a Service that runs src/dhcp/worker.js (the unchanged createDhcpService,
// over its own SQLite connection to the same WAL database) and mirrors its state and counters
// for readiness and metrics. Every history event the worker commits is announced on this
// thread's store (store.announceCommitted), so listeners see DHCP events exactly as before,
// after their commit. If the worker dies, the process does not: the error is logged, readiness
// says so (state waiting) and the worker is restarted with back-off. dhcp.thread = main, an
// in-memory database (tests) or a missing compiled worker (running from the TypeScript sources)
// keep the service on this thread.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Config } from '../config.js';
import type { HistoryEvent } from '../devices/store.js';
import { errorMessage } from '../errors.js';
import type { ListenInfo } from '../service.js';
import { createDhcpService, type DhcpService, type DhcpServiceContext, type DhcpServiceOptions, type DhcpState } from './service.js';

export interface WorkerInit {
  config: Config;
  publicHost: string;
  dbFile: string;
  logLevel: string;
  statusIntervalMs: number;
}

export type ToWorker = { type: 'start' } | { type: 'stop' } | { type: 'crash' };

export type FromWorker =
  | { type: 'status'; state: DhcpState; stats: Record<string, number> }
  | { type: 'started'; listen: ListenInfo[]; state: DhcpState; stats: Record<string, number> }
  | { type: 'start-failed'; message: string; code?: string }
  | { type: 'events'; events: HistoryEvent[] }
  | { type: 'stopped'; state: DhcpState; stats: Record<string, number> };

export interface ThreadedDhcpService extends DhcpService {
  /** 'worker' when packets are handled on the DHCP worker thread */
  readonly thread: 'worker' | 'main';
  /** the running worker (diagnostics, tests) */
  worker(): Worker | undefined;
}

export interface ThreadedDhcpOptions extends Pick<DhcpServiceOptions, 'imageUrlFor' | 'tftpPathFor'> {
  /** the compiled worker module (default: worker.js beside this module) */
  workerUrl?: URL;
  /** back-off between restarts of a worker that died (ms) */
  restart?: { initialMs: number; maxMs: number };
  /** how often the worker reports changed state/counters (ms) */
  statusIntervalMs?: number;
}

const DEFAULT_WORKER = new URL('./worker.js', import.meta.url);
const STOP_TIMEOUT_MS = 10_000;

export function createThreadedDhcpService(ctx: DhcpServiceContext, options: ThreadedDhcpOptions = {}): ThreadedDhcpService {
  const log = ctx.log.child({ service: 'dhcp' });
  const url = options.workerUrl ?? DEFAULT_WORKER;
  const d = ctx.config.dhcp;
  const inProcess = (why: string): ThreadedDhcpService => {
    if (why) log.info({ reason: why }, 'DHCP packet handling on the main thread');
    const svc = createDhcpService(ctx, options);
    return Object.assign(svc, { thread: 'main' as const, worker: () => undefined });
  };
  if (d.thread === 'main') return inProcess('');
  if (!d.interface) return inProcess('');
  if (ctx.db.memory) return inProcess('in-memory database (a worker cannot share it)');
  if (url.protocol === 'file:' && !existsSync(fileURLToPath(url))) return inProcess(`no compiled DHCP worker at ${fileURLToPath(url)} (running from the sources)`);

  const restart = options.restart ?? { initialMs: 1000, maxMs: 30_000 };
  const init: WorkerInit = { config: ctx.config, publicHost: ctx.publicHost, dbFile: ctx.db.name, logLevel: ctx.log.level, statusIntervalMs: options.statusIntervalMs ?? 250 };
  let state: DhcpState = { state: 'stopped', interface: d.interface, since: new Date().toISOString() };
  let stats: Record<string, number> = {};
  let worker: Worker | undefined;
  let exited: Promise<void> = Promise.resolve();
  let stopping = false;
  let backoff = restart.initialMs;
  let restartTimer: NodeJS.Timeout | undefined;
  let restarts = 0;

  const scheduleRestart = () => {
    if (stopping) return;
    clearTimeout(restartTimer);
    restartTimer = setTimeout(() => {
      spawn().then(
        () => {
          backoff = restart.initialMs;
          log.info({ restarts }, 'DHCP worker restarted');
        },
        (err: unknown) => {
          log.error({ err: errorMessage(err) }, 'DHCP worker: restart failed; retrying');
          scheduleRestart();
        },
      );
    }, backoff);
    restartTimer.unref();
    backoff = Math.min(backoff * 2, restart.maxMs);
  };

  const spawn = () =>
    new Promise<ListenInfo[]>((resolve, reject) => {
      const w = new Worker(url, { workerData: init, name: 'dhcp' });
      worker = w;
      /** settled: 'started' or 'start-failed' came; running: 'started' came */
      let settled = false;
      let running = false;
      let lastError = '';
      exited = new Promise<void>((done) => w.once('exit', () => done()));
      w.on('message', (m: FromWorker) => {
        switch (m.type) {
          case 'events':
            // Committed by the worker's connection: the listeners on this thread hear of them now.
            try {
              ctx.store.announceCommitted(m.events);
            } catch (err) {
              log.error({ err: errorMessage(err) }, 'DHCP: a history event listener failed');
            }
            break;
          case 'status':
          case 'stopped':
            state = m.state;
            stats = m.stats;
            break;
          case 'started':
            settled = true;
            running = true;
            state = m.state;
            stats = m.stats;
            resolve(m.listen);
            break;
          case 'start-failed':
            // The caller (start() or a restart) handles it; the exit that follows is no crash.
            settled = true;
            reject(Object.assign(new Error(m.message), m.code ? { code: m.code } : {}));
            void w.terminate();
            break;
        }
      });
      // Without a listener an uncaught exception in the worker would be rethrown here.
      w.on('error', (err) => {
        lastError = errorMessage(err);
        log.error({ err: lastError }, 'DHCP worker failed');
      });
      w.on('exit', (code) => {
        if (worker === w) worker = undefined;
        if (!settled) {
          settled = true;
          reject(new Error(`DHCP worker exited (code ${code}) before it started${lastError ? `: ${lastError}` : ''}`));
          return;
        }
        if (!running || stopping) return;
        restarts++;
        const reason = `DHCP worker exited (code ${code}${lastError ? `: ${lastError}` : ''}); restarting`;
        log.error({ code, restarts, inMs: backoff }, reason);
        state = { state: 'waiting', interface: d.interface, reason, since: new Date().toISOString() };
        scheduleRestart();
      });
      w.postMessage({ type: 'start' } satisfies ToWorker);
    });

  return {
    name: 'dhcp',
    thread: 'worker',
    worker: () => worker,
    stats: () => ({ ...stats }),
    state: () => ({ ...state }),
    async start(): Promise<ListenInfo[]> {
      stopping = false;
      backoff = restart.initialMs;
      const listen = await spawn();
      log.info({ threadId: worker?.threadId }, 'DHCP packet handling on its own worker thread');
      return listen;
    },
    async stop(): Promise<void> {
      stopping = true;
      clearTimeout(restartTimer);
      const w = worker;
      if (w) {
        // The worker flushes its group commit, closes its sockets and database, then exits.
        w.postMessage({ type: 'stop' } satisfies ToWorker);
        let timer: NodeJS.Timeout | undefined;
        const timedOut = await Promise.race([exited.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), STOP_TIMEOUT_MS)))]);
        clearTimeout(timer);
        if (timedOut) {
          log.error({ ms: STOP_TIMEOUT_MS }, 'DHCP worker did not stop in time; terminated');
          await w.terminate();
        }
      }
      worker = undefined;
      if (state.state !== 'disabled') state = { state: 'stopped', interface: d.interface, since: new Date().toISOString() };
    },
  };
}
