// Policy of the bootstrap server: what a given device gets for get-bootstrapping-data
// (RFC 8572 §7.1), and the CMS artefacts around it. Depends on small ports (image resolver,
// PKI material); artefacts that do not change per request are cached by device revision.
import { ZtpError } from '../errors.js';
import type { Device } from '../devices/model.js';
import { certsOnlySignedData, contentInfo, envelope, OID, parseContentInfo, signedData } from '../pki/cms.js';
import { splitPem } from '../pki/lab.js';
import type { SuitePki } from '../pki/material.js';
import { issueVoucher, vendorVoucher } from '../pki/voucher.js';
import { encodeConveyedInformation, type BootImage, type ConveyedInformation } from './conveyed-info.js';
import type { BootstrapOutput, BootstrapRequest, Encoding } from './restconf.js';

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
  const info = plan(device, images);
  const signed = device.signing === 'always' || (device.signing === 'auto' && request.signedDataPreferred && device.profile === 'rfc8572');
  const encrypted = options.encrypt && options.clientCertPem !== undefined && device.profile === 'rfc8572';
  const contentType = device.profile === 'opi' || enc === 'json' ? OID.conveyedInfoJson : OID.conveyedInfoXml;
  return { info, signed, encrypted, contentType };
}

/** Redirect when the record names other bootstrap servers; onboarding otherwise. */
export function plan(device: Device, images: ImageResolver): ConveyedInformation {
  if (device.redirect && device.redirect.length > 0) {
    return {
      kind: 'redirect-information',
      bootstrapServers: device.redirect.map((r) => ({
        address: r.address,
        ...(r.port !== undefined ? { port: r.port } : {}),
        ...(r.trustAnchor ? { trustAnchor: Buffer.from(r.trustAnchor, 'base64') } : {}),
      })),
    };
  }
  const info: ConveyedInformation = { kind: 'onboarding-information' };
  if (device.bootImage) {
    const image = images.resolve(device);
    if (!image) throw new ZtpError('SZTP_INTERNAL', `boot image "${device.bootImage}" of device ${device.serial} is not in the image catalogue`, { details: { serial: device.serial, image: device.bootImage } });
    info.bootImage = image;
  }
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
  decision: Decision;
  /** true when a cached artefact was reused */
  cached: boolean;
}

export class BootstrapResponder {
  private readonly cache = new Map<string, Promise<BootstrapOutput>>();
  private ownerCertificate: Buffer | undefined;
  private readonly cacheSize: number;

  constructor(private readonly deps: ResponderDeps) {
    this.cacheSize = deps.cacheSize ?? 20_000;
  }

  /** The owner certificate CMS: owner cert and chain up to the pinned-domain-cert. */
  ownerCertificateCms(): Buffer {
    this.ownerCertificate ??= certsOnlySignedData([this.deps.pki.owner.certPem]);
    return this.ownerCertificate;
  }

  /** The owner's trust anchor, pinned by lab vouchers: the last certificate of the owner chain. */
  pinnedDomainCertPem(): string {
    const chain = splitPem(this.deps.pki.owner.certPem);
    return chain[chain.length - 1]!;
  }

  async reply(device: Device, request: BootstrapRequest, enc: Encoding, clientCertPem?: string): Promise<BuiltReply> {
    const decision = decide(device, request, enc, this.deps.images, { encrypt: this.deps.encrypt, ...(clientCertPem ? { clientCertPem } : {}) });
    const image = decision.info.kind === 'onboarding-information' ? decision.info.bootImage : undefined;
    // A nonce makes the voucher (and so the reply) unique: never cached.
    const cacheable = !(decision.signed && request.nonce);
    const key = [device.serial, device.revision, enc, decision.signed, decision.encrypted, image?.sha256 ?? '', image?.downloadUris.join(' ') ?? '', decision.encrypted ? (clientCertPem ?? '') : ''].join('|');
    // The certificate matters only when encrypting to it; otherwise one entry serves every connection.
    if (cacheable) {
      const hit = this.cache.get(key);
      if (hit) return { output: await hit, decision, cached: true };
    }
    const built = this.assemble(device, decision, enc, request.nonce, clientCertPem);
    if (cacheable) {
      if (this.cache.size >= this.cacheSize) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(key, built);
      built.catch(() => this.cache.delete(key));
    }
    return { output: await built, decision, cached: false };
  }

  private async assemble(device: Device, decision: Decision, enc: Encoding, nonce: Buffer | undefined, clientCertPem: string | undefined): Promise<BootstrapOutput> {
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
      conveyed = await envelope(innerType, decision.signed ? innerContent(conveyed) : payload, clientCertPem);
    }
    const output: BootstrapOutput = { conveyedInformation: conveyed };
    if (device.profile === 'rfc8572') output.reportingLevel = 'verbose';
    if (decision.signed) {
      output.ownerCertificate = this.ownerCertificateCms();
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
function innerContent(contentInfoDer: Buffer): Buffer {
  return Buffer.from(parseContentInfo(contentInfoDer).content.toBER(false));
}
