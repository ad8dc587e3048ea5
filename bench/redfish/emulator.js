// Benchmark child: the BMC emulator (compiled from src/ into bench/out/redfish-dist by run.js) with
// argv[2] BMCs, one listener each (the client queues per origin, as per real BMC addresses), all
// delays zero, and the project's image server in the same process holding the ISO the BMCs mount.
// Sends {endpoints, imageUrl} over IPC when listening; exits on SIGTERM.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';

const dist = resolve(import.meta.dirname, '../out/redfish-dist');
const { startBmcEmulator, ZERO_TIMING } = await import(join(dist, 'redfish/emulator/index.js'));
const { validateConfig } = await import(join(dist, 'config.js'));
const { openDatabase } = await import(join(dist, 'db/database.js'));
const { DeviceStore } = await import(join(dist, 'devices/store.js'));
const { ImageCatalogue, imagesDirOf } = await import(join(dist, 'images/catalogue.js'));
const { createLogger } = await import(join(dist, 'log.js'));

const count = Number(process.argv[2] ?? 1000);
const dir = mkdtempSync(join(tmpdir(), 'ztp-bench-redfish-'));
const log = createLogger('warn');
const db = openDatabase({ file: join(dir, 'ztp.db') });
const store = new DeviceStore(db);
const config = validateConfig({ dataDir: dir, publicHost: '127.0.0.1', logLevel: 'warn', images: { host: '127.0.0.1', port: 0, tlsPort: 0 } });
const catalogue = new ImageCatalogue(db, imagesDirOf(dir));
catalogue.blobs.ensureDirs();
const iso = Buffer.alloc(4 * 1024 * 1024, 0x5a);
await catalogue.add(Readable.from([iso]), { name: 'installer.iso' });
// the image app itself (the service treats port 0 as disabled), on a kernel-picked port
const { buildImagesApp } = await import(join(dist, 'images/app.js'));
const { DownloadRecorder } = await import(join(dist, 'images/recorder.js'));
const images = await buildImagesApp({ catalogue, store, recorder: new DownloadRecorder(store, log), log, config, scheme: 'http' });
await images.listen({ host: '127.0.0.1', port: 0 });
const imageUrl = `http://127.0.0.1:${images.server.address().port}/images/installer.iso`;

// A BMC mounting an ISO reads its volume descriptors first: two 32 KiB ranges (start and end).
const running = await startBmcEmulator({ count, basePort: 0, timing: ZERO_TIMING, mediaReads: 2, mediaChunkBytes: 32 * 1024, log });
process.send({ endpoints: running.endpoints.map((e) => ({ id: e.id, url: e.rootUrl, username: e.username, password: e.password })), imageUrl });

process.once('SIGTERM', async () => {
  const stats = running.emulator.bmcs.reduce((a, b) => ({ requests: a.requests + b.stats.requests, mounted: a.mounted + b.stats.mounted.length, open: a.open + b.openSessions }), { requests: 0, mounted: 0, open: 0 });
  process.send({ stats }, () => {});
  await running.close();
  await images.close();
  db.close();
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
});
