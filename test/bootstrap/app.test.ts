// The bootstrap server's HTTP behaviour through inject(): RFC 8040 media types and errors,
// RFC 8572 RPCs for both profiles, and hostile input (issue 2 "Hostile input").
import { beforeAll, describe, expect, it } from 'vitest';
import { contentInfo, OID, parseContentInfo, unwrapUnsigned, verifySignedData } from '../../src/pki/cms.js';
import { splitPem } from '../../src/pki/lab.js';
import { basic, bootstrapFixture, GBD, JSON_TYPE, PROGRESS, XML_TYPE, type BootstrapFixture } from '../helpers/bootstrap.js';

let f: BootstrapFixture;
const SHA = 'ab'.repeat(32);

beforeAll(async () => {
  f = await bootstrapFixture({ lookup: (name) => (name === 'os.img' ? { url: 'https://images.lab/os.img', sha256: SHA, osName: 'DPU-OS', osVersion: '2' } : undefined) });
  f.store.upsert({ serial: 'RFC-1', password: 'pw1', profile: 'rfc8572', bootImage: 'os.img', config: 'cfg' });
  f.store.upsert({ serial: 'OPI-1', password: 'my-secret', profile: 'opi', bootImage: 'os.img', preScript: '#!/bin/sh\n' });
  f.store.upsert({ serial: 'NOPW', profile: 'rfc8572' });
});

const input = (body: Record<string, unknown>) => JSON.stringify({ 'ietf-sztp-bootstrap-server:input': body });

function gbd(serial: string, password: string, body: string | Buffer = input({}), headers: Record<string, string> = {}) {
  return f.app.inject({ method: 'POST', url: GBD, headers: { authorization: basic(serial, password), 'content-type': JSON_TYPE, ...headers }, payload: body });
}

function errorOf(res: { body: string }) {
  const errors = JSON.parse(res.body)['ietf-restconf:errors'].error;
  expect(errors.length).toBeGreaterThan(0);
  // OPI agent quirk: each entry carries only these three members.
  for (const e of errors) expect(Object.keys(e).sort()).toEqual(['error-message', 'error-tag', 'error-type']);
  return errors[0];
}

describe('host-meta and routing', () => {
  it('serves /.well-known/host-meta pointing at /restconf', async () => {
    const res = await f.app.inject({ method: 'GET', url: '/.well-known/host-meta' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('application/xrd+xml');
    expect(res.body).toContain('<Link rel="restconf" href="/restconf"/>');
  });

  it.each(['/restconf/operations/%2e%2e/x', '//restconf/operations/x', '/restconf/operations/ietf-sztp-bootstrap-server:get-bootstrapping-data/..%2f..%2fetc%2fpasswd', '/etc/passwd'])('path trick %s is a RESTCONF 404', async (url) => {
    const res = await f.app.inject({ method: 'POST', url, headers: { authorization: basic('RFC-1', 'pw1'), 'content-type': JSON_TYPE }, payload: input({}) });
    expect(res.statusCode).toBe(404);
    expect(errorOf(res)['error-tag']).toBe('invalid-value');
  });

  it('GET on an RPC is 405 with Allow: POST', async () => {
    const res = await f.app.inject({ method: 'GET', url: GBD });
    expect(res.statusCode).toBe(405);
    expect(res.headers.allow).toContain('POST');
    expect(errorOf(res)['error-tag']).toBe('operation-not-supported');
  });
});

describe('get-bootstrapping-data', () => {
  it('opi profile: exactly {output:{conveyed-information}}, unsigned ContentInfo .43, no os-name/os-version', async () => {
    const res = await gbd('OPI-1', 'my-secret', input({ 'hw-model': 'x', nonce: '' }));
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain(JSON_TYPE);
    const body = JSON.parse(res.body);
    expect(Object.keys(body)).toEqual(['ietf-sztp-bootstrap-server:output']);
    expect(Object.keys(body['ietf-sztp-bootstrap-server:output'])).toEqual(['conveyed-information']);
    const der = Buffer.from(body['ietf-sztp-bootstrap-server:output']['conveyed-information'], 'base64');
    const { contentType, content } = unwrapUnsigned(der);
    expect(contentType).toBe(OID.conveyedInfoJson);
    const info = JSON.parse(content.toString())['ietf-sztp-conveyed-info:onboarding-information'];
    expect(info['boot-image']).toEqual({ 'download-uri': ['https://images.lab/os.img'], 'image-verification': [{ 'hash-algorithm': 'ietf-sztp-conveyed-info:sha-256', 'hash-value': SHA.match(/../g)!.join(':') }] });
    expect(Buffer.from(info['pre-configuration-script'], 'base64').toString()).toBe('#!/bin/sh\n');
  });

  it('opi profile is never signed, even when signed-data-preferred is sent', async () => {
    const res = await gbd('OPI-1', 'my-secret', input({ 'signed-data-preferred': [null] }));
    expect(Object.keys(JSON.parse(res.body)['ietf-sztp-bootstrap-server:output'])).toEqual(['conveyed-information']);
  });

  it('rfc8572 without signed-data-preferred: unsigned, with reporting-level and os-name', async () => {
    const res = await gbd('RFC-1', 'pw1');
    const out = JSON.parse(res.body)['ietf-sztp-bootstrap-server:output'];
    expect(out['reporting-level']).toBe('verbose');
    expect(out['ownership-voucher']).toBeUndefined();
    const info = JSON.parse(unwrapUnsigned(Buffer.from(out['conveyed-information'], 'base64')).content.toString())['ietf-sztp-conveyed-info:onboarding-information'];
    expect(info['boot-image']['os-name']).toBe('DPU-OS');
    expect(info['configuration-handling']).toBe('merge');
  });

  it('rfc8572 with signed-data-preferred: SignedData .43 by the owner, owner-certificate and voucher', async () => {
    const res = await gbd('RFC-1', 'pw1', input({ 'signed-data-preferred': [null] }));
    const out = JSON.parse(res.body)['ietf-sztp-bootstrap-server:output'];
    const der = Buffer.from(out['conveyed-information'], 'base64');
    expect(parseContentInfo(der).contentType).toBe(OID.signedData);
    const ownerCa = splitPem(f.pki.owner.certPem).at(-1)!;
    const verified = await verifySignedData(der, [ownerCa]);
    expect(verified.eContentType).toBe(OID.conveyedInfoJson);
    expect(out['owner-certificate']).toBeTruthy();
    expect(out['ownership-voucher']).toBeTruthy();
  });

  it('a nonce makes a fresh voucher carrying it; the same request without one is served from cache', async () => {
    const nonce = Buffer.alloc(16, 7).toString('base64');
    const a = JSON.parse((await gbd('RFC-1', 'pw1', input({ 'signed-data-preferred': [null], nonce }))).body)['ietf-sztp-bootstrap-server:output'];
    const { verifyVoucher } = await import('../../src/pki/voucher.js');
    const v = await verifyVoucher(Buffer.from(a['ownership-voucher'], 'base64'), f.pki.masa.certPem, 'RFC-1');
    expect(v.voucher.nonce).toBe(nonce);
    const b1 = (await gbd('RFC-1', 'pw1', input({ 'signed-data-preferred': [null] }))).body;
    const b2 = (await gbd('RFC-1', 'pw1', input({ 'signed-data-preferred': [null] }))).body;
    expect(b1).toBe(b2);
  });

  it('XML in, XML out: .42 conveyed information and an <output> element', async () => {
    const res = await f.app.inject({
      method: 'POST', url: GBD, headers: { authorization: basic('RFC-1', 'pw1'), 'content-type': XML_TYPE },
      payload: '<input xmlns="urn:ietf:params:xml:ns:yang:ietf-sztp-bootstrap-server"><hw-model>m</hw-model></input>',
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain(XML_TYPE);
    const b64 = /<conveyed-information>([^<]+)<\/conveyed-information>/.exec(res.body)![1]!;
    const { contentType, content } = unwrapUnsigned(Buffer.from(b64, 'base64'));
    expect(contentType).toBe(OID.conveyedInfoXml);
    expect(content.toString()).toContain('<onboarding-information xmlns="urn:ietf:params:xml:ns:yang:ietf-sztp-conveyed-info"');
  });

  it('accepts the RFC example typo application/yang.data+xml and answers JSON when Accept asks for it', async () => {
    const res = await f.app.inject({
      method: 'POST', url: GBD, headers: { authorization: basic('RFC-1', 'pw1'), 'content-type': 'application/yang.data+xml', accept: JSON_TYPE },
      payload: '<input xmlns="urn:ietf:params:xml:ns:yang:ietf-sztp-bootstrap-server"/>',
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain(JSON_TYPE);
  });

  it('no body at all is a valid request', async () => {
    const res = await f.app.inject({ method: 'POST', url: GBD, headers: { authorization: basic('RFC-1', 'pw1') } });
    expect(res.statusCode).toBe(200);
  });

  it('records the request in the device bootstrapping log and moves its state', async () => {
    const history = f.store.recentHistory('RFC-1', 5, 'request');
    expect(history.at(-1)!.data).toMatchObject({ rpc: 'get-bootstrapping-data', result: 'ok', response: 'onboarding-information' });
    expect(f.store.require('RFC-1').state).toBe('bootstrapping');
  });
});

describe('authentication', () => {
  it.each([
    ['wrong password', basic('RFC-1', 'nope')],
    ['unknown serial', basic('GHOST', 'pw')],
    ['device without password', basic('NOPW', '')],
    ['malformed Basic header', 'Basic !!!'],
    ['no credentials', ''],
  ])('%s → 401 access-denied with WWW-Authenticate', async (_name, authorization) => {
    const res = await f.app.inject({ method: 'POST', url: GBD, headers: { ...(authorization ? { authorization } : {}), 'content-type': JSON_TYPE }, payload: input({}) });
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toContain('Basic');
    expect(errorOf(res)['error-tag']).toBe('access-denied');
  });

  it('a wrong password for a registered device lands in its audit trail', () => {
    const failures = f.store.recentHistory('RFC-1', 50, 'request').filter((e) => e.data.result === 'error');
    expect(failures.some((e) => e.data.error === 'wrong password')).toBe(true);
  });

  it('a device only ever sees its own data: OPI-1 credentials never yield RFC-1 data', async () => {
    const res = await gbd('OPI-1', 'my-secret');
    const info = unwrapUnsigned(Buffer.from(JSON.parse(res.body)['ietf-sztp-bootstrap-server:output']['conveyed-information'], 'base64')).content.toString();
    expect(info).not.toContain(Buffer.from('cfg').toString('base64'));
  });
});

describe('hostile and malformed input', () => {
  it.each([
    ['truncated JSON', '{"ietf-sztp-bootstrap-server:input": {', 'malformed-message'],
    ['JSON array', '[1,2]', 'malformed-message'],
    ['unknown top-level member', '{"evil": {}}', 'unknown-element'],
    ['unknown input field', input({ 'hw-model': 'x', 'shell-command': 'rm -rf /' }), 'unknown-element'],
    ['nonce not base64', input({ nonce: '***' }), 'invalid-value'],
    ['nonce too short', input({ nonce: Buffer.alloc(4).toString('base64') }), 'invalid-value'],
    ['signed-data-preferred not empty', input({ 'signed-data-preferred': true }), 'invalid-value'],
    ['hw-model not a string', input({ 'hw-model': { a: 1 } }), 'invalid-value'],
    ['__proto__ pollution', '{"ietf-sztp-bootstrap-server:input": {"__proto__": {"admin": true}}}', 'unknown-element'],
  ])('%s → 400 %s', async (_name, body, tag) => {
    const res = await gbd('RFC-1', 'pw1', body);
    expect(res.statusCode).toBe(400);
    expect(errorOf(res)['error-tag']).toBe(tag);
  });

  it('XML with a DTD (billion laughs) is refused, not expanded', async () => {
    const xml = '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><input xmlns="urn:ietf:params:xml:ns:yang:ietf-sztp-bootstrap-server"><hw-model>&lol2;</hw-model></input>';
    const res = await gbd('RFC-1', 'pw1', xml, { 'content-type': XML_TYPE, accept: XML_TYPE });
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toContain(XML_TYPE);
    expect(res.body).toContain('<error-tag>malformed-message</error-tag>');
  });

  it('XML in the wrong namespace or not well-formed is a 400', async () => {
    for (const xml of ['<input xmlns="urn:evil"><hw-model>x</hw-model></input>', '<input xmlns="urn:ietf:params:xml:ns:yang:ietf-sztp-bootstrap-server"><hw-model>x</input>', '\u0000\u0001garbage']) {
      const res = await gbd('RFC-1', 'pw1', xml, { 'content-type': XML_TYPE });
      expect(res.statusCode).toBe(400);
    }
  });

  it('a 10 MB body is refused with 413 too-big without being decoded', async () => {
    const res = await gbd('RFC-1', 'pw1', Buffer.alloc(10 * 1024 * 1024, 0x20));
    expect(res.statusCode).toBe(413);
    expect(errorOf(res)['error-tag']).toBe('too-big');
  });

  it('wrong media type → 415; unacceptable Accept → 406', async () => {
    expect((await gbd('RFC-1', 'pw1', input({}), { 'content-type': 'text/html' })).statusCode).toBe(415);
    const res = await gbd('RFC-1', 'pw1', input({}), { accept: 'image/png' });
    expect(res.statusCode).toBe(406);
  });

  it('garbage bytes with a JSON content type → 400 malformed-message', async () => {
    const res = await gbd('RFC-1', 'pw1', Buffer.from([0xff, 0xfe, 0x00, 0x30, 0x82]));
    expect(res.statusCode).toBe(400);
  });

  it('the app still serves after all of that', async () => {
    expect((await gbd('RFC-1', 'pw1')).statusCode).toBe(200);
  });
});

describe('report-progress', () => {
  const progress = (serial: string, password: string, body: Record<string, unknown>) =>
    f.app.inject({ method: 'POST', url: PROGRESS, headers: { authorization: basic(serial, password), 'content-type': JSON_TYPE }, payload: input(body) });

  it('stores each report and answers 204', async () => {
    const res = await progress('RFC-1', 'pw1', { 'progress-type': 'boot-image-initiated', message: 'downloading' });
    expect(res.statusCode).toBe(204);
    expect(res.body).toBe('');
    const last = f.store.recentHistory('RFC-1', 1, 'progress')[0]!;
    expect(last.data).toMatchObject({ progressType: 'boot-image-initiated', message: 'downloading' });
    expect(f.store.require('RFC-1').state).toBe('provisioning');
  });

  it('bootstrap-complete with ssh-host-keys and trust-anchor-certs stores them and onboards the device', async () => {
    const cms = contentInfo(OID.data, Buffer.from('x')).toString('base64');
    const res = await progress('RFC-1', 'pw1', {
      'progress-type': 'bootstrap-complete',
      'ssh-host-keys': { 'ssh-host-key': [{ algorithm: 'ssh-ed25519', 'key-data': Buffer.alloc(32, 1).toString('base64') }] },
      'trust-anchor-certs': { 'trust-anchor-cert': [cms, Buffer.from('placeholder').toString('base64')] },
    });
    expect(res.statusCode).toBe(204);
    const last = f.store.recentHistory('RFC-1', 1, 'progress')[0]!;
    expect(last.data.sshHostKeys).toEqual([{ algorithm: 'ssh-ed25519', keyData: Buffer.alloc(32, 1).toString('base64') }]);
    expect(last.data.trustAnchorCerts).toHaveLength(2);
    expect(last.data.warnings).toEqual(['trust-anchor-cert[1] is not CMS; stored as sent']);
    expect(f.store.require('RFC-1').state).toBe('onboarded');
  });

  it('the OPI agent\'s empty containers on every report are dropped, not refused', async () => {
    const res = await progress('OPI-1', 'my-secret', { 'progress-type': 'bootstrap-initiated', message: '', 'ssh-host-keys': {}, 'trust-anchor-certs': {} });
    expect(res.statusCode).toBe(204);
  });

  it.each([
    [{}, 'missing-element'],
    [{ 'progress-type': 'reboot-now' }, 'invalid-value'],
    [{ 'progress-type': 'informational', 'ssh-host-keys': { 'ssh-host-key': [{ algorithm: 'a', 'key-data': 'AAAA' }] } }, 'invalid-value'],
    [{ 'progress-type': 'informational', extra: 1 }, 'unknown-element'],
  ])('refuses %j with %s', async (body, tag) => {
    const res = await progress('RFC-1', 'pw1', body);
    expect(res.statusCode).toBe(400);
    expect(errorOf(res)['error-tag']).toBe(tag);
  });
});

describe('a write that fails is never acknowledged', () => {
  it('report-progress whose commit fails gets 500 operation-failed, stores nothing, and the server goes on', async () => {
    const g = await bootstrapFixture();
    g.store.upsert({ serial: 'W1', password: 'pw' });
    // Simulate the disk refusing the write (as ENOSPC/SQLITE_FULL would) for progress events only.
    g.db.exec(`CREATE TRIGGER fail_progress BEFORE INSERT ON events WHEN NEW.type = 'progress' BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;`);
    const body = JSON.stringify({ 'ietf-sztp-bootstrap-server:input': { 'progress-type': 'bootstrap-complete' } });
    const headers = { authorization: basic('W1', 'pw'), 'content-type': JSON_TYPE };
    const failed = await g.app.inject({ method: 'POST', url: PROGRESS, headers, payload: body });
    expect(failed.statusCode).toBe(500);
    expect(errorOf(failed)['error-tag']).toBe('operation-failed');
    expect(failed.body).not.toContain('disk is full');
    expect(g.store.recentHistory('W1', 10, 'progress')).toHaveLength(0);
    expect(g.store.require('W1').state).toBe('registered');
    g.db.exec('DROP TRIGGER fail_progress');
    expect((await g.app.inject({ method: 'POST', url: PROGRESS, headers, payload: body })).statusCode).toBe(204);
    expect((await g.app.inject({ method: 'POST', url: GBD, headers, payload: input({}) })).statusCode).toBe(200);
  });
});
