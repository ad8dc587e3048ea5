// signedData caches the signer's parsed chain and its encoded certificate SET; its output must
// stay byte-identical to the plain pkijs encoding it replaced (openssl verifies that one).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config.js';
import { ensureLabPki, splitPem } from '../../src/pki/lab.js';
import { OID, pemToCertificate, signedData, signerChainCache, verifySignedData } from '../../src/pki/cms.js';
import type { PemKeyPair, SuitePki } from '../../src/pki/material.js';

let pki: SuitePki;
beforeAll(async () => {
  pki = (await ensureLabPki(mkdtempSync(join(tmpdir(), 'ztp-cms-cache-')), validateConfig({}).pki, 'ztp.example.test')).pki;
});

const ab = (b: Uint8Array): ArrayBuffer => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;

/**
 * The encoding before the cache, done by pkijs end to end: certificates parsed from PEM, sorted by
 * their DER, SignedData + ContentInfo encoded by toSchema/toBER. ECDSA signatures are randomised,
 * so the signature value is taken from `der` (the reply under test); everything else is rebuilt.
 */
function referenceEncoding(der: Buffer, signer: PemKeyPair, eContentType: string, content: Buffer): Buffer {
  const parsed = new pkijs.SignedData({ schema: new pkijs.ContentInfo({ schema: asn1js.fromBER(ab(der)).result }).content });
  const parsedInfo = parsed.signerInfos[0]!;
  const certs = splitPem(signer.certPem).map(pemToCertificate);
  const sorted = certs.map((c) => ({ c, der: Buffer.from(c.toSchema().toBER(false)) })).sort((x, y) => Buffer.compare(x.der, y.der)).map((e) => e.c);
  const encap = new pkijs.EncapsulatedContentInfo({ eContentType });
  encap.eContent = new asn1js.OctetString({ valueHex: ab(content) });
  const signed = new pkijs.SignedData({
    version: 1,
    encapContentInfo: encap,
    digestAlgorithms: parsed.digestAlgorithms,
    signerInfos: [
      new pkijs.SignerInfo({
        version: 1,
        sid: new pkijs.IssuerAndSerialNumber({ issuer: certs[0]!.issuer, serialNumber: certs[0]!.serialNumber }),
        signedAttrs: new pkijs.SignedAndUnsignedAttributes({ type: 0, attributes: parsedInfo.signedAttrs!.attributes }),
        digestAlgorithm: parsedInfo.digestAlgorithm,
        signatureAlgorithm: parsedInfo.signatureAlgorithm,
        signature: parsedInfo.signature,
      }),
    ],
    certificates: sorted,
  });
  return Buffer.from(new pkijs.ContentInfo({ contentType: OID.signedData, content: signed.toSchema(true) }).toSchema().toBER(false));
}

describe('signedData signer cache', () => {
  it('parses a signer chain once across replies, and once per distinct signer', async () => {
    signerChainCache.clear();
    const before = signerChainCache.parses();
    for (let i = 0; i < 3; i++) await signedData({ eContentType: OID.conveyedInfoJson, content: Buffer.from(`reply ${i}`), signer: pki.owner });
    expect(signerChainCache.parses() - before).toBe(1);
    await signedData({ eContentType: OID.voucherJson, content: Buffer.from('{}'), signer: pki.masa });
    await signedData({ eContentType: OID.voucherJson, content: Buffer.from('{"a":1}'), signer: pki.masa });
    expect(signerChainCache.parses() - before).toBe(2);
  });

  it.each([
    ['owner, cold cache', 'owner', true],
    ['owner, warm cache', 'owner', false],
    ['masa, warm cache', 'masa', false],
  ] as const)('output is byte-identical to the uncached pkijs encoding (%s)', async (_name, who, cold) => {
    if (cold) signerChainCache.clear();
    const signer = pki[who];
    // > 64 KiB of content exercises the long-form DER lengths too.
    for (const content of [Buffer.from('short'), Buffer.alloc(70_000, 0x7b)]) {
      const der = await signedData({ eContentType: OID.conveyedInfoJson, content, signer, signingTime: new Date('2026-01-02T03:04:05Z') });
      expect(der.equals(referenceEncoding(der, signer, OID.conveyedInfoJson, content))).toBe(true);
      const verified = await verifySignedData(der, [splitPem(signer.certPem).at(-1)!]);
      expect(verified.content.equals(content)).toBe(true);
      expect(verified.certPems).toHaveLength(splitPem(signer.certPem).length);
    }
  });

  it('a signer without a certificate is still the typed error, and is not cached as success', async () => {
    const bad = { certPem: 'no certificate here', keyPem: pki.owner.keyPem };
    await expect(signedData({ eContentType: OID.data, content: Buffer.from('x'), signer: bad })).rejects.toMatchObject({ code: 'PKI_MISSING_MATERIAL' });
    await expect(signedData({ eContentType: OID.data, content: Buffer.from('x'), signer: bad })).rejects.toMatchObject({ code: 'PKI_MISSING_MATERIAL' });
  });
});
