// Services and admin API routes contributed by the other modules: the DHCP responder and the
// image upload/catalogue API. Kept apart from suite.ts so each module plugs in one place.
import type { FastifyPluginAsync } from 'fastify';
import type { ApiPlugin, ServiceReadiness } from './api/app.js';
import { createDhcpService } from './dhcp/service.js';
import { imagesApiRoutes } from './images/api.js';
import type { ImageCatalogue } from './images/catalogue.js';
import { imageUrl } from './images/urls.js';
import type { Counters } from './metrics.js';
import type { Service, SuiteContext } from './service.js';

export interface Extensions {
  services: Service[];
  apiPlugins: ApiPlugin[];
  /** per-service readiness for the admin API's /readyz */
  readiness: () => Record<string, ServiceReadiness>;
}

export function suiteExtensions(ctx: SuiteContext, deps: { catalogue: ImageCatalogue; counters: Counters }): Extensions {
  // DHCP decides in start() whether it can run (interface set, privileges) and says why not;
  // it waits for a missing or down interface, which readiness reports.
  const dhcp = createDhcpService(ctx, {
    imageUrlFor: (name, mac) => {
      const entry = deps.catalogue.get(name);
      return entry ? imageUrl(ctx.config, ctx.publicHost, entry, 'device', mac) : undefined;
    },
  });
  return {
    services: [dhcp],
    readiness: () => {
      const s = dhcp.state();
      return { dhcp: { ready: s.state === 'running' || s.state === 'disabled', state: s.state, reason: s.reason } };
    },
    apiPlugins: [
      {
        prefix: '',
        plugin: imagesApiRoutes as unknown as FastifyPluginAsync<Record<string, unknown>>,
        options: { catalogue: deps.catalogue, store: ctx.store, log: ctx.log.child({ service: 'images-api' }), config: ctx.config, publicHost: ctx.publicHost },
      },
    ],
  };
}
