// Policy of the bootstrap server: what a given device gets for get-bootstrapping-data
// (RFC 8572 §7.1), and the CMS artefacts around it. Depends on small ports (image resolver,
// PKI material); replies that do not change per request are cached by device revision, encoded
// (the base64 of a signed reply is most of its per-request cost when not cached).
// The CMS code (pkijs) loads on the first reply, not at start: `ztp serve` starts faster and
// smaller when no device calls in (issue 12).
import { ZtpError } from '../errors.js';
import type { Device } from '../devices/model.js';
import { splitPem } from '../pki/lab.js';
import type { SuitePki } from '../pki/material.js';
import type * as Cms from '../pki/cms.js';
import type * as Voucher from '../pki/voucher.js';
import { encodeConveyedInformation, type BootImage, type ConveyedInformation } from './conveyed-info.js';
import { encodeBootstrapOutput, type BootstrapOutput, type BootstrapRequest, type Encoding } from './restconf.js';

/**
 * The eContentTypes decide() chooses between, here so that deciding needs no CMS code
 * (test/unit/responder.test.ts checks them against pki/cms.ts OID).
 *   RFC 8572 §10.3: id-ct-sztpConveyedInfoXML ::= { id-ct 42 }, id-ct-sztpConveyedInfoJSON ::= { id-ct 43 }
 *   RFC 5652 §5.1:  id-signedData ::= { iso(1) member-body(2) us(840) rsadsi(113549) pkcs(1) pkcs7(7) 2 }
 */
export const CONTENT_TYPE = {
  conveyedInfoXml: '1.2.840.113549.1.9.16.1.42',
  conveyedInfoJson: '1.2.840.113549.1.9.16.1.43',
  signedData: '1.2.840.113549.1.7.2',
} as const;

type CmsModules = [typeof Cms, typeof Voucher];
let cmsModules: Promise<CmsModules> | undefined;
/** pki/cms.js and pki/voucher.js, imported once, on first use. */
function cms(): Promise<CmsModules> {
  // A failed import is not remembered: the next reply tries again.
  cmsModules ??= Promise.all([import('../pki/cms.js'), import('../pki/voucher.js')]).catch((err: unknown) => {
    cmsModules = undefined;
    throw err;
  });
  return cmsModules;
}

/** Port: turns a device's boot-image reference into a download URI and digest. */
export interface ImageResolver {
  resolve(device: Device): BootImage | undefined;
}

export interface Decision {
  info: ConveyedInformation;
  signed: boolean;
  encrypted: boolean;
  /** eContentType of the conveyed information */
  contentType: string;
}

/**
 * RFC 8572 §5.2/§7.1 and the profiles: sign when the device asked (signed-data-preferred) or
 * its record says always; never for the opi profile unless forced (the agent cannot parse
 * SignedData). Encrypt only to a device that authenticated with its IDevID certificate.
 */
export function decide(device: Device, request: BootstrapRequest, enc: Encoding, images: ImageResolver, options: { encrypt: boolean; clientCertPem?: string }): Decision {
  return { info: plan(device, images), ...choose(device, request, enc, options) };
}

/** The Decision without its conveyed information: what a cached reply is looked up by. */
function choose(device: Device, request: BootstrapRequest, enc: Encoding, options: { encrypt: boolean; clientCertPem?: string }): Omit<Decision, 'info'> {
  const signed = device.signing === 'always' || (device.signing === 'auto' && request.signedDataPreferred && device.profile === 'rfc8572');
  const encrypted = options.encrypt && options.clientCertPem !== undefined && device.profile === 'rfc8572';
  const contentType = device.profile === 'opi' || enc === 'json' ? CONTENT_TYPE.conveyedInfoJson : CONTENT_TYPE.conveyedInfoXml;
  return { signed, encrypted, contentType };
}

function redirects(device: Device): boolean {
  return !!device.redirect && device.redirect.length > 0;
}

/** The boot image plan() will use (undefined for a redirect or a device without one); throws like plan() when it is missing. */
function bootImageOf(device: Device, images: ImageResolver): BootImage | undefined {
  if (redirects(device) || !device.bootImage) return undefined;
  const image = images.resolve(device);
  if (!image) throw new ZtpError('SZTP_INTERNAL', `boot image "${device.bootImage}" of device ${device.serial} is not in the image catalogue`, { details: { serial: device.serial, image: device.bootImage } });
  return image;
}

/** Redirect when the record names other bootstrap servers; onboarding otherwise. */
export function plan(device: Device, images: ImageResolver, resolved?: BootImage): ConveyedInformation {
  const redirect = device.redirect;
  if (redirect && redirect.length > 0) {
    return {
      kind: 'redirect-information',
      bootstrapServers: redirect.map((r) => ({
        address: r.address,
        ...(r.port !== undefined ? { port: r.port } : {}),
        ...(r.trustAnchor ? { trustAnchor: Buffer.from(r.trustAnchor, 'base64') } : {}),
      })),
    };
  }
  const info: ConveyedInformation = { kind: 'onboarding-information' };
  const image = resolved ?? bootImageOf(device, images);
  if (image) info.bootImage = image;
  if (device.preScript) info.preConfigurationScript = Buffer.from(device.preScript);
  if (device.config) {
    info.configuration = Buffer.from(device.config);
    info.configurationHandling = 'merge';
  }
  if (device.postScript) info.postConfigurationScript = Buffer.from(device.postScript);
  return info;
}

export interface ResponderDeps {
  pki: SuitePki;
  images: ImageResolver;
  encrypt: boolean;
  /** bounded cache of assembled replies */
  cacheSize?: number;
}

export interface BuiltReply {
  output: BootstrapOutput;
  /** output encoded for the wire in the requested encoding (RFC 8572 §7.1 output) */
  body: string;
  /** body as UTF-8 bytes, what goes on the wire (encoded once per cached reply) */
  bytes: Buffer;
  decision: Decision;
  /** true when a cached artefact was reused */
  cached: boolean;
}

interface Assembled {
  output: BootstrapOutput;
  body: string;
  bytes: Buffer;
  decision: Decision;
}

export class BootstrapResponder {
  private readonly cache = new Map<string, Promise<Assembled>>();
  private ownerCertificate: Buffer | undefined;
  private readonly cacheSize: number;

  constructor(private readonly deps: ResponderDeps) {
    this.cacheSize = deps.cacheSize ?? 20_000;
  }

  /** The owner certificate CMS: owner cert and chain up to the pinned-domain-cert. */
  async ownerCertificateCms(): Promise<Buffer> {
    const [{ certsOnlySignedData }] = await cms();
    this.ownerCertificate ??= certsOnlySignedData([this.deps.pki.owner.certPem]);
    return this.ownerCertificate;
  }

  /** The owner's trust anchor, pinned by lab vouchers: the last certificate of the owner chain. */
  pinnedDomainCertPem(): string {
    const chain = splitPem(this.deps.pki.owner.certPem);
    return chain[chain.length - 1]!;
  }

  async reply(device: Device, request: BootstrapRequest, enc: Encoding, clientCertPem?: string): Promise<BuiltReply> {
    // The key is made of what plan() and assemble() read, so a hit needs neither (issue 12: the
    // conveyed information was rebuilt for every request, cached or not). Everything plan() reads
    // from the device record moves its revision; the catalogue's part is the resolved image.
    const chosen = choose(device, request, enc, { encrypt: this.deps.encrypt, ...(clientCertPem ? { clientCertPem } : {}) });
    const image = bootImageOf(device, this.deps.images);
    // A nonce makes the voucher (and so the reply) unique: never cached.
    const cacheable = !(chosen.signed && request.nonce);
    // The certificate matters only when encrypting to it; otherwise one entry serves every connection.
    const key = cacheable
      ? `${device.serial}|${device.revision}|${enc}|${chosen.signed}|${chosen.encrypted}|${image ? `${image.sha256}|${image.downloadUris.join(' ')}|${image.osName ?? ''}|${image.osVersion ?? ''}` : '|||'}|${chosen.encrypted ? (clientCertPem ?? '') : ''}`
      : '';
    if (cacheable) {
      const hit = this.cache.get(key);
      if (hit) return { ...(await hit), cached: true };
    }
    const decision: Decision = { info: plan(device, this.deps.images, image), ...chosen };
    // The key holds the encoding, so the encoded body is cached with the output.
    const built = this.assemble(device, decision, enc, request.nonce, clientCertPem).then((output) => {
      const body = encodeBootstrapOutput(output, enc);
      return { output, body, bytes: Buffer.from(body), decision };
    });
    if (cacheable) {
      if (this.cache.size >= this.cacheSize) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(key, built);
      built.catch(() => this.cache.delete(key));
    }
    return { ...(await built), cached: false };
  }

  private async assemble(device: Device, decision: Decision, enc: Encoding, nonce: Buffer | undefined, clientCertPem: string | undefined): Promise<BootstrapOutput> {
    const [{ contentInfo, envelope, OID, signedData }, { issueVoucher, vendorVoucher }] = await cms();
    const payload = encodeConveyedInformation(decision.info, enc, device.profile);
    let conveyed: Buffer;
    let innerType = decision.contentType;
    if (decision.signed) {
      conveyed = await signedData({ eContentType: decision.contentType, content: payload, signer: this.deps.pki.owner });
      innerType = OID.signedData;
    } else {
      conveyed = contentInfo(decision.contentType, payload);
    }
    if (decision.encrypted && clientCertPem) {
      // Sign-then-encrypt (RFC 8572 §3.1): the EnvelopedData's inner type names what it wraps.
      conveyed = await envelope(innerType, decision.signed ? await innerContent(conveyed) : payload, clientCertPem);
    }
    const output: BootstrapOutput = { conveyedInformation: conveyed };
    if (device.profile === 'rfc8572') output.reportingLevel = 'verbose';
    if (decision.signed) {
      output.ownerCertificate = await this.ownerCertificateCms();
      output.ownershipVoucher = vendorVoucher(this.deps.pki.vouchersDir, device.serial) ??
        (await issueVoucher({ serial: device.serial, pinnedDomainCertPem: this.pinnedDomainCertPem(), masa: this.deps.pki.masa, ...(nonce ? { nonce } : {}) }));
    }
    return output;
  }

  /** Drops cached replies (e.g. after the owner identity or catalogue changed). */
  clear(): void {
    this.cache.clear();
    this.ownerCertificate = undefined;
  }
}

/**
 * RFC 5652 §6.1: with nesting, the encrypted content is the inner content itself (here the
 * SignedData SEQUENCE) and encryptedContentInfo.contentType names it (id-signedData).
 */
async function innerContent(contentInfoDer: Buffer): Promise<Buffer> {
  const [{ parseContentInfo }] = await cms();
  return Buffer.from(parseContentInfo(contentInfoDer).content.toBER(false));
}
