// Composition root of `ztp serve`: config → data dir → database → PKI → services → listeners.
// Each service owns its ports; this is the only place that binds them all together.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import { buildApiApp, type ApiPlugin, type ServiceReadiness } from './api/app.js';
import { imageResolver } from './bootstrap/images.js';
import { createBootstrapService } from './bootstrap/service.js';
import type { Config } from './config.js';
import { openDatabase } from './db/database.js';
import { DeviceStore, systemClock, type HistoryEvent } from './devices/store.js';
import { dhcpImageResolvers } from './dhcp/image-resolvers.js';
import { createThreadedDhcpService } from './dhcp/threaded.js';
import { imagesApiRoutes } from './images/api.js';
import { ImageCatalogue, imagesDirOf } from './images/catalogue.js';
import { catalogueImageUrls } from './images/device-urls.js';
import { createImagesService } from './images/service.js';
import type { Logger } from './log.js';
import { Metrics, databaseMetricSources } from './metrics.js';
import { startTelemetry } from './telemetry.js';
import { onboardingApiRoutes } from './onboarding/api.js';
import { publicJob } from './onboarding/jobs.js';
import type { BmcConnector, Conductor } from './onboarding/conductor.js';
import { createOnboardingService } from './onboarding/service.js';
import { ensureLabPki, writeSecretFile } from './pki/lab.js';
import type { ListenInfo, Service, SuiteContext } from './service.js';
import { createTftpService } from './tftp/service.js';

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

/** Calls fn for each committed history event until the returned function is called. */
function watchEvents(store: DeviceStore, fn: (event: HistoryEvent) => void): () => void {
  store.events.on('event', fn);
  return () => store.events.off('event', fn);
}

const asPlugin = (plugin: unknown) => plugin as FastifyPluginAsync<Record<string, unknown>>;

export async function startSuite(config: Config, log: Logger, options: { bmcConnector?: BmcConnector; env?: NodeJS.ProcessEnv } = {}): Promise<Suite> {
  const dataDir = resolve(config.dataDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const db = openDatabase({ file: join(dataDir, 'ztp.db') });
  const store = new DeviceStore(db);
  const publicHost = config.publicHost || hostname();
  const { pki, generated } = await ensureLabPki(dataDir, config.pki, publicHost);
  if (generated.length) log.info({ dir: pki.dir, generated }, 'lab PKI generated');
  const metrics = new Metrics();
  const telemetry = await startTelemetry(options.env ?? process.env, log);
  const ctx: SuiteContext = { config, log, db, store, pki, clock: systemClock, publicHost, metrics, telemetry };
  const catalogue = new ImageCatalogue(db, imagesDirOf(config.dataDir), systemClock);
  const imageUrls = catalogueImageUrls(config, publicHost, catalogue);

  // Start order: bootstrap and images first, then DHCP and TFTP (which hand out their URLs), the
  // onboarding conductor last (its resumed jobs find every service their devices talk to); stop
  // runs in reverse, so the conductor stops first and jobs stay where they are for the next start.
  const services: Service[] = [];
  const images = imageResolver((name, device) => {
    const found = imageUrls(name, device);
    if (!found) return undefined;
    const { entry, url } = found;
    return { url, sha256: entry.sha256, osName: entry.osName, osVersion: entry.osVersion };
  });
  if (config.bootstrap.enabled) services.push(createBootstrapService(ctx, { images }));
  if (config.images.enabled) services.push(createImagesService(ctx, { catalogue }));
  // DHCP decides in start() whether it can run (interface set, privileges) and says why not; it
  // waits for a missing or down interface, which readiness reports. Packet handling runs on its
  // own thread by default (dhcp.thread): see src/dhcp/threaded.ts.
  const dhcp = createThreadedDhcpService(ctx, dhcpImageResolvers(config, publicHost, catalogue));
  services.push(dhcp);
  // TFTP (off unless tftp.enabled): catalogue images to PXE firmware.
  services.push(createTftpService(ctx, { catalogue }));
  const onboarding = createOnboardingService(ctx, { catalogue, ...(options.bmcConnector ? { connect: options.bmcConnector } : {}) });
  services.push(onboarding);
  metrics.readFrom({
    deviceStates: () => store.stateCounts(),
    historyEvents: () => store.eventCounts(),
    dhcpStats: () => dhcp.stats(),
    ...databaseMetricSources(db, systemClock),
  });
  metrics.watchRedfish();
  // Progress reports reach the lab's collector as log records (committed events only).
  const unwatchProgress = telemetry.enabled ? watchEvents(store, (event) => {
    if (event.source !== 'bootstrap' || event.type !== 'progress') return;
    const data = event.data as { progressType?: string; message?: string };
    const failed = (data.progressType ?? '').endsWith('-error');
    telemetry.emitLog(data.message ? `${data.progressType}: ${data.message}` : String(data.progressType), failed ? 'ERROR' : 'INFO', { 'ztp.serial': event.serial ?? '', 'ztp.progress_type': data.progressType ?? '' });
  }) : () => undefined;
  const readiness = (): Record<string, ServiceReadiness> => {
    const s = dhcp.state();
    // With several DHCP interfaces, each one's state too (ready only when every one runs).
    const interfaces = s.interfaces?.map((i) => ({ interface: i.interface, state: i.state, ...(i.reason ? { reason: i.reason } : {}), ...(i.address ? { address: i.address } : {}) }));
    const dhcpReadiness: ServiceReadiness & { interfaces?: typeof interfaces } = { ready: s.state === 'running' || s.state === 'disabled', state: s.state, reason: s.reason, ...(interfaces ? { interfaces } : {}) };
    return { dhcp: dhcpReadiness };
  };

  const { token, file: tokenFile } = adminToken(config);
  if (config.api.enabled) {
    const plugins: ApiPlugin[] = [
      {
        prefix: '',
        plugin: asPlugin(imagesApiRoutes),
        options: { catalogue, store, log: log.child({ service: 'images-api' }), config, publicHost },
      },
      { prefix: '', plugin: asPlugin(onboardingApiRoutes), options: { conductor: onboarding.conductor, store } },
    ];
    const conductor = onboarding.conductor;
    const jobs = conductor ? () => conductor.list().map(publicJob) : undefined; // the dashboard's snapshot
    const api = buildApiApp({ store, log: log.child({ service: 'api' }), token, metrics, plugins, readiness, imageKnown: (name) => catalogue.get(name) !== undefined, ...(jobs ? { jobs } : {}) });
    // The API listens before the conductor starts, so a resumed job's events reach open dashboards.
    services.splice(services.indexOf(onboarding), 0, {
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
    unwatchProgress();
    metrics.close();
    await telemetry.shutdown();
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
  return { ctx, listeners, adminToken: token, adminTokenFile: tokenFile, conductor: onboarding.conductor, stop };
}
