// Issue 2 "Tests that must exist": our CMS checked by a second implementation (openssl).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, statSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config.js';
import { ensureLabPki, splitPem } from '../../src/pki/lab.js';
import { certsOnlySignedData, contentInfo, OID, signedData, verifySignedData, unwrapUnsigned, envelope, decryptEnveloped } from '../../src/pki/cms.js';
import { issueVoucher, verifyVoucher } from '../../src/pki/voucher.js';
import { issueDeviceIdentity } from '../../src/pki/lab.js';
import type { SuitePki } from '../../src/pki/material.js';
import { missingTool } from '../helpers/shared.js';

const noOpenssl = missingTool('openssl');
let pki: SuitePki;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ztp-cms-'));
  pki = (await ensureLabPki(dir, validateConfig({}).pki, 'ztp.example.test')).pki;
});

function openssl(args: string[], input?: Buffer): string {
  return execFileSync('openssl', args, { input, stdio: ['pipe', 'pipe', 'pipe'] }).toString();
}

describe('lab PKI', () => {
  it('writes private keys 0600 and is idempotent', async () => {
    for (const key of ['root-ca', 'owner-ca', 'owner', 'masa-ca', 'idevid-root-ca', 'idevid-ca', 'tls']) {
      expect(statSync(join(dir, 'pki', `${key}.key`)).mode & 0o777, key).toBe(0o600);
    }
    const again = await ensureLabPki(dir, validateConfig({}).pki, 'ztp.example.test');
    expect(again.generated).toEqual([]);
    expect(again.pki.owner.certPem).toBe(pki.owner.certPem);
  });

  it.skipIf(noOpenssl)('TLS certificate chains to the lab root and names localhost and the public host', () => {
    const [leaf] = splitPem(pki.tls.certPem);
    writeFileSync(join(dir, 'leaf.pem'), leaf!);
    writeFileSync(join(dir, 'root.pem'), pki.rootCaPem);
    expect(openssl(['verify', '-CAfile', join(dir, 'root.pem'), join(dir, 'leaf.pem')])).toContain('OK');
    const text = openssl(['x509', '-in', join(dir, 'leaf.pem'), '-noout', '-ext', 'subjectAltName']);
    expect(text).toContain('DNS:localhost');
    expect(text).toContain('DNS:ztp.example.test');
    expect(text).toContain('IP Address:127.0.0.1');
  });
});

describe.skipIf(noOpenssl)('CMS verified by openssl', () => {
  it('signed conveyed information verifies against the owner chain, eContentType .43, primitive DER OCTET STRING', async () => {
    const json = JSON.stringify({ 'ietf-sztp-conveyed-info:onboarding-information': { configuration: Buffer.from('hello').toString('base64') } });
    const der = await signedData({ eContentType: OID.conveyedInfoJson, content: Buffer.from(json), signer: pki.owner });
    writeFileSync(join(dir, 'ci.der'), der);
    const ownerCaPem = splitPem(pki.owner.certPem).at(-1)!;
    writeFileSync(join(dir, 'owner-ca.pem'), ownerCaPem);
    const out = execFileSync('openssl', ['cms', '-verify', '-inform', 'DER', '-in', join(dir, 'ci.der'), '-CAfile', join(dir, 'owner-ca.pem'), '-purpose', 'any'], { stdio: ['pipe', 'pipe', 'pipe'] });
    expect(out.toString()).toBe(json);
    const printed = openssl(['cms', '-cmsout', '-print', '-inform', 'DER', '-in', join(dir, 'ci.der')]);
    expect(printed).toMatch(/eContentType: [^\n]*1\.2\.840\.113549\.1\.9\.16\.1\.43/);
    // DER strictness: openssl's DER re-encoding must be byte-identical to ours.
    const reencoded = execFileSync('openssl', ['cms', '-cmsout', '-inform', 'DER', '-outform', 'DER', '-in', join(dir, 'ci.der')]);
    expect(Buffer.compare(reencoded, der)).toBe(0);
    // Our own verifier agrees, and a flipped byte fails (never a catch-all success).
    await expect(verifySignedData(der, [ownerCaPem])).resolves.toMatchObject({ eContentType: OID.conveyedInfoJson });
    const tampered = Buffer.from(der);
    const at = tampered.indexOf(Buffer.from('hello').toString('base64'));
    tampered[at] = tampered[at]! ^ 1;
    await expect(verifySignedData(tampered, [ownerCaPem])).rejects.toMatchObject({ code: 'CMS_VERIFY_FAILED' });
    writeFileSync(join(dir, 'tampered.der'), tampered);
    expect(() => openssl(['cms', '-verify', '-inform', 'DER', '-in', join(dir, 'tampered.der'), '-CAfile', join(dir, 'owner-ca.pem'), '-purpose', 'any'])).toThrow();
  });

  it('the voucher verifies against the MASA CA and names the serial and the pinned owner CA', async () => {
    const ownerCaPem = splitPem(pki.owner.certPem).at(-1)!;
    const der = await issueVoucher({ serial: 'SN-0042', pinnedDomainCertPem: ownerCaPem, masa: pki.masa });
    writeFileSync(join(dir, 'voucher.der'), der);
    writeFileSync(join(dir, 'masa.pem'), pki.masa.certPem);
    const content = execFileSync('openssl', ['cms', '-verify', '-inform', 'DER', '-in', join(dir, 'voucher.der'), '-CAfile', join(dir, 'masa.pem'), '-purpose', 'any'], { stdio: ['pipe', 'pipe', 'pipe'] }).toString();
    const voucher = JSON.parse(content)['ietf-voucher:voucher'];
    expect(voucher['serial-number']).toBe('SN-0042');
    expect(voucher['pinned-domain-cert']).toBe(ownerCaPem.replace(/-----[^-]+-----|\s/g, ''));
    expect(openssl(['cms', '-cmsout', '-print', '-inform', 'DER', '-in', join(dir, 'voucher.der')])).toMatch(/eContentType: [^\n]*1\.2\.840\.113549\.1\.9\.16\.1\.40/);
    const verified = await verifyVoucher(der, pki.masa.certPem, 'SN-0042');
    expect(verified.pinnedDomainCertPem.replace(/\s/g, '')).toBe(ownerCaPem.replace(/\s/g, ''));
    await expect(verifyVoucher(der, pki.masa.certPem, 'SN-OTHER')).rejects.toMatchObject({ code: 'VOUCHER_INVALID' });
    await expect(verifyVoucher(der, pki.rootCaPem, 'SN-0042')).rejects.toMatchObject({ code: 'CMS_VERIFY_FAILED' });
  });

  it('owner-certificate bundle is a degenerate SignedData openssl lists', () => {
    const der = certsOnlySignedData([pki.owner.certPem]);
    writeFileSync(join(dir, 'owner.der'), der);
    const certs = openssl(['pkcs7', '-inform', 'DER', '-in', join(dir, 'owner.der'), '-print_certs', '-noout']);
    expect(certs).toContain('dpu-ztp lab owner');
    expect(certs).toContain('dpu-ztp lab owner CA');
  });

  it('unsigned conveyed information is a ContentInfo openssl parses with contentType .43', () => {
    const der = contentInfo(OID.conveyedInfoJson, Buffer.from('{"a":1}'));
    writeFileSync(join(dir, 'unsigned.der'), der);
    const parsed = openssl(['asn1parse', '-inform', 'DER', '-in', join(dir, 'unsigned.der')]);
    expect(parsed).toContain('1.2.840.113549.1.9.16.1.43');
    expect(parsed).toMatch(/prim:\s+OCTET STRING/);
    expect(unwrapUnsigned(der).content.toString()).toBe('{"a":1}');
  });

  it('encrypted conveyed information decrypts with openssl using the device IDevID key', async () => {
    const device = await issueDeviceIdentity(pki, 'SN-ENC');
    const inner = contentInfo(OID.conveyedInfoJson, Buffer.from('{"secret":true}'));
    const der = await envelope(OID.data, inner, device.certPem);
    writeFileSync(join(dir, 'env.der'), der);
    writeFileSync(join(dir, 'dev.crt'), splitPem(device.certPem)[0]!);
    writeFileSync(join(dir, 'dev.key'), device.keyPem, { mode: 0o600 });
    const plain = execFileSync('openssl', ['cms', '-decrypt', '-inform', 'DER', '-in', join(dir, 'env.der'), '-recip', join(dir, 'dev.crt'), '-inkey', join(dir, 'dev.key')]);
    expect(Buffer.compare(plain, inner)).toBe(0);
    const ours = await decryptEnveloped(der, device);
    expect(Buffer.compare(ours.content, inner)).toBe(0);
    expect(readFileSync(join(dir, 'dev.key'), 'utf8')).toContain('PRIVATE KEY');
  });
});
