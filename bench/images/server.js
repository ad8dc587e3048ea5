// Benchmark child: our image server (compiled from src/ into bench/out/images-dist by run.js),
// serving the files in argv[3] from a temp data dir, plain HTTP on 127.0.0.1:argv[2].
// Catalogue rows are inserted directly (the digests are not computed: hashing GiBs is not
// what is being measured); the files are hard-linked into the content-addressed store.
import { linkSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createHash } from 'node:crypto';

const dist = resolve(import.meta.dirname, '../out/images-dist');
const { validateConfig } = await import(join(dist, 'config.js'));
const { openDatabase } = await import(join(dist, 'db/database.js'));
const { DeviceStore } = await import(join(dist, 'devices/store.js'));
const { createLogger } = await import(join(dist, 'log.js'));
const { ImageCatalogue } = await import(join(dist, 'images/catalogue.js'));
const { buildImagesApp } = await import(join(dist, 'images/app.js'));
const { DownloadRecorder } = await import(join(dist, 'images/recorder.js'));

const [port, filesDir, dataDir] = process.argv.slice(2);
const config = validateConfig({ dataDir, logLevel: 'warn' });
const db = openDatabase({ file: join(dataDir, 'ztp.db') });
const store = new DeviceStore(db);
const log = createLogger('warn');
const catalogue = new ImageCatalogue(db, join(dataDir, 'images'));
catalogue.blobs.ensureDirs();
const now = new Date().toISOString();
for (const name of readdirSync(filesDir)) {
  const sha = createHash('sha256').update(name).digest('hex');
  linkSync(join(filesDir, name), catalogue.pathOf({ sha256: sha }));
  db.prepare('INSERT INTO images (name, sha256, size, created_at, updated_at) VALUES (?, ?, ?, ?, ?)').run(name, sha, statSync(join(filesDir, name)).size, now, now);
}
const recorder = new DownloadRecorder(store, log);
const app = await buildImagesApp({ catalogue, store, recorder, log, config, scheme: 'http' });
await app.listen({ host: '127.0.0.1', port: Number(port) });
process.send?.('ready');
process.on('SIGTERM', async () => {
  await app.close();
  recorder.stop();
  db.close();
  process.exit(0);
});
