// The DHCP worker thread (issue 8, "All services share one process"): the whole DHCP service —
// sockets, responders, lease tables, group commit — on its own thread, event loop and V8 heap,
// over its own SQLite connection to the suite's database. The main thread (src/dhcp/threaded.ts)
// starts and stops it; this side reports its state and counters, and forwards every history
// event it committed so the main thread's store listeners (onboarding conductor, webhooks, the
// event stream) hear of it as before.
import { parentPort, workerData } from 'node:worker_threads';
import { openDatabase } from '../db/database.js';
import { DeviceStore, systemClock, type HistoryEvent } from '../devices/store.js';
import { errorMessage } from '../errors.js';
import { ImageCatalogue, imagesDirOf } from '../images/catalogue.js';
import { createLogger } from '../log.js';
import { dhcpImageResolvers } from './image-resolvers.js';
import { createDhcpService } from './service.js';
import type { FromWorker, ToWorker, WorkerInit } from './threaded.js';

const port = parentPort;
if (!port) throw new Error('src/dhcp/worker.js runs as a worker thread (createThreadedDhcpService)');
const init = workerData as WorkerInit;
const post = (m: FromWorker) => port.postMessage(m);
const log = createLogger(init.logLevel).child({ thread: 'dhcp' });
const db = openDatabase({ file: init.dbFile });
const store = new DeviceStore(db);
const catalogue = new ImageCatalogue(db, imagesDirOf(init.config.dataDir), systemClock);
const service = createDhcpService({ config: init.config, log, db, store, clock: systemClock, publicHost: init.publicHost }, dhcpImageResolvers(init.config, init.publicHost, catalogue));

// A commit announces its events synchronously, one by one: one message per commit.
let outbox: HistoryEvent[] = [];
store.events.on('event', (e: HistoryEvent) => {
  if (outbox.push(e) === 1) {
    queueMicrotask(() => {
      const events = outbox;
      outbox = [];
      post({ type: 'events', events });
    });
  }
});

let lastStatus = '';
const status = () => {
  const m: FromWorker = { type: 'status', state: service.state(), stats: service.stats() };
  const text = JSON.stringify(m);
  if (text !== lastStatus) {
    lastStatus = text;
    post(m);
  }
};
const statusTimer = setInterval(status, init.statusIntervalMs);

port.on('message', (m: ToWorker) => {
  if (m.type === 'start') {
    service.start().then(
      (listen) => post({ type: 'started', listen, state: service.state(), stats: service.stats() }),
      (err: unknown) => post({ type: 'start-failed', message: errorMessage(err), code: (err as NodeJS.ErrnoException).code }),
    );
  } else if (m.type === 'stop') {
    clearInterval(statusTimer);
    void service
      .stop()
      .catch((err: unknown) => log.error({ err: errorMessage(err) }, 'DHCP worker: service did not stop cleanly'))
      .finally(() => {
        db.close();
        post({ type: 'stopped', state: service.state(), stats: service.stats() });
        port.close();
      });
  } else if (m.type === 'crash') {
    // Diagnostics (and the test that the main thread survives it): an uncaught exception here.
    setImmediate(() => {
      throw new Error('DHCP worker: crash requested');
    });
  }
});
