// Services and admin API routes contributed by the other modules (image upload API, DHCP).
import type { ApiPlugin } from './api/app.js';
import type { ImageCatalogue } from './images/catalogue.js';
import type { Counters } from './metrics.js';
import type { Service, SuiteContext } from './service.js';

export interface Extensions {
  services: Service[];
  apiPlugins: ApiPlugin[];
}

export function suiteExtensions(_ctx: SuiteContext, _deps: { catalogue: ImageCatalogue; counters: Counters }): Extensions {
  return { services: [], apiPlugins: [] };
}
