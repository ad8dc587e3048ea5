// Secrets never reach logs; vendor vouchers pass through untouched; serial extraction options.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { serialFromCertificate } from '../../src/bootstrap/auth.js';
import { issueDeviceIdentity, splitPem } from '../../src/pki/lab.js';
import { basic, bootstrapFixture, GBD, JSON_TYPE, labPki } from '../helpers/bootstrap.js';

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
});
