// Secrets never reach logs; vendor vouchers pass through untouched; serial extraction options.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, redactUrl } from '../../src/log.js';
import { buildApiApp } from '../../src/api/app.js';
import { buildBootstrapApp } from '../../src/bootstrap/app.js';
import { DeviceAuthenticator } from '../../src/bootstrap/auth.js';
import { BootstrapResponder } from '../../src/bootstrap/responder.js';
import { imageResolver } from '../../src/bootstrap/images.js';
import { openDatabase } from '../../src/db/database.js';
import { DeviceStore } from '../../src/devices/store.js';
import { buildImagesApp } from '../../src/images/app.js';
import { makeEnv } from '../images/helpers.js';
import { serialFromCertificate } from '../../src/bootstrap/auth.js';
import { issueDeviceIdentity, splitPem } from '../../src/pki/lab.js';
import { basic, bootstrapFixture, GBD, JSON_TYPE, labPki } from '../helpers/bootstrap.js';
import { missingTool } from '../helpers/shared.js';

describe('log redaction', () => {
  it('passwords, tokens, keys and activation codes are censored wherever they sit', () => {
    const lines: string[] = [];
    const sink = new Writable({ write(chunk, _enc, done) { lines.push(chunk.toString()); done(); } });
    const log = createLogger('info', sink);
    log.info({ password: 'p1', token: 't1', device: { password: 'p2', bmc: { password: 'p3' } }, key: '-----BEGIN PRIVATE KEY-----', activationCode: 'AC-1', req: { headers: { authorization: 'Basic c2VjcmV0' } } }, 'hello');
    const text = lines.join('');
    for (const secret of ['p1', 't1', 'p2', 'p3', 'PRIVATE KEY', 'AC-1', 'c2VjcmV0']) expect(text).not.toContain(secret);
    expect(text).toContain('[redacted]');
  });
});

/** A logger at debug writing into an array, as `ztp serve` would write to stdout. */
function capturedLogger() {
  const lines: string[] = [];
  const sink = new Writable({ write(chunk, _enc, done) { lines.push(chunk.toString()); done(); } });
  return { log: createLogger('debug', sink), text: () => lines.join('') };
}

describe('secrets in logged URLs (issue 11: a 401 logged ?token=<real token>)', () => {
  it('redactUrl censors secret query values and userinfo passwords, and keeps the rest', () => {
    expect(redactUrl('/api/v1/devices?token=T0K&state=ready')).toBe('/api/v1/devices?token=[redacted]&state=ready');
    expect(redactUrl('/x?state=a&Access_Token=A;password=P#frag')).toBe('/x?state=a&Access_Token=[redacted];password=[redacted]#frag');
    expect(redactUrl('/x?%74oken=T')).toBe('/x?%74oken=[redacted]');
    expect(redactUrl('https://user:hunter2@hooks.lab/p?sig=S&a=1')).toBe('https://user:[redacted]@hooks.lab/p?sig=[redacted]&a=1');
    expect(redactUrl('/plain/path')).toBe('/plain/path');
    expect(redactUrl('/x?token')).toBe('/x?token');
  });

  it('admin API: GET /api/v1/devices?token=<the real token> answers 401 and the log does not hold the token', async () => {
    const { log, text } = capturedLogger();
    const token = 'real-admin-token-7f3a9c';
    const store = new DeviceStore(openDatabase({ file: ':memory:' }));
    const app = buildApiApp({ store, log, token });
    const res = await app.inject({ method: 'GET', url: `/api/v1/devices?state=ready&token=${token}` });
    expect(res.statusCode).toBe(401);
    const res2 = await app.inject({ method: 'GET', url: `/api/v1/events?access_token=${token}x&password=pw-9` });
    expect(res2.statusCode).toBe(401);
    await app.close();
    const logged = text();
    expect(logged).toContain('/api/v1/devices?state=ready&token=[redacted]');
    for (const secret of [token, 'pw-9']) expect(logged).not.toContain(secret);
  });

  it('bootstrap server: a 404 for a URL carrying ?token= logs the URL redacted', async () => {
    const { log, text } = capturedLogger();
    const { pki } = await labPki();
    const store = new DeviceStore(openDatabase({ file: ':memory:' }));
    const app = buildBootstrapApp({
      store, log, maxBodyBytes: 65_536,
      responder: new BootstrapResponder({ pki, images: imageResolver(undefined), encrypt: false }),
      authenticator: new DeviceAuthenticator(store, { mode: 'cert-or-basic', serialFrom: 'serialNumber' }),
    });
    const res = await app.inject({ method: 'POST', url: '/restconf/data?token=boot-secret-1&password=boot-secret-2&x=1' });
    expect(res.statusCode).toBe(404);
    await app.close();
    const logged = text();
    expect(logged).toContain('/restconf/data?token=[redacted]&password=[redacted]&x=1');
    for (const secret of ['boot-secret-1', 'boot-secret-2']) expect(logged).not.toContain(secret);
  });

  it('image server: a refused path carrying ?token= logs the URL redacted', async () => {
    const { log, text } = capturedLogger();
    const env = makeEnv();
    try {
      const app = await buildImagesApp({ catalogue: env.catalogue, store: env.store, log, config: env.config, scheme: 'http', peerIdentity: () => ({ tls: false, authorized: false }) });
      const res = await app.inject({ method: 'GET', url: '/images/../etc/passwd?token=img-secret-1' });
      expect(res.statusCode).toBeGreaterThanOrEqual(400);
      const res2 = await app.inject({ method: 'DELETE', url: '/images/x?password=img-secret-2' });
      expect(res2.statusCode).toBe(405);
      await app.close();
    } finally {
      env.cleanup();
    }
    const logged = text();
    expect(logged).toContain('token=[redacted]');
    expect(logged).toContain('password=[redacted]');
    for (const secret of ['img-secret-1', 'img-secret-2']) expect(logged).not.toContain(secret);
  });
});

describe('vendor-issued vouchers', () => {
  it('a <serial>.vcj in the vouchers directory is sent byte for byte instead of a lab voucher', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ztp-vcj-'));
    const vendorBytes = Buffer.from('3082000a0609608648016503040201', 'hex');
    writeFileSync(join(dir, 'VENDOR-1.vcj'), vendorBytes);
    const { pki } = await labPki();
    const f = await bootstrapFixture();
    // The fixture's responder reads pki.vouchersDir: point a copy of it at our directory.
    const { BootstrapResponder } = await import('../../src/bootstrap/responder.js');
    const { imageResolver } = await import('../../src/bootstrap/images.js');
    const responder = new BootstrapResponder({ pki: { ...pki, vouchersDir: dir }, images: imageResolver(undefined), encrypt: false });
    f.store.upsert({ serial: 'VENDOR-1', password: 'pw', config: 'x' });
    const reply = await responder.reply(f.store.require('VENDOR-1'), { signedDataPreferred: true, warnings: [] }, 'json');
    expect(Buffer.compare(reply.output.ownershipVoucher!, vendorBytes)).toBe(0);
    // and through the HTTP app of the fixture (lab voucher there), the reply is still signed
    const res = await f.app.inject({ method: 'POST', url: GBD, headers: { authorization: basic('VENDOR-1', 'pw'), 'content-type': JSON_TYPE }, payload: JSON.stringify({ 'ietf-sztp-bootstrap-server:input': { 'signed-data-preferred': [null] } }) });
    expect(JSON.parse(res.body)['ietf-sztp-bootstrap-server:output']['ownership-voucher']).toBeTruthy();
  });
});

describe('serial number from an IDevID', () => {
  it('subject serialNumber by default, CN, or a regex over the subject', async () => {
    const { pki } = await labPki();
    const id = await issueDeviceIdentity(pki, 'SN-77', { commonName: 'dpu-77.lab' });
    const cert = new X509Certificate(splitPem(id.certPem)[0]!);
    expect(serialFromCertificate(cert, 'serialNumber')).toBe('SN-77');
    expect(serialFromCertificate(cert, 'CN')).toBe('dpu-77.lab');
    expect(serialFromCertificate(cert, 'regex', /CN=dpu-(\d+)\.lab/)).toBe('77');
    expect(serialFromCertificate(cert, 'hardwareModuleName')).toBeUndefined();
  });

  // asn1js, which walks the SAN, is loaded on first use (issue 12): this is that first use.
  it.skipIf(missingTool('openssl'))('RFC 4108 hardwareModuleName in the SAN, as openssl writes it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ztp-hmn-'));
    const config = join(dir, 'hmn.cnf');
    writeFileSync(
      config,
      ['[req]', 'distinguished_name = dn', 'x509_extensions = ext', 'prompt = no', '[dn]', 'CN = device', '[ext]', 'subjectAltName = otherName:1.3.6.1.5.5.7.8.4;SEQUENCE:hmn', '[hmn]', 'hwType = OID:1.3.6.1.4.1.99999.1', 'hwSerialNum = FORMAT:ASCII,OCT:HMN-4242', ''].join('\n'),
    );
    const pem = execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'key.pem'), '-days', '1', '-config', config], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const cert = new X509Certificate(pem);
    expect(serialFromCertificate(cert, 'hardwareModuleName')).toBe('HMN-4242');
    expect(serialFromCertificate(cert, 'serialNumber')).toBeUndefined();
  });
});
