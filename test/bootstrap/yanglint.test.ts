// Issue 2: yanglint, with the IETF modules in ../shared/yang, validates our RPC replies and
// inputs, conveyed information and vouchers, and rejects deliberately broken ones.
import { beforeAll, describe, expect, it } from 'vitest';
import { encodeConveyedInformation, type ConveyedInformation } from '../../src/bootstrap/conveyed-info.js';
import { buildVoucher } from '../../src/pki/voucher.js';
import { splitPem } from '../../src/pki/lab.js';
import { basic, bootstrapFixture, GBD, JSON_TYPE, XML_TYPE, type BootstrapFixture } from '../helpers/bootstrap.js';
import { missingShared, missingTool } from '../helpers/shared.js';
import { BOOTSTRAP_MODULE, unwrapYangData, yanglint } from '../helpers/yang.js';

const skip = missingTool('yanglint') || missingShared('yang', 'ietf-sztp-bootstrap-server@2019-04-30.yang');
const SHA = '0123456789abcdef'.repeat(4);

const onboarding: ConveyedInformation = {
  kind: 'onboarding-information',
  bootImage: { osName: 'DPU-OS', osVersion: '1.0', downloadUris: ['https://img.lab/a.img', 'http://mirror.lab/a.img'], sha256: SHA },
  preConfigurationScript: Buffer.from('#!/bin/sh\necho pre\n'),
  configuration: Buffer.from('<config/>'),
  configurationHandling: 'replace',
  postConfigurationScript: Buffer.from('#!/bin/sh\necho post\n'),
};
const redirect: ConveyedInformation = { kind: 'redirect-information', bootstrapServers: [{ address: 'bs2.lab', port: 9443, trustAnchor: Buffer.from([0x30, 0x00]) }, { address: '192.0.2.7' }] };

describe.skipIf(skip)('yanglint validates what we send', () => {
  let f: BootstrapFixture;
  let conveyedModule: string;
  let voucherModule: string;

  beforeAll(async () => {
    f = await bootstrapFixture({ lookup: () => ({ url: 'https://img.lab/os.img', sha256: SHA, osName: 'X', osVersion: '1' }) });
    f.store.upsert({ serial: 'R1', password: 'p', profile: 'rfc8572', bootImage: 'os.img', config: 'c' });
    f.store.upsert({ serial: 'O1', password: 'p', profile: 'opi', bootImage: 'os.img' });
    conveyedModule = unwrapYangData('ietf-sztp-conveyed-info@2019-04-30.yang');
    voucherModule = unwrapYangData('ietf-voucher@2018-05-09.yang');
  });

  async function replyOf(serial: string, body: string, type = JSON_TYPE) {
    const res = await f.app.inject({ method: 'POST', url: GBD, headers: { authorization: basic(serial, 'p'), 'content-type': type, accept: type }, payload: body });
    expect(res.statusCode).toBe(200);
    return res.body;
  }

  it.each([
    ['rfc8572 signed', 'R1', { 'signed-data-preferred': [null], nonce: Buffer.alloc(20, 1).toString('base64') }],
    ['rfc8572 unsigned', 'R1', {}],
    ['opi', 'O1', { nonce: '' }],
  ])('get-bootstrapping-data reply (%s) is a valid RPC reply', async (_n, serial, input) => {
    const body = JSON.parse(await replyOf(serial, JSON.stringify({ 'ietf-sztp-bootstrap-server:input': input })));
    const reply = { 'ietf-sztp-bootstrap-server:get-bootstrapping-data': body['ietf-sztp-bootstrap-server:output'] };
    const result = yanglint(['-t', 'reply', BOOTSTRAP_MODULE], JSON.stringify(reply), 'json');
    expect(result.output).toBe('');
    expect(result.ok).toBe(true);
  });

  it('an XML reply is valid too', async () => {
    const xml = await replyOf('R1', '<input xmlns="urn:ietf:params:xml:ns:yang:ietf-sztp-bootstrap-server"><signed-data-preferred/></input>', XML_TYPE);
    const reply = xml.replace('<output ', '<get-bootstrapping-data ').replace('</output>', '</get-bootstrapping-data>');
    const result = yanglint(['-t', 'reply', BOOTSTRAP_MODULE], reply, 'xml');
    expect(result.output).toBe('');
    expect(result.ok).toBe(true);
  });

  it.each([
    ['onboarding-information, rfc8572', onboarding, 'rfc8572'],
    ['onboarding-information, opi', onboarding, 'opi'],
    ['redirect-information, rfc8572', redirect, 'rfc8572'],
    ['redirect-information, opi', redirect, 'opi'],
  ] as const)('conveyed information (%s) validates in JSON and XML', (_n, info, profile) => {
    const json = yanglint(['-t', 'config', conveyedModule], encodeConveyedInformation(info, 'json', profile).toString(), 'json');
    expect(json.output).toBe('');
    const xml = yanglint(['-t', 'config', conveyedModule], encodeConveyedInformation(info, 'xml', profile).toString(), 'xml');
    expect(xml.output).toBe('');
    expect(json.ok && xml.ok).toBe(true);
  });

  it.each([
    ['with a nonce (expiry dropped: RFC 8366 must not(../nonce))', { nonce: Buffer.alloc(16, 3), expiresOn: new Date(Date.now() + 86400_000) }],
    ['with an expiry and no nonce', { expiresOn: new Date(Date.now() + 86400_000) }],
    ['with neither', {}],
  ])('the voucher we issue %s is a valid ietf-voucher artifact', (_n, extra) => {
    const voucher = buildVoucher({ serial: 'R1', pinnedDomainCertPem: splitPem(f.pki.owner.certPem).at(-1)!, ...extra });
    const result = yanglint(['-t', 'config', voucherModule], JSON.stringify(voucher), 'json');
    expect(result.output).toBe('');
    expect(result.ok).toBe(true);
  });

  it('report-progress inputs as our emulators send them are valid RPCs', () => {
    const rpc = { 'ietf-sztp-bootstrap-server:report-progress': { 'progress-type': 'bootstrap-complete', message: 'done', 'ssh-host-keys': { 'ssh-host-key': [{ algorithm: 'ssh-ed25519', 'key-data': 'AAAA' }] }, 'trust-anchor-certs': { 'trust-anchor-cert': ['MAA='] } } };
    expect(yanglint(['-t', 'rpc', BOOTSTRAP_MODULE], JSON.stringify(rpc), 'json').ok).toBe(true);
  });

  // Each case names the rule it breaks, and yanglint's message must name that rule: a document
  // refused for some other reason proves nothing about the named one (issue 11).
  it.each([
    ['a reply without conveyed-information', { 'ietf-sztp-bootstrap-server:get-bootstrapping-data': { 'reporting-level': 'verbose' } }, 'reply', 'bootstrap', /Mandatory node "conveyed-information"/],
    ['a reply with an unknown reporting-level', { 'ietf-sztp-bootstrap-server:get-bootstrapping-data': { 'conveyed-information': 'MAA=', 'reporting-level': 'chatty' } }, 'reply', 'bootstrap', /Invalid enumeration value "chatty".*reporting-level/],
    ['the OPI agent\'s empty nonce (why we drop it)', { 'ietf-sztp-bootstrap-server:get-bootstrapping-data': { nonce: '' } }, 'rpc', 'bootstrap', /Unsatisfied length.*\/nonce/],
    ['conveyed info with a hash-value that is not hex', JSON.parse(encodeConveyedInformation(onboarding, 'json', 'rfc8572').toString().replace(/"hash-value":"[^"]+"/, '"hash-value":"zz-top"')), 'config', 'conveyed', /Unsatisfied pattern - "zz-top".*hash-value/],
    // An empty list leaves redirect-information empty, and an empty non-presence container is no
    // data at all: what fails is the mandatory information-type choice (min-elements 1 cannot fire).
    ['conveyed info with an empty bootstrap-server list (nothing left of information-type)', { 'ietf-sztp-conveyed-info:redirect-information': { 'bootstrap-server': [] } }, 'config', 'conveyed', /Mandatory choice "information-type"/],
    ['a redirect bootstrap-server without its address (the list key)', { 'ietf-sztp-conveyed-info:redirect-information': { 'bootstrap-server': [{ port: 8443 }] } }, 'config', 'conveyed', /key.*address|address.*key|Mandatory node "address"/i],
    ['a voucher without serial-number', { 'ietf-voucher:voucher': { 'created-on': '2026-01-01T00:00:00Z', assertion: 'verified', 'pinned-domain-cert': 'MAA=' } }, 'config', 'voucher', /Mandatory node "serial-number"/],
  ] as const)('rejects %s', (_n, data, type, module, reason) => {
    const target = module === 'bootstrap' ? BOOTSTRAP_MODULE : module === 'conveyed' ? conveyedModule : voucherModule;
    const result = yanglint(['-t', type, target], JSON.stringify(data), 'json');
    expect(result.ok).toBe(false);
    expect(result.output).toMatch(reason);
  });
});
