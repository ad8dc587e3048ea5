// Services and admin API routes contributed by the other modules: the DHCP responder, the TFTP
// server and the image upload/catalogue API. Kept apart from suite.ts so each module plugs in one place.
import type { FastifyPluginAsync } from 'fastify';
import type { ApiPlugin, ServiceReadiness } from './api/app.js';
import { dhcpImageResolvers } from './dhcp/image-resolvers.js';
import { createThreadedDhcpService } from './dhcp/threaded.js';
import { imagesApiRoutes } from './images/api.js';
import type { ImageCatalogue } from './images/catalogue.js';
import type { Counters } from './metrics.js';
import type { Service, SuiteContext } from './service.js';
import { createTftpService } from './tftp/service.js';
import type { BmcConnector } from './onboarding/conductor.js';
import { createOnboardingService, type OnboardingService } from './onboarding/service.js';
import { onboardingApiRoutes } from './onboarding/api.js';

export interface Extensions {
  services: Service[];
  apiPlugins: ApiPlugin[];
  /** per-service readiness for the admin API's /readyz */
  readiness: () => Record<string, ServiceReadiness>;
  onboarding: OnboardingService;
}

export function suiteExtensions(ctx: SuiteContext, deps: { catalogue: ImageCatalogue; counters: Counters; bmcConnector?: BmcConnector }): Extensions {
  // The onboarding conductor starts last (after DHCP) and stops first: resumed jobs find every
  // service their devices talk to.
  const onboarding = createOnboardingService(ctx, { catalogue: deps.catalogue, ...(deps.bmcConnector ? { connect: deps.bmcConnector } : {}) });
  // DHCP decides in start() whether it can run (interface set, privileges) and says why not;
  // it waits for a missing or down interface, which readiness reports.
  // DHCP packet handling runs on its own thread by default (dhcp.thread): see src/dhcp/threaded.ts.
  const dhcp = createThreadedDhcpService(ctx, dhcpImageResolvers(ctx.config, ctx.publicHost, deps.catalogue));
  return {
    onboarding,
    services: [
      dhcp,
      // TFTP (off unless tftp.enabled): catalogue images to PXE firmware.
      createTftpService(ctx, { catalogue: deps.catalogue }),
      onboarding,
    ],
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
      {
        prefix: '',
        plugin: onboardingApiRoutes as unknown as FastifyPluginAsync<Record<string, unknown>>,
        options: { conductor: onboarding.conductor, store: ctx.store },
      },
    ],
  };
}
