// `ztp device cert --p12`: a password-protected PKCS#12 bundle of a lab device identity (ECDSA
// key + leaf + issuing CA), read back by two independent implementations: OpenSSL and Python's
// cryptography (when installed).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/cli/common.js';
import { main } from '../../src/cli/main.js';
import { buildPkcs12 } from '../../src/pki/pkcs12.js';
import { missingTool } from '../helpers/shared.js';

const dir = mkdtempSync(join(tmpdir(), 'ztp-p12-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function ztp(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['--data-dir', join(dir, 'data'), ...args], { out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join(''), err: err.join('') };
}

function openssl(args: string[], input?: string): { status: number | null; stdout: string; stderr: string } {
  return spawnSync('openssl', args, { encoding: 'utf8', input });
}

const publicKey = (pem: string) => execFileSync('openssl', ['pkey', '-pubout'], { input: pem, encoding: 'utf8' });

function pythonHasCryptography(): string {
  if (missingTool('python3')) return 'python3 is not installed; skipping';
  const r = spawnSync('python3', ['-c', 'import cryptography.hazmat.primitives.serialization.pkcs12']);
  if (r.status === 0) return '';
  const reason = 'python3-cryptography is not installed; skipping the second reader';
  console.warn(reason);
  return reason;
}

describe.skipIf(missingTool('openssl'))('ztp device cert --p12', () => {
  it('writes <serial>.p12 and a generated password file (both 0600); openssl reads the chain with the password, refuses a wrong one', async () => {
    const out = join(dir, 'gen');
    const r = await ztp('device', 'cert', 'P12-1', '--out', out, '--p12', '--json');
    expect(r.code).toBe(EXIT.OK);
    const files = JSON.parse(r.out) as Record<string, string>;
    expect(files).toMatchObject({ p12: join(out, 'P12-1.p12'), p12Password: join(out, 'P12-1.p12.pass') });
    for (const f of [files.p12!, files.p12Password!]) expect(statSync(f).mode & 0o777).toBe(0o600);
    const password = readFileSync(files.p12Password!, 'utf8').trim();
    expect(password.length).toBeGreaterThanOrEqual(24);
    expect(r.out + r.err).not.toContain(password);

    const info = openssl(['pkcs12', '-info', '-nokeys', '-in', files.p12!, '-passin', `pass:${password}`]);
    expect(info.status, info.stderr).toBe(0);
    // The leaf (serial in subject serialNumber) and its issuing CA; key shrouded with PBES2/AES-256.
    expect(info.stdout).toMatch(/subject=CN ?= ?P12-1, serialNumber ?= ?P12-1/);
    expect(info.stdout).toMatch(/subject=CN ?= ?dpu-ztp lab IDevID issuing CA/);
    expect(info.stderr).toMatch(/MAC: sha256, Iteration 2048/);
    expect(info.stderr).toMatch(/Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC/);
    expect(info.stdout).toMatch(/friendlyName: P12-1/);

    const wrong = openssl(['pkcs12', '-info', '-nokeys', '-in', files.p12!, '-passin', 'pass:not-the-password']);
    expect(wrong.status).not.toBe(0);
    expect(wrong.stderr).toMatch(/Mac verify error/);

    // The key inside is the key of <serial>.key, and it pairs with the leaf.
    const keys = openssl(['pkcs12', '-in', files.p12!, '-nocerts', '-nodes', '-passin', `pass:${password}`]);
    expect(keys.status, keys.stderr).toBe(0);
    expect(publicKey(keys.stdout)).toBe(publicKey(readFileSync(files.key!, 'utf8')));
    const leaf = openssl(['x509', '-pubkey', '-noout'], readFileSync(files.cert!, 'utf8')).stdout;
    expect(leaf).toBe(publicKey(keys.stdout));
  });

  it('--p12-password-file takes the first line (UTF-8 too) and writes no password file', async () => {
    const out = join(dir, 'file');
    const passFile = join(dir, 'p12.pass');
    writeFileSync(passFile, 'grüße-Ω-lab\nignored second line\n');
    const r = await ztp('device', 'cert', 'P12-2', '--out', out, '--p12', '--p12-password-file', passFile, '--json');
    expect(r.code).toBe(EXIT.OK);
    const files = JSON.parse(r.out) as Record<string, string>;
    expect(files.p12Password).toBeUndefined();
    const info = openssl(['pkcs12', '-info', '-nokeys', '-in', files.p12!, '-passin', `file:${passFile}`]);
    expect(info.status, info.stderr).toBe(0);
    expect(info.stdout).toMatch(/serialNumber ?= ?P12-2/);
  });

  it.skipIf(pythonHasCryptography())('a second reader: Python cryptography loads key and certificates', async () => {
    const out = join(dir, 'py');
    const r = await ztp('device', 'cert', 'P12-3', '--out', out, '--p12', '--json');
    const files = JSON.parse(r.out) as Record<string, string>;
    const script = [
      'import sys',
      'from cryptography.hazmat.primitives.serialization import pkcs12',
      'key, cert, extra = pkcs12.load_key_and_certificates(open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read().strip())',
      'from cryptography.hazmat.primitives.asymmetric import ec',
      'from cryptography.x509.oid import NameOID',
      'pub = lambda k: k.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)',
      'from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat',
      'print(isinstance(key, ec.EllipticCurvePrivateKey), cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value, len(extra), pub(key.public_key()) == pub(cert.public_key()))',
    ].join('\n');
    const py = spawnSync('python3', ['-c', script, files.p12!, files.p12Password!], { encoding: 'utf8' });
    expect(py.status, py.stderr).toBe(0);
    expect(py.stdout.trim()).toBe('True P12-3 1 True');
  });

  it('refuses --p12-password-file without --p12, and an empty password file (no bundle written)', async () => {
    const usage = await ztp('device', 'cert', 'P12-4', '--out', join(dir, 'u'), '--p12-password-file', '/dev/null', '--json');
    expect(usage.code).toBe(EXIT.USAGE);
    const empty = join(dir, 'empty.pass');
    writeFileSync(empty, '\n');
    const r = await ztp('device', 'cert', 'P12-5', '--out', join(dir, 'e'), '--p12', '--p12-password-file', empty, '--json');
    expect(r.code).toBe(EXIT.INVALID);
    expect(JSON.parse(r.err).error.message).toMatch(/empty first line/);
  });

  it('buildPkcs12 refuses a non-PKCS#8 key, no certificate and an empty password with typed errors', () => {
    expect(() => buildPkcs12({ keyPem: '-----BEGIN EC PRIVATE KEY-----\nAA==\n-----END EC PRIVATE KEY-----', certPem: '-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----', password: 'x' })).toThrow(expect.objectContaining({ code: 'PKI_MISSING_MATERIAL' }));
    expect(() => buildPkcs12({ keyPem: '-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----', certPem: '', password: 'x' })).toThrow(expect.objectContaining({ code: 'PKI_INVALID_CERT' }));
    expect(() => buildPkcs12({ keyPem: '-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----', certPem: '-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----', password: '' })).toThrow(expect.objectContaining({ code: 'PKI_MISSING_MATERIAL' }));
  });
});
