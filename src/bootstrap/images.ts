// Adapter from a device's boot-image reference to RFC 8572 boot-image fields: an absolute URL
// with the digest from the device record, or a catalogue image name looked up in the catalogue.
import type { Device } from '../devices/model.js';
import type { BootImage } from './conveyed-info.js';
import type { ImageResolver } from './responder.js';

export interface CatalogueLookup {
  /** download URI (device view) and digest of a catalogue image by name, for this device */
  (name: string, device: Device): { url: string; sha256: string; osName?: string | null; osVersion?: string | null } | undefined;
}

export function imageResolver(lookup: CatalogueLookup | undefined): ImageResolver {
  return {
    resolve(device: Device): BootImage | undefined {
      const ref = device.bootImage;
      if (!ref) return undefined;
      const named = /^[a-z][a-z0-9+.-]*:\/\//i.test(ref) ? undefined : lookup?.(ref, device);
      const image: BootImage | undefined = named
        ? { downloadUris: [named.url], sha256: named.sha256, ...(named.osName ? { osName: named.osName } : {}), ...(named.osVersion ? { osVersion: named.osVersion } : {}) }
        : /^[a-z][a-z0-9+.-]*:\/\//i.test(ref) && device.bootImageSha256
          ? { downloadUris: [ref], sha256: device.bootImageSha256 }
          : undefined;
      if (!image) return undefined;
      // The device record's OS name/version win over the catalogue's.
      if (device.osName) image.osName = device.osName;
      if (device.osVersion) image.osVersion = device.osVersion;
      return image;
    },
  };
}
