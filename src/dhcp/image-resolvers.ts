// The catalogue lookups the DHCP responder needs (option 67/59 URL, PXE TFTP name), built the
// same way on the main thread and in the DHCP worker (each over its own SQLite connection).
import type { Config } from '../config.js';
import type { ImageCatalogue } from '../images/catalogue.js';
import { catalogueImageUrls } from '../images/device-urls.js';
import { normalizeMac } from '../images/paths.js';
import { tftpPathFor } from '../tftp/paths.js';
import type { DhcpServiceOptions } from './service.js';

export function dhcpImageResolvers(config: Config, publicHost: string, catalogue: ImageCatalogue): Pick<DhcpServiceOptions, 'imageUrlFor' | 'tftpPathFor'> {
  const urls = catalogueImageUrls(config, publicHost, catalogue);
  return {
    imageUrlFor: (name, mac) => urls(name, { serial: '', macs: [mac] })?.url,
    // PXE: the same image by its per-device TFTP name, when the TFTP server can serve it.
    tftpPathFor: (name, mac) => {
      const entry = config.tftp.enabled ? catalogue.get(name) : undefined;
      return entry && !entry.requireClientCert && !config.images.requireClientCert ? tftpPathFor(entry.name, normalizeMac(mac)) : undefined;
    },
  };
}
