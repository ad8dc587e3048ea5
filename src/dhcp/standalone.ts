// Runs the DHCP service alone: `node dist/dhcp/standalone.js --config FILE [--public-host H]`.
// Used by the namespace tests and bench/dhcp (the server must run inside a network namespace,
// so it is a child process started with `ip netns exec`). Prints one JSON line {"ready":…}
// on stdout when listening, logs (pino JSON) on stderr, stops cleanly on SIGTERM/SIGINT.
import { join, resolve } from 'node:path';
import { loadConfig } from '../config.js';
import { openDatabase } from '../db/database.js';
import { DeviceStore, systemClock } from '../devices/store.js';
import { createLogger } from '../log.js';
import pino from 'pino';
import { createDhcpService } from './service.js';

const args = process.argv.slice(2);
const arg = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const config = loadConfig({ file: arg('--config') });
const db = openDatabase({ file: join(resolve(config.dataDir), 'ztp.db') });
const store = new DeviceStore(db);
const log = createLogger(config.logLevel, pino.destination({ fd: 2, sync: true }));
const service = createDhcpService({ config, log, db, store, clock: systemClock, publicHost: arg('--public-host') ?? config.publicHost });
const listen = await service.start();
process.stdout.write(JSON.stringify({ ready: true, listen }) + '\n');
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await service.stop();
  process.stdout.write(JSON.stringify({ stopped: true, stats: service.stats() }) + '\n');
  db.close();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
