// The conductor as a service of `ztp serve`: started after the other services (it resumes jobs
// whose devices will talk to them), stopped first (jobs stay where they are for the next start).
import type { Device } from '../devices/model.js';
import { ZtpError } from '../errors.js';
import { openBmcSession } from '../redfish/index.js';
import type { ImageCatalogue } from '../images/catalogue.js';
import { catalogueImageUrls } from '../images/device-urls.js';
import type { Service, SuiteContext } from '../service.js';
import { Conductor, type BmcConnector, type ConductorClock } from './conductor.js';
import type { ImageIdentity } from './job.js';
import { WebhookSender, webhookTargets } from './webhooks.js';

export interface OnboardingService extends Service {
  /** undefined when onboarding.enabled is false */
  readonly conductor: Conductor | undefined;
}

const URL_RE = /^[a-z][a-z0-9+.-]*:\/\//i;

/** Where the device's image is, for the BMC (virtual media) or the device (UEFI HTTP boot). */
export function imageResolvers(ctx: Pick<SuiteContext, 'config' | 'publicHost'>, catalogue: ImageCatalogue) {
  const urls = catalogueImageUrls(ctx.config, ctx.publicHost, catalogue);
  return {
    imageUrlFor(device: Device, view: 'bmc' | 'device'): string | undefined {
      if (!device.bootImage) return undefined;
      if (URL_RE.test(device.bootImage)) return device.bootImage;
      return urls(device.bootImage, device, view)?.url;
    },
    imageIdentity(device: Device): ImageIdentity {
      if (!device.bootImage) return { bootImage: null, sha256: null };
      if (URL_RE.test(device.bootImage)) return { bootImage: device.bootImage, sha256: device.bootImageSha256 };
      const entry = catalogue.get(device.bootImage);
      return { bootImage: entry?.name ?? device.bootImage, sha256: entry?.sha256 ?? null };
    },
  };
}

/** A connector for builds or tests that must never reach a BMC: BMC steps fail with this reason. */
export const noBmcClient: BmcConnector = async () => {
  throw new ZtpError('REDFISH_UNSUPPORTED', 'no Redfish client is available in this build');
};

export function createOnboardingService(
  ctx: SuiteContext,
  deps: { catalogue: ImageCatalogue; connect?: BmcConnector; clock?: ConductorClock },
): OnboardingService {
  const settings = ctx.config.onboarding;
  const conductor = settings.enabled
    ? new Conductor({
        store: ctx.store,
        db: ctx.db,
        log: ctx.log,
        settings,
        connect: deps.connect ?? openBmcSession,
        ...(deps.clock ? { clock: deps.clock } : {}),
        observability: ctx,
        ...imageResolvers(ctx, deps.catalogue),
      })
    : undefined;
  const webhooks = new WebhookSender(webhookTargets(settings), ctx.log);
  return {
    name: 'onboarding',
    conductor,
    async start() {
      if (!conductor) ctx.log.info({ service: 'onboarding' }, 'onboarding conductor disabled (onboarding.enabled=false)');
      webhooks.attach(ctx.store);
      if (webhooks.size) ctx.log.info({ service: 'onboarding', receivers: webhooks.size }, 'onboarding webhooks enabled');
      conductor?.start();
      return [];
    },
    async stop() {
      await conductor?.stop();
      webhooks.stop();
    },
  };
}
