// CMS (RFC 5652) artefacts of RFC 8572 §3: conveyed information (unsigned, signed,
// encrypted), owner-certificate and trust-anchor bundles (degenerate SignedData), and the
// parsing/verification an RFC-faithful device does. Encodings are DER with a *primitive*
// eContent OCTET STRING, which the OPI agent requires (SZTP-INTEROP.md "CMS encoding").
import { createHash, createPrivateKey, webcrypto } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { ZtpError } from '../errors.js';
import { importSigningKey, splitPem } from './lab.js';
import type { PemKeyPair } from './material.js';

pkijs.setEngine('node', new pkijs.CryptoEngine({ name: 'node', crypto: webcrypto as unknown as Crypto }));

export const OID = {
  data: '1.2.840.113549.1.7.1',
  signedData: '1.2.840.113549.1.7.2',
  envelopedData: '1.2.840.113549.1.7.3',
  /** RFC 8572 §10.3 id-ct-sztpConveyedInfoXML */
  conveyedInfoXml: '1.2.840.113549.1.9.16.1.42',
  /** RFC 8572 §10.3 id-ct-sztpConveyedInfoJSON */
  conveyedInfoJson: '1.2.840.113549.1.9.16.1.43',
  /** RFC 8366 §8.3 id-ct-animaJSONVoucher */
  voucherJson: '1.2.840.113549.1.9.16.1.40',
  attrContentType: '1.2.840.113549.1.9.3',
  attrMessageDigest: '1.2.840.113549.1.9.4',
  attrSigningTime: '1.2.840.113549.1.9.5',
} as const;

function toArrayBuffer(buf: Uint8Array): ArrayBuffer {
  return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
}

function pemToCertificate(pem: string): pkijs.Certificate {
  const b64 = pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
  try {
    return pkijs.Certificate.fromBER(toArrayBuffer(Buffer.from(b64, 'base64')));
  } catch (err) {
    throw new ZtpError('PKI_INVALID_CERT', 'certificate could not be parsed', { cause: err });
  }
}

export function certificateToPem(cert: pkijs.Certificate): string {
  const b64 = Buffer.from(cert.toSchema().toBER(false)).toString('base64');
  return `-----BEGIN CERTIFICATE-----\n${b64.match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`;
}

/**
 * ContentInfo ::= SEQUENCE { contentType OID, content [0] EXPLICIT OCTET STRING }
 * (RFC 5652 §3). Unsigned conveyed information is exactly this with contentType .43 or .42.
 */
export function contentInfo(contentType: string, content: Uint8Array): Buffer {
  const info = new asn1js.Sequence({
    value: [
      new asn1js.ObjectIdentifier({ value: contentType }),
      new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 0 }, value: [new asn1js.OctetString({ valueHex: toArrayBuffer(content) })] }),
    ],
  });
  return Buffer.from(info.toBER(false));
}

function wrapContentInfo(contentType: string, content: asn1js.BaseBlock): Buffer {
  return Buffer.from(new pkijs.ContentInfo({ contentType, content }).toSchema().toBER(false));
}

/** DER orders SET OF by encoding (X.690 §11.6); openssl re-encodes signedAttrs that way to verify. */
function derSortAttributes(attributes: pkijs.Attribute[]): pkijs.Attribute[] {
  const encoded = attributes.map((a) => ({ a, der: Buffer.from(a.toSchema().toBER(false)) }));
  encoded.sort((x, y) => Buffer.compare(x.der, y.der));
  return encoded.map((e) => e.a);
}

/** DER SET OF certificates is sorted by encoding too (openssl re-encodes byte-identically then). */
function derSortCertificates(certs: pkijs.Certificate[]): pkijs.Certificate[] {
  return certs
    .map((c) => ({ c, der: Buffer.from(c.toSchema().toBER(false)) }))
    .sort((x, y) => Buffer.compare(x.der, y.der))
    .map((e) => e.c);
}

/** A small map that forgets everything when full: keys are PEM material, which changes only on rotation. */
function boundedCache<V>(limit = 32): { get(key: string, make: () => V): V; clear(): void } {
  const map = new Map<string, V>();
  return {
    get(key, make) {
      let value = map.get(key);
      if (value === undefined) {
        if (map.size >= limit) map.clear();
        value = make();
        map.set(key, value);
      }
      return value;
    },
    clear: () => map.clear(),
  };
}

const keyCache = boundedCache<Promise<CryptoKey>>();
function signingKey(pem: string): Promise<CryptoKey> {
  return keyCache.get(pem, () => importSigningKey(pem));
}

/** DER tag-length-value (X.690 §8.1.3: short form below 128, else long form, minimal octets). */
function derTlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  let header: Buffer;
  if (n < 0x80) header = Buffer.from([tag, n]);
  else {
    const len: number[] = [];
    for (let v = n; v > 0; v = Math.floor(v / 256)) len.unshift(v & 0xff);
    header = Buffer.from([tag, 0x80 | len.length, ...len]);
  }
  return Buffer.concat([header, content]);
}

interface SignerChain {
  /** the signer's certificate (first in the PEM), for the SignerInfo's issuerAndSerialNumber */
  signerCert: pkijs.Certificate;
  /** `certificates [0] IMPLICIT CertificateSet` (RFC 5652 §5.1), DER-sorted, encoded once */
  certificatesField: Buffer;
}

/**
 * The parsed chain and its encoded certificate SET, per certificate PEM: they do not change per
 * reply, and parsing + sorting + re-encoding them was about a quarter of an uncached signed reply.
 */
const chainCache = boundedCache<SignerChain>();
let chainParses = 0;
function signerChain(certPem: string): SignerChain {
  return chainCache.get(certPem, () => {
    chainParses++;
    const certs = splitPem(certPem).map(pemToCertificate);
    const signerCert = certs[0];
    if (!signerCert) throw new ZtpError('PKI_MISSING_MATERIAL', 'signer certificate missing');
    const sortedDer = certs.map((c) => Buffer.from(c.toSchema().toBER(false))).sort(Buffer.compare);
    return { signerCert, certificatesField: derTlv(0xa0, Buffer.concat(sortedDer)) };
  });
}

/** For tests: how many times a signer chain was parsed, and a way to start cold. */
export const signerChainCache = {
  parses: (): number => chainParses,
  clear: (): void => {
    chainCache.clear();
    keyCache.clear();
  },
};

export interface SignOptions {
  eContentType: string;
  content: Uint8Array;
  /** signer certificate first, then its chain (all included in `certificates`) */
  signer: PemKeyPair;
  signingTime?: Date;
}

/** SignedData (RFC 5652 §5) with signed attributes, DER, primitive eContent. */
export async function signedData(options: SignOptions): Promise<Buffer> {
  const chain = signerChain(options.signer.certPem);
  const key = await signingKey(options.signer.keyPem);
  const digest = createHash('sha256').update(options.content).digest();
  const attributes = derSortAttributes([
    new pkijs.Attribute({ type: OID.attrContentType, values: [new asn1js.ObjectIdentifier({ value: options.eContentType })] }),
    new pkijs.Attribute({ type: OID.attrSigningTime, values: [new asn1js.UTCTime({ valueDate: options.signingTime ?? new Date() })] }),
    new pkijs.Attribute({ type: OID.attrMessageDigest, values: [new asn1js.OctetString({ valueHex: toArrayBuffer(digest) })] }),
  ]);
  const { signerCert } = chain;
  // eContent and certificates are left out here and spliced in below as bytes: the signature
  // covers only the signed attributes (RFC 5652 §5.4), and asn1js copying the content and the
  // chain into a tree to serialise it again was most of the remaining cost.
  const signed = new pkijs.SignedData({
    version: 1,
    encapContentInfo: new pkijs.EncapsulatedContentInfo({ eContentType: options.eContentType }),
    signerInfos: [
      new pkijs.SignerInfo({
        version: 1,
        sid: new pkijs.IssuerAndSerialNumber({ issuer: signerCert.issuer, serialNumber: signerCert.serialNumber }),
        signedAttrs: new pkijs.SignedAndUnsignedAttributes({ type: 0, attributes }),
      }),
    ],
  });
  await signed.sign(key, 0, 'SHA-256');
  // SignedData ::= SEQUENCE { version, digestAlgorithms, encapContentInfo, certificates [0], signerInfos }
  const fields = (signed.toSchema(true) as asn1js.Sequence).valueBlock.value.map((f) => Buffer.from(f.toBER(false)));
  const [version, digestAlgorithms, , signerInfos] = fields;
  if (fields.length !== 4 || !version || !digestAlgorithms || !signerInfos) throw new ZtpError('SZTP_INTERNAL', 'unexpected SignedData shape from pkijs');
  // EncapsulatedContentInfo ::= SEQUENCE { eContentType, eContent [0] EXPLICIT OCTET STRING }, primitive.
  const eContentType = Buffer.from(new asn1js.ObjectIdentifier({ value: options.eContentType }).toBER(false));
  const encap = derTlv(0x30, Buffer.concat([eContentType, derTlv(0xa0, derTlv(0x04, Buffer.from(options.content)))]));
  const signedDer = derTlv(0x30, Buffer.concat([version, digestAlgorithms, encap, chain.certificatesField, signerInfos]));
  // ContentInfo ::= SEQUENCE { contentType, content [0] EXPLICIT } (RFC 5652 §3), encoded around the bytes.
  return derTlv(0x30, Buffer.concat([signedDataOid, derTlv(0xa0, signedDer)]));
}

const signedDataOid = Buffer.from(new asn1js.ObjectIdentifier({ value: OID.signedData }).toBER(false));

/** Degenerate SignedData holding only certificates (RFC 8572 owner-certificate, trust-anchor). */
export function certsOnlySignedData(certPems: string[]): Buffer {
  const signed = new pkijs.SignedData({
    version: 1,
    encapContentInfo: new pkijs.EncapsulatedContentInfo({ eContentType: OID.data }),
    certificates: derSortCertificates(certPems.flatMap(splitPem).map(pemToCertificate)),
  });
  return wrapContentInfo(OID.signedData, signed.toSchema(true));
}

/** EnvelopedData (RFC 5652 §6) to one recipient certificate: EC (kari) or RSA (ktri). */
export async function envelope(innerContentType: string, content: Uint8Array, recipientCertPem: string): Promise<Buffer> {
  const cert = pemToCertificate(splitPem(recipientCertPem)[0] ?? recipientCertPem);
  const isEc = cert.subjectPublicKeyInfo.algorithm.algorithmId === '1.2.840.10045.2.1';
  const enveloped = new pkijs.EnvelopedData({ disableSplit: true });
  enveloped.addRecipientByCertificate(cert, isEc ? { kdfAlgorithm: 'SHA-256', kekEncryptionLength: 256 } : { oaepHashAlgorithm: 'SHA-256' }, isEc ? 2 : 1);
  await enveloped.encrypt({ name: 'AES-CBC', length: 256 } as AesKeyAlgorithm, toArrayBuffer(content));
  enveloped.encryptedContentInfo.contentType = innerContentType;
  return wrapContentInfo(OID.envelopedData, enveloped.toSchema());
}

export interface ParsedContentInfo {
  contentType: string;
  /** the [0] content element */
  content: asn1js.BaseBlock;
}

/** Parses a ContentInfo strictly: trailing bytes, wrong shapes and garbage are CMS_MALFORMED. */
export function parseContentInfo(der: Uint8Array): ParsedContentInfo {
  if (der.byteLength === 0) throw new ZtpError('CMS_MALFORMED', 'empty CMS');
  let parsed: ReturnType<typeof asn1js.fromBER>;
  try {
    parsed = asn1js.fromBER(toArrayBuffer(der));
  } catch (err) {
    // asn1js throws plain RangeErrors on some malformed strings (found by the property test).
    throw new ZtpError('CMS_MALFORMED', `CMS is not valid BER: ${(err as Error).message}`, { cause: err });
  }
  if (parsed.offset === -1 || parsed.result.error) throw new ZtpError('CMS_MALFORMED', `CMS is not valid BER: ${parsed.result.error || 'decode failed'}`);
  if (parsed.offset !== der.byteLength) throw new ZtpError('CMS_MALFORMED', `CMS has ${der.byteLength - parsed.offset} trailing bytes`);
  try {
    const info = new pkijs.ContentInfo({ schema: parsed.result });
    return { contentType: info.contentType, content: info.content as asn1js.BaseBlock };
  } catch (err) {
    throw new ZtpError('CMS_MALFORMED', 'not a CMS ContentInfo', { cause: err });
  }
}

/** Octets of an OCTET STRING, primitive or constructed (BER allows both). */
function octets(block: asn1js.BaseBlock): Buffer {
  if (!(block instanceof asn1js.OctetString)) throw new ZtpError('CMS_MALFORMED', 'expected an OCTET STRING');
  if (block.idBlock.isConstructed) {
    return Buffer.concat((block.valueBlock.value as asn1js.OctetString[]).map((b) => octets(b)));
  }
  return Buffer.from(block.valueBlock.valueHexView);
}

/** The payload of an unsigned ContentInfo (contentType .43/.42/id-data). */
export function unwrapUnsigned(der: Uint8Array): { contentType: string; content: Buffer } {
  const info = parseContentInfo(der);
  if (info.contentType === OID.signedData || info.contentType === OID.envelopedData) {
    throw new ZtpError('CMS_UNEXPECTED_CONTENT_TYPE', `expected unsigned content, got ${info.contentType}`);
  }
  return { contentType: info.contentType, content: octets(info.content) };
}

export interface VerifiedContent {
  eContentType: string;
  content: Buffer;
  signerCertPem: string;
  certPems: string[];
}

function parseSignedData(der: Uint8Array): pkijs.SignedData {
  const info = parseContentInfo(der);
  if (info.contentType !== OID.signedData) throw new ZtpError('CMS_UNEXPECTED_CONTENT_TYPE', `expected SignedData, got ${info.contentType}`);
  try {
    return new pkijs.SignedData({ schema: info.content });
  } catch (err) {
    throw new ZtpError('CMS_MALFORMED', 'SignedData is malformed', { cause: err });
  }
}

/** Certificates carried by a SignedData (e.g. owner-certificate, trust-anchor-cert). */
export function certificatesOf(der: Uint8Array): string[] {
  const signed = parseSignedData(der);
  return (signed.certificates ?? []).filter((c): c is pkijs.Certificate => c instanceof pkijs.Certificate).map(certificateToPem);
}

/**
 * Verifies a SignedData's signature with its signer certificate, and (when trust anchors are
 * given) the signer's chain up to one of them. Never turns a failure into success.
 */
export async function verifySignedData(der: Uint8Array, trustedPems: string[] | null, options: { signerCertPem?: string; checkDate?: Date } = {}): Promise<VerifiedContent> {
  const signed = parseSignedData(der);
  const eContent = signed.encapContentInfo.eContent;
  if (!eContent) throw new ZtpError('CMS_MALFORMED', 'SignedData has no content');
  const content = octets(eContent);
  const certs = (signed.certificates ?? []).filter((c): c is pkijs.Certificate => c instanceof pkijs.Certificate);
  if (options.signerCertPem) certs.push(pemToCertificate(options.signerCertPem));
  signed.certificates = certs;
  let result: pkijs.SignedDataVerifyResult;
  try {
    result = await signed.verify({
      signer: 0,
      checkChain: trustedPems !== null,
      trustedCerts: (trustedPems ?? []).flatMap(splitPem).map(pemToCertificate),
      checkDate: options.checkDate ?? new Date(),
      extendedMode: true,
    });
  } catch (err) {
    const message = (err as { message?: string }).message ?? String(err);
    throw new ZtpError('CMS_VERIFY_FAILED', `CMS verification failed: ${message}`, { cause: err });
  }
  if (!result.signatureVerified || (trustedPems !== null && result.signerCertificateVerified !== true)) {
    throw new ZtpError('CMS_VERIFY_FAILED', `CMS verification failed: ${result.message || 'bad signature'}`);
  }
  return {
    eContentType: signed.encapContentInfo.eContentType,
    content,
    signerCertPem: certificateToPem(result.signerCertificate!),
    certPems: certs.map(certificateToPem),
  };
}

/** Decrypts an EnvelopedData with the recipient's key: what a device does with encrypted conveyed info. */
export async function decryptEnveloped(der: Uint8Array, recipient: PemKeyPair): Promise<{ contentType: string; content: Buffer }> {
  const info = parseContentInfo(der);
  if (info.contentType !== OID.envelopedData) throw new ZtpError('CMS_UNEXPECTED_CONTENT_TYPE', `expected EnvelopedData, got ${info.contentType}`);
  let enveloped: pkijs.EnvelopedData;
  try {
    enveloped = new pkijs.EnvelopedData({ schema: info.content });
  } catch (err) {
    throw new ZtpError('CMS_MALFORMED', 'EnvelopedData is malformed', { cause: err });
  }
  const keyDer = createPrivateKey(recipient.keyPem).export({ type: 'pkcs8', format: 'der' });
  try {
    const plain = await enveloped.decrypt(0, { recipientCertificate: pemToCertificate(splitPem(recipient.certPem)[0]!), recipientPrivateKey: toArrayBuffer(keyDer) });
    return { contentType: enveloped.encryptedContentInfo.contentType, content: Buffer.from(plain) };
  } catch (err) {
    throw new ZtpError('CMS_VERIFY_FAILED', 'EnvelopedData could not be decrypted', { cause: err });
  }
}

export { pemToCertificate };
