// Composition root of `ztp serve`: config → data dir → database → PKI → services → listeners.
// Each service owns its ports; this is the only place that binds them all together.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { buildApiApp, type ApiPlugin } from './api/app.js';
import { imageResolver } from './bootstrap/images.js';
import { createBootstrapService } from './bootstrap/service.js';
import type { Config } from './config.js';
import { openDatabase } from './db/database.js';
import { DeviceStore, systemClock } from './devices/store.js';
import { ImageCatalogue, imagesDirOf } from './images/catalogue.js';
import { createImagesService } from './images/service.js';
import { deviceImageUrl } from './images/urls.js';
import type { BmcConnector, Conductor } from './onboarding/conductor.js';
import type { Logger } from './log.js';
import { Counters } from './metrics.js';
import { ensureLabPki, writeSecretFile } from './pki/lab.js';
import type { ListenInfo, Service, SuiteContext } from './service.js';
import { suiteExtensions } from './suite-extensions.js';

export interface Suite {
  ctx: SuiteContext;
  listeners: ListenInfo[];
  adminToken: string;
  /** where the admin token is kept when generated, '' when it came from config */
  adminTokenFile: string;
  /** the onboarding conductor (undefined when onboarding.enabled is false) */
  conductor: Conductor | undefined;
  stop(): Promise<void>;
}

/** The admin token: from config, else generated once into <dataDir>/admin-token (0600). */
export function adminToken(config: Config): { token: string; file: string } {
  if (config.api.token) return { token: config.api.token, file: '' };
  const file = join(resolve(config.dataDir), 'admin-token');
  if (existsSync(file)) return { token: readFileSync(file, 'utf8').trim(), file };
  const token = randomBytes(24).toString('base64url');
  writeSecretFile(file, token + '\n');
  return { token, file };
}

export async function startSuite(config: Config, log: Logger, options: { bmcConnector?: BmcConnector } = {}): Promise<Suite> {
  const dataDir = resolve(config.dataDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const db = openDatabase({ file: join(dataDir, 'ztp.db') });
  const store = new DeviceStore(db);
  const publicHost = config.publicHost || hostname();
  const { pki, generated } = await ensureLabPki(dataDir, config.pki, publicHost);
  if (generated.length) log.info({ dir: pki.dir, generated }, 'lab PKI generated');
  const ctx: SuiteContext = { config, log, db, store, pki, clock: systemClock, publicHost };
  const counters = new Counters();
  const catalogue = new ImageCatalogue(db, imagesDirOf(config.dataDir), systemClock);

  const services: Service[] = [];
  const images = imageResolver((name, device) => {
    const entry = catalogue.get(name);
    if (!entry) return undefined;
    return { url: deviceImageUrl(config, publicHost, entry, 'device', device), sha256: entry.sha256, osName: entry.osName, osVersion: entry.osVersion };
  });
  if (config.bootstrap.enabled) services.push(createBootstrapService(ctx, { images, counters }));
  if (config.images.enabled) services.push(createImagesService(ctx, { catalogue }));
  const extensions = suiteExtensions(ctx, { catalogue, counters, ...(options.bmcConnector ? { bmcConnector: options.bmcConnector } : {}) });
  services.push(...extensions.services);

  const { token, file: tokenFile } = adminToken(config);
  if (config.api.enabled) {
    const plugins: ApiPlugin[] = extensions.apiPlugins;
    const api = buildApiApp({ store, log: log.child({ service: 'api' }), token, counters, plugins, readiness: extensions.readiness, imageKnown: (name) => catalogue.get(name) !== undefined });
    services.push({
      name: 'api',
      async start() {
        await api.listen({ host: config.api.host, port: config.api.port });
        const address = api.server.address();
        const port = typeof address === 'object' && address ? address.port : config.api.port;
        return [{ service: 'api', protocol: 'http', address: config.api.host, port, url: `http://${publicHost}:${port}/` }];
      },
      stop: () => api.close(),
    });
  }

  const started: Service[] = [];
  const listeners: ListenInfo[] = [];
  const stop = async () => {
    for (const service of started.reverse()) {
      try {
        await service.stop();
      } catch (err) {
        log.error({ err, service: service.name }, 'service did not stop cleanly');
      }
    }
    db.close();
  };
  try {
    for (const service of services) {
      const infos = await service.start();
      started.push(service);
      listeners.push(...infos);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { ctx, listeners, adminToken: token, adminTokenFile: tokenFile, conductor: extensions.onboarding.conductor, stop };
}
