// Two TypeScript device emulators for end-to-end tests over real HTTPS with mTLS:
//  - RfcDevice behaves like an RFC 8572-faithful device (Cisco/Juniper/Nokia class): asks for
//    signed data with a nonce, verifies voucher → owner certificate → signature before trusting
//    anything (RFC 8572 §5.5, §5.6), checks the boot image digest, reports every stage.
//  - OpiDevice behaves like the OPI Go agent (SZTP-INTEROP.md): sends "nonce": "", decodes the
//    reply strictly (exactly one member), reads the [0] OCTET STRING as primitive DER, rejects
//    unknown conveyed-info fields, uses download-uri[0] and requires sha-256 image-verification.
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:https';
import { request as httpRequest } from 'node:http';
import * as asn1js from 'asn1js';
import { OID, certificatesOf, verifySignedData, decryptEnveloped } from '../../src/pki/cms.js';
import { splitPem } from '../../src/pki/lab.js';
import type { PemKeyPair } from '../../src/pki/material.js';
import { verifyVoucher } from '../../src/pki/voucher.js';

export interface DeviceIdentity {
  serial: string;
  password?: string;
  /** IDevID leaf + chain and key; omitted for Basic-only devices */
  idevid?: PemKeyPair;
  /** trust anchor for the bootstrap server's TLS certificate */
  serverCaPem: string;
  /** manufacturer trust anchor for vouchers (RFC device only) */
  masaCaPem?: string;
}

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export function post(url: string, id: DeviceIdentity, body: string, contentType = 'application/yang-data+json', accept = 'application/yang-data+json'): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const headers: Record<string, string> = { 'content-type': contentType, accept, 'content-length': String(Buffer.byteLength(body)) };
    if (id.password !== undefined) headers.authorization = 'Basic ' + Buffer.from(`${id.serial}:${id.password}`).toString('base64');
    const req = request(
      {
        host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers, ca: id.serverCaPem,
        ...(id.idevid ? { cert: id.idevid.certPem, key: id.idevid.keyPem } : {}),
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function fetchBytes(url: string, caPem: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const fn = u.protocol === 'https:' ? request : httpRequest;
    const req = fn({ host: u.hostname, port: u.port, path: u.pathname, method: 'GET', ca: caPem, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks)) : reject(new Error(`GET ${url}: ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

const RPC = '/restconf/operations/ietf-sztp-bootstrap-server:';

export interface OnboardingOutcome {
  kind: 'onboarding-information' | 'redirect-information';
  conveyed: Record<string, unknown>;
  reports: string[];
  imageVerified: boolean;
}

function sha256Colon(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex').match(/../g)!.join(':');
}

async function report(base: string, id: DeviceIdentity, progressType: string, extra: Record<string, unknown> = {}, opiStyle = false): Promise<void> {
  const input: Record<string, unknown> = { 'progress-type': progressType, message: `${progressType} from emulator`, ...extra };
  if (opiStyle) {
    // The Go agent's struct always serialises these containers, empty.
    input['ssh-host-keys'] ??= {};
    input['trust-anchor-certs'] ??= {};
  }
  const res = await post(base + RPC + 'report-progress', id, JSON.stringify({ 'ietf-sztp-bootstrap-server:input': input }));
  const ok = opiStyle ? res.status === 204 || res.status === 200 : res.status === 204;
  if (!ok) throw new Error(`report-progress ${progressType}: HTTP ${res.status} ${res.body.toString()}`);
}

/** RFC 8572 §5.5/§5.6 device: trusts nothing until voucher, owner certificate and signature verify. */
export async function runRfcDevice(base: string, id: DeviceIdentity): Promise<OnboardingOutcome> {
  const nonce = randomBytes(16);
  const res = await post(base + RPC + 'get-bootstrapping-data', id, JSON.stringify({
    'ietf-sztp-bootstrap-server:input': { 'signed-data-preferred': [null], 'hw-model': 'emulated-dpu', 'os-name': 'emu', 'os-version': '1', nonce: nonce.toString('base64') },
  }));
  if (res.status !== 200) throw new Error(`get-bootstrapping-data: HTTP ${res.status} ${res.body.toString()}`);
  const output = JSON.parse(res.body.toString())['ietf-sztp-bootstrap-server:output'];
  await report(base, id, 'bootstrap-initiated');
  if (!output['ownership-voucher'] || !output['owner-certificate']) throw new Error('untrusted connection and unsigned data: refusing (RFC 8572 §5.6)');
  // 1. voucher, against the manufacturer trust anchor; serial and nonce must match.
  const voucher = await verifyVoucher(Buffer.from(output['ownership-voucher'], 'base64'), id.masaCaPem!, id.serial);
  if (voucher.voucher.nonce !== nonce.toString('base64')) throw new Error('voucher nonce does not match the request');
  // 2. owner certificate chains to the voucher's pinned-domain-cert.
  const ownerCerts = certificatesOf(Buffer.from(output['owner-certificate'], 'base64'));
  // 3. conveyed information signed by the owner certificate, verified up to the pinned cert.
  let conveyedDer = Buffer.from(output['conveyed-information'], 'base64');
  const outer = asn1js.fromBER(new Uint8Array(conveyedDer).buffer);
  const outerType = ((outer.result as asn1js.Sequence).valueBlock.value[0] as asn1js.ObjectIdentifier).valueBlock.toString();
  if (outerType === OID.envelopedData) {
    if (!id.idevid) throw new Error('encrypted conveyed information but no IDevID key');
    const inner = await decryptEnveloped(conveyedDer, id.idevid);
    if (inner.contentType !== OID.signedData) throw new Error(`decrypted content type ${inner.contentType}`);
    conveyedDer = Buffer.from(new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: OID.signedData }), new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 0 }, value: [asn1js.fromBER(new Uint8Array(inner.content).buffer).result] })] }).toBER(false));
  }
  const leaf = ownerCerts[0]!;
  const verified = await verifySignedData(conveyedDer, [voucher.pinnedDomainCertPem], { signerCertPem: leaf });
  if (!ownerCerts.some((c) => splitPem(verified.signerCertPem)[0]!.replace(/\s/g, '') === c.replace(/\s/g, ''))) throw new Error('conveyed information not signed by the owner certificate');
  if (verified.eContentType !== OID.conveyedInfoJson) throw new Error(`eContentType ${verified.eContentType}`);
  await report(base, id, 'parsing-initiated');
  const conveyed = JSON.parse(verified.content.toString()) as Record<string, unknown>;
  await report(base, id, 'parsing-complete');
  const outcome: OnboardingOutcome = { kind: 'onboarding-information', conveyed, reports: [], imageVerified: false };
  if (conveyed['ietf-sztp-conveyed-info:redirect-information']) {
    outcome.kind = 'redirect-information';
    return outcome;
  }
  const info = conveyed['ietf-sztp-conveyed-info:onboarding-information'] as Record<string, unknown>;
  const image = info['boot-image'] as { 'download-uri': string[]; 'image-verification': { 'hash-algorithm': string; 'hash-value': string }[] } | undefined;
  if (image) {
    await report(base, id, 'boot-image-initiated');
    const bytes = await fetchBytes(image['download-uri'][0]!, id.serverCaPem);
    const expected = image['image-verification'].find((v) => v['hash-algorithm'] === 'ietf-sztp-conveyed-info:sha-256');
    if (!expected || expected['hash-value'] !== sha256Colon(bytes)) {
      await report(base, id, 'boot-image-mismatch');
      throw new Error('boot image digest mismatch');
    }
    outcome.imageVerified = true;
    await report(base, id, 'boot-image-complete');
  }
  if (info.configuration) {
    await report(base, id, 'config-initiated');
    await report(base, id, 'config-complete');
  }
  await report(base, id, 'bootstrap-complete', {
    'ssh-host-keys': { 'ssh-host-key': [{ algorithm: 'ssh-ed25519', 'key-data': randomBytes(32).toString('base64') }] },
    'trust-anchor-certs': { 'trust-anchor-cert': [output['owner-certificate']] },
  });
  return outcome;
}

const OPI_ONBOARDING_FIELDS = new Set(['boot-image', 'pre-configuration-script', 'configuration-handling', 'configuration', 'post-configuration-script']);
const OPI_IMAGE_FIELDS = new Set(['download-uri', 'image-verification']);

/** The OPI Go agent's behaviour, quirks included. */
export async function runOpiDevice(base: string, id: DeviceIdentity): Promise<OnboardingOutcome> {
  const res = await post(base + RPC + 'get-bootstrapping-data', id, JSON.stringify({
    'ietf-sztp-bootstrap-server:input': { 'hw-model': 'model', 'os-name': 'linux', 'os-version': '6', nonce: '' },
  }));
  if (res.status !== 200) throw new Error(`get-bootstrapping-data: HTTP ${res.status} ${res.body.toString()}`);
  // Strict decoding: exactly {"ietf-sztp-bootstrap-server:output":{"conveyed-information":…}}.
  const parsed = JSON.parse(res.body.toString());
  const keys = Object.keys(parsed);
  if (keys.length !== 1 || keys[0] !== 'ietf-sztp-bootstrap-server:output') throw new Error(`unknown field(s) in reply: ${keys.join(',')}`);
  const output = parsed['ietf-sztp-bootstrap-server:output'];
  const outKeys = Object.keys(output);
  if (outKeys.length !== 1 || outKeys[0] !== 'conveyed-information') throw new Error(`unknown field(s) in output: ${outKeys.join(',')}`);
  await report(base, id, 'bootstrap-initiated', {}, true);
  // asn1.Unmarshal into {OID, RawValue `asn1:"explicit,tag:0"`}, then .Bytes of the inner element:
  // the inner OCTET STRING must be primitive with a definite length.
  const der = Buffer.from(output['conveyed-information'], 'base64');
  const ci = asn1js.fromBER(new Uint8Array(der).buffer);
  if (ci.offset !== der.length) throw new Error('trailing bytes');
  const [oid, tagged] = (ci.result as asn1js.Sequence).valueBlock.value;
  if ((oid as asn1js.ObjectIdentifier).valueBlock.toString() !== OID.conveyedInfoJson) throw new Error('not id-ct-sztpConveyedInfoJSON');
  const octet = (tagged as asn1js.Constructed).valueBlock.value[0]!;
  if (octet.idBlock.tagNumber !== 4 || octet.idBlock.isConstructed || octet.lenBlock.isIndefiniteForm) throw new Error('conveyed information is not a primitive DER OCTET STRING');
  const conveyed = JSON.parse(Buffer.from((octet as asn1js.OctetString).valueBlock.valueHexView).toString());
  await report(base, id, 'parsing-complete', {}, true);
  const outcome: OnboardingOutcome = { kind: 'onboarding-information', conveyed, reports: [], imageVerified: false };
  if (conveyed['ietf-sztp-conveyed-info:redirect-information']) {
    const server = conveyed['ietf-sztp-conveyed-info:redirect-information']['bootstrap-server'][0];
    if (typeof server.port !== 'number') throw new Error('redirect without an explicit port');
    outcome.kind = 'redirect-information';
    return outcome;
  }
  const info = conveyed['ietf-sztp-conveyed-info:onboarding-information'];
  for (const k of Object.keys(info)) if (!OPI_ONBOARDING_FIELDS.has(k)) throw new Error(`unknown onboarding field ${k}`);
  if (info['boot-image']) {
    for (const k of Object.keys(info['boot-image'])) if (!OPI_IMAGE_FIELDS.has(k)) throw new Error(`unknown boot-image field ${k}`);
    const verification = info['boot-image']['image-verification'];
    if (!Array.isArray(verification) || verification.length === 0) throw new Error('image-verification is required');
    await report(base, id, 'boot-image-initiated', {}, true);
    const bytes = await fetchBytes(info['boot-image']['download-uri'][0], id.serverCaPem);
    if (verification[0]['hash-value'] !== sha256Colon(bytes)) throw new Error('checksum mismatch (lowercase colon hex expected)');
    outcome.imageVerified = true;
    await report(base, id, 'boot-image-complete', {}, true);
  }
  await report(base, id, 'bootstrap-complete', {}, true);
  return outcome;
}
