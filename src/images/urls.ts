// Public URLs of catalogue images, for the two audiences:
//   bmc    — BMC virtual media. OpenBMC accepts only https:// images (REDFISH.md), so the default
//            is https://<publicHost>:<tlsPort>; images.bmcUrl (ZTP_IMAGES_BMC_URL) overrides it
//            when the BMC network reaches us at another address (or through a proxy).
//   device — what a DPU downloads (sZTP boot-image download-uri): images.deviceUrl
//            (ZTP_IMAGES_DEVICE_URL), else http://<publicHost>:<port> (integrity comes from the
//            conveyed image-verification sha256), or https://<publicHost>:<tlsPort> when plain
//            HTTP is off (port 0) or a client certificate is required (globally or per image).
// With a MAC the URL is the per-device form /by-mac/<mac>/<name>, so downloads are attributed.
import { isIP } from 'node:net';
import type { Config } from '../config.js';
import type { ImageEntry } from './catalogue.js';
import { imagePath, normalizeMac } from './paths.js';

export type ImageView = 'bmc' | 'device';

function hostPart(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

/** Base URL (no trailing slash) for a view. */
export function imagesBaseUrl(config: Config, publicHost: string, view: ImageView, needsTls = false): string {
  const configured = view === 'bmc' ? config.images.bmcUrl : config.images.deviceUrl;
  if (configured) return configured.replace(/\/+$/, '');
  const { port, tlsPort, requireClientCert } = config.images;
  const https = view === 'bmc' || port === 0 || requireClientCert || needsTls;
  return https ? `https://${hostPart(publicHost)}:${tlsPort}` : `http://${hostPart(publicHost)}:${port}`;
}

/**
 * Stable URL of an image. By name unless `by: 'sha256'` is asked (immutable, cache-friendly);
 * with `mac` the per-device form (attributed in the device's history).
 */
export function imageUrl(
  config: Config,
  publicHost: string,
  entry: Pick<ImageEntry, 'name' | 'sha256'> & { requireClientCert?: boolean },
  view: ImageView,
  mac?: string,
  by: 'name' | 'sha256' = 'name',
): string {
  const normalized = mac ? normalizeMac(mac) : undefined;
  const key = by === 'name' ? entry.name : entry.sha256;
  return imagesBaseUrl(config, publicHost, view, entry.requireClientCert === true) + imagePath(by, key, normalized ? { mac: normalized } : undefined);
}

/**
 * The URL handed to one device's BMC or firmware: per device by MAC (the device's first), else by
 * serial, so the image server attributes every read to that device. URL images (not in the
 * catalogue) are handed as they are.
 */
export function deviceImageUrl(
  config: Config,
  publicHost: string,
  entry: Pick<ImageEntry, 'name' | 'sha256'> & { requireClientCert?: boolean },
  view: ImageView,
  device: { serial: string; macs: string[] },
): string {
  const mac = device.macs[0];
  if (mac) return imageUrl(config, publicHost, entry, view, mac);
  return imagesBaseUrl(config, publicHost, view, entry.requireClientCert === true) + imagePath('name', entry.name, { serial: device.serial });
}
