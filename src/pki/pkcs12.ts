// PKCS#12 (RFC 7292) bundle of a lab device identity, for agents and TPM tooling that import one
// (`ztp device cert --p12`). node-forge supplies the ASN.1 writer, PBES2 key encryption and the
// PKCS#12 MAC key derivation. Its own toPkcs12Asn1 only takes RSA keys and its certificate parser
// only RSA public keys, while lab identities are ECDSA P-256: the structure is assembled here from
// DER, the way toPkcs12Asn1 does it.
//
// RFC 7292 §4:
//   PFX ::= SEQUENCE { version INTEGER {v3(3)}, authSafe ContentInfo, macData MacData OPTIONAL }
//   MacData ::= SEQUENCE { mac DigestInfo, macSalt OCTET STRING, iterations INTEGER DEFAULT 1 }
//   AuthenticatedSafe ::= SEQUENCE OF ContentInfo   -- data (plain) or encryptedData
//   SafeContents ::= SEQUENCE OF SafeBag
//   SafeBag ::= SEQUENCE { bagId OID, bagValue [0] EXPLICIT ANY, bagAttributes SET OF PKCS12Attribute OPTIONAL }
//   CertBag ::= SEQUENCE { certId OID (x509Certificate), certValue [0] EXPLICIT OCTET STRING (DER) }
// The key goes in a pkcs8ShroudedKeyBag (EncryptedPrivateKeyInfo, PBES2: PBKDF2-HMAC-SHA256 and
// AES-256-CBC); certificates in a plain `data` ContentInfo (they are public); the MAC is
// HMAC-SHA256 keyed by the RFC 7292 appendix B KDF (ID 3), as OpenSSL 3 writes by default.
import { createHash, randomBytes } from 'node:crypto';
import forge from 'node-forge';
import { ZtpError } from '../errors.js';
import { splitPem } from './lab.js';

const { asn1, pki } = forge;
const U = asn1.Class.UNIVERSAL;
const CTX = asn1.Class.CONTEXT_SPECIFIC;
const T = asn1.Type;

/** OpenSSL 3's default iteration count for both the key encryption and the MAC. */
export const PKCS12_ITERATIONS = 2048;

export interface Pkcs12Input {
  /** PKCS#8 private key PEM */
  keyPem: string;
  /** leaf first, then its issuing CA(s) */
  certPem: string;
  password: string;
  /** the bag's friendlyName (e.g. the serial number) */
  friendlyName?: string;
  iterations?: number;
}

const oid = (dotted: string) => asn1.create(U, T.OID, false, asn1.oidToDer(dotted).getBytes());
const octets = (bytes: string) => asn1.create(U, T.OCTETSTRING, false, bytes);
const seq = (items: forge.asn1.Asn1[]) => asn1.create(U, T.SEQUENCE, true, items);
const explicit0 = (item: forge.asn1.Asn1) => asn1.create(CTX, 0, true, [item]);
const binary = (buf: Buffer) => buf.toString('binary');

function pemBody(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----(BEGIN|END) [^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

/** ContentInfo of type data wrapping DER SafeContents. */
function dataContentInfo(safeContents: forge.asn1.Asn1): forge.asn1.Asn1 {
  return seq([oid(pki.oids.data!), explicit0(octets(asn1.toDer(safeContents).getBytes()))]);
}

/** DER bytes of a password-protected PKCS#12 bundle holding the key and its certificate chain. */
export function buildPkcs12(input: Pkcs12Input): Buffer {
  const iterations = input.iterations ?? PKCS12_ITERATIONS;
  const certs = splitPem(input.certPem).map(pemBody);
  if (certs.length === 0) throw new ZtpError('PKI_INVALID_CERT', 'PKCS#12: no certificate to bundle');
  if (!/-----BEGIN PRIVATE KEY-----/.test(input.keyPem)) throw new ZtpError('PKI_MISSING_MATERIAL', 'PKCS#12: the key must be a PKCS#8 PEM (BEGIN PRIVATE KEY)');
  if (!input.password) throw new ZtpError('PKI_MISSING_MATERIAL', 'PKCS#12: a password is required');

  // Pairs the key with the leaf (RFC 7292 §4.2: localKeyId), as OpenSSL does: SHA-1 of the leaf.
  const attrs: forge.asn1.Asn1[] = [seq([oid(pki.oids.localKeyId!), asn1.create(U, T.SET, true, [octets(binary(createHash('sha1').update(certs[0]!).digest()))])])];
  if (input.friendlyName) attrs.push(seq([oid(pki.oids.friendlyName!), asn1.create(U, T.SET, true, [asn1.create(U, T.BMPSTRING, false, input.friendlyName)])]));
  const bagAttrs = asn1.create(U, T.SET, true, attrs);

  const certBags = certs.map((der, i) => {
    const certBag = seq([oid(pki.oids.x509Certificate!), explicit0(octets(binary(der)))]);
    return seq([oid(pki.oids.certBag!), explicit0(certBag), ...(i === 0 ? [bagAttrs] : [])]);
  });

  // PBES2 takes the password as bytes: UTF-8 (RFC 8018 §3). forge strings are byte strings.
  const privateKeyInfo = asn1.fromDer(binary(pemBody(input.keyPem)));
  const encrypted = pki.encryptPrivateKeyInfo(privateKeyInfo, forge.util.encodeUtf8(input.password), { algorithm: 'aes256', count: iterations, saltSize: 16, prfAlgorithm: 'sha256' } as Parameters<typeof pki.encryptPrivateKeyInfo>[2]);
  const keyBag = seq([oid(pki.oids.pkcs8ShroudedKeyBag!), explicit0(encrypted), bagAttrs]);

  const authSafe = seq([dataContentInfo(seq(certBags)), dataContentInfo(seq([keyBag]))]);
  const authSafeDer = asn1.toDer(authSafe).getBytes();

  // RFC 7292 appendix B: the MAC key from the password as a BMPString, ID 3, SHA-256.
  const macSalt = binary(randomBytes(16));
  const macKey = forge.pkcs12.generateKey(input.password, new forge.util.ByteStringBuffer(macSalt), 3, iterations, 32, forge.md.sha256.create());
  const hmac = forge.hmac.create();
  hmac.start('sha256', macKey.getBytes());
  hmac.update(authSafeDer);
  const macData = seq([
    seq([seq([oid(pki.oids.sha256!), asn1.create(U, T.NULL, false, '')]), octets(hmac.digest().getBytes())]),
    octets(macSalt),
    asn1.create(U, T.INTEGER, false, asn1.integerToDer(iterations).getBytes()),
  ]);

  const pfx = seq([asn1.create(U, T.INTEGER, false, asn1.integerToDer(3).getBytes()), seq([oid(pki.oids.data!), explicit0(octets(authSafeDer))]), macData]);
  return Buffer.from(asn1.toDer(pfx).getBytes(), 'binary');
}
