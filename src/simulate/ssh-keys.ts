// SSH host keys of a simulated DPU, in the form RFC 8572 §7.3 reports them with
// bootstrap-complete:
//
//   container ssh-host-keys { list ssh-host-key {
//     leaf algorithm { type string; }   // "ssh-ed25519", "ecdsa-sha2-nistp256", …
//     leaf key-data  { type binary; }   // "the key data for the SSH host key, as
//   } }                                 //  specified in RFC 4253 §6.6 (the public key format)"
//
// RFC 4253 §6.6: string "ssh-…" followed by algorithm-specific fields, each a uint32 length
// and its bytes (RFC 4251 §5 `string`). For the two algorithms generated here:
//   RFC 8709 §4   ed25519:  string "ssh-ed25519", string key (32 bytes)
//   RFC 5656 §3.1 ECDSA:    string "ecdsa-sha2-nistp256", string "nistp256",
//                           string Q (uncompressed point 0x04 || X || Y, 65 bytes)
// Pure apart from key generation (node:crypto); the private keys stay in the simulated DPU.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';

export interface SshHostKey {
  algorithm: 'ssh-ed25519' | 'ecdsa-sha2-nistp256';
  /** base64 of the RFC 4253 §6.6 public key blob */
  keyData: string;
}

/** RFC 4251 §5 string: uint32 length, then the bytes. */
function sshString(bytes: Buffer | string): Buffer {
  const body = typeof bytes === 'string' ? Buffer.from(bytes) : bytes;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}

/** The RFC 4253 §6.6 public key blob of an ed25519 or P-256 public key. */
export function sshPublicKeyBlob(publicKey: KeyObject): { algorithm: SshHostKey['algorithm']; blob: Buffer } {
  const jwk = publicKey.export({ format: 'jwk' });
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519' && jwk.x) {
    return { algorithm: 'ssh-ed25519', blob: Buffer.concat([sshString('ssh-ed25519'), sshString(Buffer.from(jwk.x, 'base64url'))]) };
  }
  if (jwk.kty === 'EC' && jwk.crv === 'P-256' && jwk.x && jwk.y) {
    const q = Buffer.concat([Buffer.from([0x04]), Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url')]);
    return { algorithm: 'ecdsa-sha2-nistp256', blob: Buffer.concat([sshString('ecdsa-sha2-nistp256'), sshString('nistp256'), sshString(q)]) };
  }
  throw new TypeError(`unsupported SSH host key type ${jwk.kty}/${jwk.crv}`);
}

/** Fresh host keys, as a DPU's first boot would generate them (ed25519 and ECDSA P-256). */
export function generateSshHostKeys(): SshHostKey[] {
  const ed = generateKeyPairSync('ed25519');
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return [ed.publicKey, ec.publicKey].map((k) => {
    const { algorithm, blob } = sshPublicKeyBlob(k);
    return { algorithm, keyData: blob.toString('base64') };
  });
}

/** The OpenSSH one-line form (`algorithm base64 comment`), for logs and known_hosts. */
export function authorizedKeyLine(key: SshHostKey, comment = ''): string {
  return `${key.algorithm} ${key.keyData}${comment ? ' ' + comment : ''}`;
}
