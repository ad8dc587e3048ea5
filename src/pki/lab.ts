// Lab PKI: generated on first start (idempotently) under <dataDir>/pki, keys written 0600.
//
//   lab root CA ── bootstrap/image server TLS certificate
//   owner CA (the voucher's pinned-domain-cert) ── owner certificate (signs conveyed information)
//   MASA CA (manufacturer authority) ── signs lab ownership vouchers
//   IDevID root CA ── IDevID issuing CA ── device identity certificates (serialNumber in subject)
//
// Operators may replace the owner identity, the device trust bundle, the TLS identity and the
// vouchers with their own (config `pki.*`); those files are read, never rewritten.
import { webcrypto, X509Certificate, createPrivateKey, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type * as X509 from '@peculiar/x509';
import { ZtpError } from '../errors.js';
import type { Config } from '../config.js';
import type { PemKeyPair, SuitePki } from './material.js';

// @peculiar/x509 (~175 ms CPU, ~8.5 MB) is loaded only to generate or issue material: a restart
// with the PKI already on disk reads PEM files and checks them with node:crypto alone (issue 12).
let x509Module: Promise<typeof X509> | undefined;
function loadX509(): Promise<typeof X509> {
  x509Module ??= import('@peculiar/x509').then((x509) => {
    x509.cryptoProvider.set(webcrypto as unknown as Crypto);
    return x509;
  });
  return x509Module;
}

const EC_ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 24 * 60 * 60 * 1000;

interface Issuer {
  cert: X509.X509Certificate;
  key: CryptoKey;
}

export function writeSecretFile(path: string, content: string | Buffer): void {
  writeFileSync(path, content, { mode: 0o600 });
  // mode applies only on creation: tighten an existing file too.
  chmodSync(path, 0o600);
}

async function newKeys(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(EC_ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
}

async function keyToPem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return (await loadX509()).PemConverter.encode(der, 'PRIVATE KEY');
}

/** Imports a PKCS#8/SEC1/PKCS#1 PEM key for signing, whatever its algorithm (EC or RSA). */
export async function importSigningKey(pem: string): Promise<CryptoKey> {
  let keyObject;
  try {
    keyObject = createPrivateKey(pem);
  } catch (err) {
    throw new ZtpError('PKI_MISSING_MATERIAL', 'private key could not be parsed', { cause: err });
  }
  const pkcs8 = keyObject.export({ type: 'pkcs8', format: 'der' });
  if (keyObject.asymmetricKeyType === 'ec') {
    const curve = keyObject.asymmetricKeyDetails?.namedCurve;
    const namedCurve = curve === 'secp384r1' ? 'P-384' : curve === 'secp521r1' ? 'P-521' : 'P-256';
    return webcrypto.subtle.importKey('pkcs8', pkcs8, { name: 'ECDSA', namedCurve }, true, ['sign']) as Promise<CryptoKey>;
  }
  if (keyObject.asymmetricKeyType === 'rsa') {
    return webcrypto.subtle.importKey('pkcs8', pkcs8, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, true, ['sign']) as Promise<CryptoKey>;
  }
  throw new ZtpError('PKI_MISSING_MATERIAL', `unsupported key type ${keyObject.asymmetricKeyType}`);
}

function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f; // positive INTEGER
  return bytes.toString('hex');
}

async function selfSignedCa(name: string, years: number): Promise<{ issuer: Issuer; pair: PemKeyPair }> {
  const x509 = await loadX509();
  const keys = await newKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + years * 365 * DAY),
    keys,
    signingAlgorithm: EC_ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { issuer: { cert, key: keys.privateKey }, pair: { certPem: cert.toString('pem'), keyPem: await keyToPem(keys.privateKey) } };
}

export interface LeafOptions {
  subject: string;
  issuer: Issuer;
  days: number;
  ca?: boolean;
  extensions?: X509.Extension[];
  keyUsage?: number;
}

async function issue(options: LeafOptions): Promise<{ cert: X509.X509Certificate; key: CryptoKey; pair: PemKeyPair }> {
  const x509 = await loadX509();
  const keys = await newKeys();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: options.subject,
    issuer: options.issuer.cert.subject,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + options.days * DAY),
    publicKey: keys.publicKey,
    signingKey: options.issuer.key,
    signingAlgorithm: EC_ALG,
    extensions: [
      new x509.BasicConstraintsExtension(options.ca === true, options.ca ? 0 : undefined, true),
      new x509.KeyUsagesExtension(
        options.keyUsage ?? (options.ca ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign : x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement),
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(options.issuer.cert),
      ...(options.extensions ?? []),
    ],
  });
  return { cert, key: keys.privateKey, pair: { certPem: cert.toString('pem'), keyPem: await keyToPem(keys.privateKey) } };
}

function savePair(dir: string, base: string, pair: PemKeyPair): void {
  writeFileSync(join(dir, `${base}.crt`), pair.certPem.endsWith('\n') ? pair.certPem : pair.certPem + '\n');
  writeSecretFile(join(dir, `${base}.key`), pair.keyPem);
}

function loadPair(dir: string, base: string): PemKeyPair | undefined {
  const crt = join(dir, `${base}.crt`);
  const key = join(dir, `${base}.key`);
  if (!existsSync(crt) || !existsSync(key)) return undefined;
  return { certPem: readFileSync(crt, 'utf8'), keyPem: readFileSync(key, 'utf8') };
}

async function toIssuer(pair: PemKeyPair): Promise<Issuer> {
  const x509 = await loadX509();
  return { cert: new x509.X509Certificate(firstPem(pair.certPem)), key: await importSigningKey(pair.keyPem) };
}

/** Splits a PEM bundle into its certificates' PEM blocks. */
export function splitPem(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)?.map((p) => p + '\n') ?? [];
}

function firstPem(bundle: string): string {
  const first = splitPem(bundle)[0];
  if (!first) throw new ZtpError('PKI_INVALID_CERT', 'no certificate in PEM');
  return first;
}

async function ensureCa(dir: string, base: string, name: string, log: string[]): Promise<PemKeyPair> {
  const existing = loadPair(dir, base);
  if (existing) return existing;
  const { pair } = await selfSignedCa(name, 10);
  savePair(dir, base, pair);
  log.push(base);
  return pair;
}

/** Names (DNS and IP) the TLS certificate must cover. */
export function tlsNames(publicHost: string, extra: string[] = []): string[] {
  const names = new Set(['localhost', '127.0.0.1', '::1', hostname(), ...extra]);
  if (publicHost) names.add(publicHost);
  return [...names].filter((n) => n && n !== '0.0.0.0' && n !== '::');
}

function certCovers(certPem: string, names: string[]): boolean {
  const cert = new X509Certificate(firstPem(certPem));
  const san = cert.subjectAltName ?? '';
  const expired = new Date(cert.validTo).getTime() < Date.now() + 30 * DAY;
  return !expired && names.every((n) => san.includes(isIP(n) ? `IP Address:${n === '::1' ? '0:0:0:0:0:0:0:1' : n}` : `DNS:${n}`) || (n === '::1' && san.includes('IP Address:::1')));
}

export interface PkiInitResult {
  pki: SuitePki;
  /** what this call generated (empty when everything already existed) */
  generated: string[];
}

function readOperatorFile(path: string, key: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ZtpError('PKI_MISSING_MATERIAL', `pki.${key}: cannot read ${path}: ${(err as Error).message}`, { cause: err, details: { key: `pki.${key}` } });
  }
}

/**
 * Creates whatever lab PKI material is missing and returns the material in force, with the
 * operator's own files (config pki.*) taking the place of the generated ones.
 */
export async function ensureLabPki(dataDir: string, pkiConfig: Config['pki'], publicHost: string, extraNames: string[] = []): Promise<PkiInitResult> {
  const dir = join(dataDir, 'pki');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const generated: string[] = [];
  const root = await ensureCa(dir, 'root-ca', 'CN=dpu-ztp lab root CA, O=dpu-ztp lab', generated);
  const ownerCa = await ensureCa(dir, 'owner-ca', 'CN=dpu-ztp lab owner CA, O=dpu-ztp lab', generated);
  const masa = await ensureCa(dir, 'masa-ca', 'CN=dpu-ztp lab MASA, O=dpu-ztp lab manufacturer', generated);
  const idevidRoot = await ensureCa(dir, 'idevid-root-ca', 'CN=dpu-ztp lab IDevID root CA, O=dpu-ztp lab manufacturer', generated);

  let idevidCa = loadPair(dir, 'idevid-ca');
  if (!idevidCa) {
    const { pair } = await issue({ subject: 'CN=dpu-ztp lab IDevID issuing CA, O=dpu-ztp lab manufacturer', issuer: await toIssuer(idevidRoot), days: 3650, ca: true });
    idevidCa = pair;
    savePair(dir, 'idevid-ca', pair);
    generated.push('idevid-ca');
  }

  let owner = loadPair(dir, 'owner');
  if (!owner) {
    const x509 = await loadX509();
    const { pair } = await issue({ subject: 'CN=dpu-ztp lab owner, O=dpu-ztp lab', issuer: await toIssuer(ownerCa), days: 3650, keyUsage: x509.KeyUsageFlags.digitalSignature });
    owner = pair;
    savePair(dir, 'owner', pair);
    generated.push('owner');
  }

  const names = tlsNames(publicHost, extraNames);
  let tls = loadPair(dir, 'tls');
  if (!tls || !certCovers(tls.certPem, names)) {
    const x509 = await loadX509();
    const { pair } = await issue({
      subject: 'CN=dpu-ztp bootstrap server, O=dpu-ztp lab',
      issuer: await toIssuer(root),
      days: 825,
      keyUsage: x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement,
      extensions: [
        new x509.SubjectAlternativeNameExtension(names.map((n) => (isIP(n) ? { type: 'ip' as const, value: n } : { type: 'dns' as const, value: n }))),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      ],
    });
    tls = pair;
    savePair(dir, 'tls', pair);
    generated.push('tls');
  }

  // Chains are kept leaf-first in certPem so TLS servers and CMS signers send them whole.
  const chained = (leaf: PemKeyPair, ...chain: PemKeyPair[]): PemKeyPair => ({ certPem: [leaf, ...chain].flatMap((c) => splitPem(c.certPem)).join(''), keyPem: leaf.keyPem });

  const ownerMaterial: PemKeyPair = pkiConfig.ownerCert
    ? {
        certPem: [readOperatorFile(pkiConfig.ownerCert, 'ownerCert'), pkiConfig.ownerChain ? readOperatorFile(pkiConfig.ownerChain, 'ownerChain') : ''].flatMap(splitPem).join(''),
        keyPem: pkiConfig.ownerKey ? readOperatorFile(pkiConfig.ownerKey, 'ownerKey') : fail('pki.ownerKey', 'required with pki.ownerCert'),
      }
    : chained(owner, ownerCa);
  const tlsMaterial: PemKeyPair = pkiConfig.tlsCert
    ? { certPem: readOperatorFile(pkiConfig.tlsCert, 'tlsCert'), keyPem: pkiConfig.tlsKey ? readOperatorFile(pkiConfig.tlsKey, 'tlsKey') : fail('pki.tlsKey', 'required with pki.tlsCert') }
    : chained(tls, root);
  checkKeyMatches(ownerMaterial, 'owner');
  checkKeyMatches(tlsMaterial, 'tls');
  const deviceTrustPem = pkiConfig.deviceTrustBundle ? readOperatorFile(pkiConfig.deviceTrustBundle, 'deviceTrustBundle') : idevidRoot.certPem;
  if (splitPem(deviceTrustPem).length === 0) fail('pki.deviceTrustBundle', 'holds no PEM certificate');

  return {
    generated,
    pki: {
      dir,
      tls: tlsMaterial,
      rootCaPem: root.certPem,
      owner: ownerMaterial,
      masa,
      idevidCa: chained(idevidCa, idevidRoot),
      deviceTrustPem,
      vouchersDir: pkiConfig.vouchersDir,
    },
  };
}

function fail(key: string, message: string): never {
  throw new ZtpError('PKI_MISSING_MATERIAL', `${key}: ${message}`, { details: { key } });
}

function checkKeyMatches(pair: PemKeyPair, what: string): void {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(firstPem(pair.certPem));
  } catch (err) {
    throw new ZtpError('PKI_INVALID_CERT', `${what} certificate could not be parsed`, { cause: err });
  }
  if (!cert.checkPrivateKey(createPrivateKey(pair.keyPem))) {
    throw new ZtpError('PKI_KEY_MISMATCH', `${what} private key does not match its certificate`);
  }
}

export interface DeviceIdentityOptions {
  days?: number;
  /** also put the serial in the CN (some manufacturers do) */
  commonName?: string;
}

/** Issues a lab IDevID for a simulated device: serial in the subject serialNumber (2.5.4.5). */
export async function issueDeviceIdentity(pki: SuitePki, serial: string, options: DeviceIdentityOptions = {}): Promise<PemKeyPair> {
  if (!/^[A-Za-z0-9._:-]{1,64}$/.test(serial)) throw new ZtpError('DEVICE_INVALID', 'serial: not a valid serial number');
  const x509 = await loadX509();
  const issuer = await toIssuer(pki.idevidCa);
  const { pair } = await issue({
    subject: `CN=${options.commonName ?? serial}, 2.5.4.5=${serial}, O=dpu-ztp lab device`,
    issuer,
    days: options.days ?? 3650,
    extensions: [new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth])],
  });
  // Leaf then the issuing CA: the device presents both, the server trusts only the root.
  return { certPem: splitPem(pair.certPem)[0]! + splitPem(pki.idevidCa.certPem)[0]!, keyPem: pair.keyPem };
}

/** For tests and the MASA: issue a certificate under any PEM CA. */
export async function issueUnder(ca: PemKeyPair, subject: string, days: number, extensions: X509.Extension[] = []): Promise<PemKeyPair> {
  const { pair } = await issue({ subject, issuer: await toIssuer(ca), days, extensions });
  return pair;
}

export { selfSignedCa };
