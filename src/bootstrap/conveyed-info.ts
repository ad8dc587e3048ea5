// RFC 8572 §6.1 conveyed information (module ietf-sztp-conveyed-info, yang-data
// "conveyed-information"): redirect-information or onboarding-information, encoded as JSON
// (RFC 7951) or XML per the request. Pure. Profile differences are from SZTP-INTEROP.md:
//
//   rfc8572: os-name/os-version, every download-uri, ports optional.
//   opi:     the Go agent decodes strictly: no os-name/os-version (unknown fields), only
//            download-uri[0] is used, image-verification is required (sha-256, lowercase
//            colon hex), redirect ports must be explicit.
import type { Profile } from '../devices/model.js';
import type { Encoding } from './restconf.js';
import { xmlEscape } from './restconf.js';

export const NS_CONVEYED = 'urn:ietf:params:xml:ns:yang:ietf-sztp-conveyed-info';
const MODULE = 'ietf-sztp-conveyed-info';

export interface BootImage {
  osName?: string;
  osVersion?: string;
  downloadUris: string[];
  /** lowercase hex SHA-256 of the image */
  sha256: string;
}

export interface OnboardingInformation {
  kind: 'onboarding-information';
  bootImage?: BootImage;
  configurationHandling?: 'merge' | 'replace';
  preConfigurationScript?: Buffer;
  configuration?: Buffer;
  postConfigurationScript?: Buffer;
}

export interface RedirectInformation {
  kind: 'redirect-information';
  bootstrapServers: { address: string; port?: number; trustAnchor?: Buffer }[];
}

export type ConveyedInformation = OnboardingInformation | RedirectInformation;

/** RFC 8572 §6.1 hash-value is yang:hex-string: "ab:cd:…" (lowercase, as the OPI agent compares). */
export function hexString(hex: string): string {
  return hex.toLowerCase().match(/../g)!.join(':');
}

/** RFC 8572 §6.1: the default port of a redirect bootstrap-server is 443. */
const DEFAULT_PORT = 443;

function jsonOf(info: ConveyedInformation, profile: Profile): Record<string, unknown> {
  if (info.kind === 'redirect-information') {
    return {
      [`${MODULE}:redirect-information`]: {
        'bootstrap-server': info.bootstrapServers.map((s) => {
          const entry: Record<string, unknown> = { address: s.address };
          const port = s.port ?? (profile === 'opi' ? DEFAULT_PORT : undefined);
          if (port !== undefined) entry.port = port;
          if (s.trustAnchor) entry['trust-anchor'] = s.trustAnchor.toString('base64');
          return entry;
        }),
      },
    };
  }
  const body: Record<string, unknown> = {};
  if (info.bootImage) {
    const image: Record<string, unknown> = {};
    if (profile === 'rfc8572' && info.bootImage.osName) image['os-name'] = info.bootImage.osName;
    if (profile === 'rfc8572' && info.bootImage.osVersion) image['os-version'] = info.bootImage.osVersion;
    image['download-uri'] = profile === 'opi' ? info.bootImage.downloadUris.slice(0, 1) : info.bootImage.downloadUris;
    image['image-verification'] = [{ 'hash-algorithm': `${MODULE}:sha-256`, 'hash-value': hexString(info.bootImage.sha256) }];
    body['boot-image'] = image;
  }
  if (info.preConfigurationScript) body['pre-configuration-script'] = info.preConfigurationScript.toString('base64');
  if (info.configuration) {
    body['configuration-handling'] = info.configurationHandling ?? 'merge';
    body.configuration = info.configuration.toString('base64');
  }
  if (info.postConfigurationScript) body['post-configuration-script'] = info.postConfigurationScript.toString('base64');
  return { [`${MODULE}:onboarding-information`]: body };
}

function xmlOf(info: ConveyedInformation, profile: Profile): string {
  const el = (name: string, value: string) => `<${name}>${xmlEscape(value)}</${name}>`;
  if (info.kind === 'redirect-information') {
    const servers = info.bootstrapServers
      .map((s) => {
        const port = s.port ?? (profile === 'opi' ? DEFAULT_PORT : undefined);
        return `<bootstrap-server>${el('address', s.address)}${port !== undefined ? el('port', String(port)) : ''}${s.trustAnchor ? el('trust-anchor', s.trustAnchor.toString('base64')) : ''}</bootstrap-server>`;
      })
      .join('');
    return `<redirect-information xmlns="${NS_CONVEYED}">${servers}</redirect-information>`;
  }
  let inner = '';
  if (info.bootImage) {
    const b = info.bootImage;
    const uris = profile === 'opi' ? b.downloadUris.slice(0, 1) : b.downloadUris;
    inner +=
      '<boot-image>' +
      (profile === 'rfc8572' && b.osName ? el('os-name', b.osName) : '') +
      (profile === 'rfc8572' && b.osVersion ? el('os-version', b.osVersion) : '') +
      uris.map((u) => el('download-uri', u)).join('') +
      `<image-verification><hash-algorithm>sztp-info:sha-256</hash-algorithm>${el('hash-value', hexString(b.sha256))}</image-verification>` +
      '</boot-image>';
  }
  if (info.preConfigurationScript) inner += el('pre-configuration-script', info.preConfigurationScript.toString('base64'));
  if (info.configuration) {
    inner += el('configuration-handling', info.configurationHandling ?? 'merge');
    inner += el('configuration', info.configuration.toString('base64'));
  }
  if (info.postConfigurationScript) inner += el('post-configuration-script', info.postConfigurationScript.toString('base64'));
  return `<onboarding-information xmlns="${NS_CONVEYED}" xmlns:sztp-info="${NS_CONVEYED}">${inner}</onboarding-information>`;
}

/** The bytes that go inside the CMS (eContent): JSON for .43, XML for .42. */
export function encodeConveyedInformation(info: ConveyedInformation, enc: Encoding, profile: Profile): Buffer {
  return Buffer.from(enc === 'xml' ? xmlOf(info, profile) : JSON.stringify(jsonOf(info, profile)));
}
