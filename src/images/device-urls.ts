// One place that turns a catalogue image name into the URL a given device is handed: the
// bootstrap server (sZTP boot-image download-uri), the DHCP responder (option 67/59, on the main
// thread or in the DHCP worker) and the onboarding conductor all ask this, so they agree.
import type { Config } from '../config.js';
import type { ImageCatalogue, ImageEntry } from './catalogue.js';
import { deviceImageUrl, type ImageView } from './urls.js';

export interface CatalogueImageUrl {
  entry: ImageEntry;
  url: string;
}

export type CatalogueImageUrls = (name: string, device: { serial: string; macs: string[] }, view?: ImageView) => CatalogueImageUrl | undefined;

export function catalogueImageUrls(config: Config, publicHost: string, catalogue: ImageCatalogue): CatalogueImageUrls {
  return (name, device, view = 'device') => {
    const entry = catalogue.get(name);
    return entry ? { entry, url: deviceImageUrl(config, publicHost, entry, view, device) } : undefined;
  };
}
