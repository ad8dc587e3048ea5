// RFC 8366 ownership vouchers: the lab MASA issues them for lab devices; vendor-issued ones
// (<vouchersDir>/<serial>.vcj) are passed through byte for byte.
//
// RFC 8366 §5.3 (JSON, "ietf-voucher:voucher"):
//   created-on (date-and-time), expires-on?, assertion (verified|logged|proximity),
//   serial-number, idevid-issuer? (binary), pinned-domain-cert (binary, X.509 DER),
//   domain-cert-revocation-checks? (boolean), nonce? (binary), last-renewal-date?
// §5.4: the voucher is a CMS SignedData, eContentType id-ct-animaJSONVoucher (…16.1.40).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { ZtpError } from '../errors.js';
import { OID, signedData, verifySignedData } from './cms.js';
import { splitPem } from './lab.js';
import type { PemKeyPair } from './material.js';

export interface Voucher {
  'created-on': string;
  'expires-on'?: string;
  assertion: 'verified' | 'logged' | 'proximity';
  'serial-number': string;
  'idevid-issuer'?: string;
  'pinned-domain-cert': string;
  'domain-cert-revocation-checks'?: boolean;
  nonce?: string;
  'last-renewal-date'?: string;
}

export interface IssueVoucherOptions {
  serial: string;
  /** the owner's trust anchor: the last certificate of the owner chain */
  pinnedDomainCertPem: string;
  masa: PemKeyPair;
  createdOn?: Date;
  expiresOn?: Date;
  nonce?: Buffer;
  /** AuthorityKeyIdentifier of the device's IDevID (RFC 8366 idevid-issuer) */
  idevidIssuer?: Buffer;
}

export function pemToDerBase64(pem: string): string {
  return pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
}

export function buildVoucher(options: Omit<IssueVoucherOptions, 'masa'>): { 'ietf-voucher:voucher': Voucher } {
  const voucher: Voucher = {
    'created-on': (options.createdOn ?? new Date()).toISOString(),
    assertion: 'verified',
    'serial-number': options.serial,
    'pinned-domain-cert': pemToDerBase64(options.pinnedDomainCertPem),
    'domain-cert-revocation-checks': false,
  };
  // RFC 8366 §5.3 expires-on: must "not(../nonce)": a nonce-bound voucher is valid for that one
  // exchange only, so it carries no expiry (yanglint caught this).
  if (options.expiresOn && !options.nonce) voucher['expires-on'] = options.expiresOn.toISOString();
  if (options.nonce) voucher.nonce = options.nonce.toString('base64');
  if (options.idevidIssuer) voucher['idevid-issuer'] = options.idevidIssuer.toString('base64');
  return { 'ietf-voucher:voucher': voucher };
}

/** A voucher signed by the lab MASA, DER. */
export async function issueVoucher(options: IssueVoucherOptions): Promise<Buffer> {
  const json = JSON.stringify(buildVoucher(options));
  return signedData({ eContentType: OID.voucherJson, content: Buffer.from(json), signer: options.masa });
}

/** A vendor-issued voucher for this serial, if the operator supplied one. */
export function vendorVoucher(vouchersDir: string, serial: string): Buffer | undefined {
  if (!vouchersDir) return undefined;
  const file = join(vouchersDir, `${serial}.vcj`);
  return existsSync(file) ? readFileSync(file) : undefined;
}

export interface VerifiedVoucher {
  voucher: Voucher;
  pinnedDomainCertPem: string;
}

/**
 * What a device does (RFC 8572 §5.5/§5.6): verify the voucher's signature up to its
 * manufacturer trust anchor, check the serial number and expiry, return the pinned cert.
 */
export async function verifyVoucher(der: Uint8Array, masaTrustPem: string, expectedSerial: string, now = new Date()): Promise<VerifiedVoucher> {
  const verified = await verifySignedData(der, splitPem(masaTrustPem), { checkDate: now });
  if (verified.eContentType !== OID.voucherJson) {
    throw new ZtpError('VOUCHER_INVALID', `voucher eContentType is ${verified.eContentType}, expected ${OID.voucherJson}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(verified.content.toString('utf8'));
  } catch (err) {
    throw new ZtpError('VOUCHER_INVALID', 'voucher content is not JSON', { cause: err });
  }
  const voucher = (parsed as { 'ietf-voucher:voucher'?: Voucher })['ietf-voucher:voucher'];
  if (!voucher || typeof voucher !== 'object') throw new ZtpError('VOUCHER_INVALID', 'no ietf-voucher:voucher object');
  if (voucher['serial-number'] !== expectedSerial) {
    throw new ZtpError('VOUCHER_INVALID', `voucher is for serial ${voucher['serial-number']}, not ${expectedSerial}`);
  }
  if (voucher['expires-on'] && new Date(voucher['expires-on']).getTime() < now.getTime()) {
    throw new ZtpError('VOUCHER_INVALID', 'voucher has expired');
  }
  if (typeof voucher['pinned-domain-cert'] !== 'string') throw new ZtpError('VOUCHER_INVALID', 'voucher has no pinned-domain-cert');
  let pinned: X509Certificate;
  try {
    pinned = new X509Certificate(Buffer.from(voucher['pinned-domain-cert'], 'base64'));
  } catch (err) {
    throw new ZtpError('VOUCHER_INVALID', 'pinned-domain-cert is not a certificate', { cause: err });
  }
  return { voucher, pinnedDomainCertPem: pinned.toString() };
}
