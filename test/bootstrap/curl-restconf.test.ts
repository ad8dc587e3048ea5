// An independent client talks to the RESTCONF endpoint of the running suite: curl with mutual
// TLS (the device's IDevID as client certificate, the lab root as the only trusted CA), both
// RPCs (get-bootstrapping-data, report-progress) in both encodings (RFC 8040 §5.2 JSON and XML).
// Nothing of ours is on the client side, so what passes here passes for any device's stack.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OID, unwrapUnsigned } from '../../src/pki/cms.js';
import { issueDeviceIdentity } from '../../src/pki/lab.js';
import { missingTool } from '../helpers/shared.js';
import { startTestSuite, type TestSuite } from '../helpers/suite.js';

const skip = missingTool('curl');
const GBD = '/restconf/operations/ietf-sztp-bootstrap-server:get-bootstrapping-data';
const PROGRESS = '/restconf/operations/ietf-sztp-bootstrap-server:report-progress';
const NS = 'urn:ietf:params:xml:ns:yang:ietf-sztp-bootstrap-server';

let t: TestSuite;
let dir: string;
const files = { ca: '', cert: '', key: '' };

interface CurlResult {
  status: number;
  contentType: string;
  body: string;
  exit: number | null;
  stderr: string;
}

/** One POST by curl (every socket step bounded), with the device's client certificate unless told otherwise. */
async function curl(path: string, body: string, type: 'json' | 'xml', opts: { clientCert?: boolean; cacert?: boolean } = {}): Promise<CurlResult> {
  const media = type === 'json' ? 'application/yang-data+json' : 'application/yang-data+xml';
  const args = ['--silent', '--show-error', '--connect-timeout', '5', '--max-time', '20', '--request', 'POST', '--header', `content-type: ${media}`, '--header', `accept: ${media}`, '--data-binary', '@-'];
  if (opts.cacert !== false) args.push('--cacert', files.ca);
  if (opts.clientCert !== false) args.push('--cert', files.cert, '--key', files.key);
  args.push('--write-out', '\n%{http_code} %{content_type}', `${t.bootstrapBase}${path}`);
  // Asynchronous: the server answers from this very process.
  return new Promise((resolve, reject) => {
    const child = spawn('curl', args, { stdio: ['pipe', 'pipe', 'pipe'], timeout: 30_000 });
    let out = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (exit) => {
      const cut = out.lastIndexOf('\n');
      const [code, contentType = ''] = out.slice(cut + 1).split(' ');
      resolve({ status: Number(code), contentType, body: out.slice(0, cut), exit, stderr });
    });
    child.stdin.end(body);
  });
}

beforeAll(async () => {
  if (skip) return;
  t = await startTestSuite('ztp-curl-restconf-');
  dir = mkdtempSync(join(tmpdir(), 'ztp-curl-id-'));
  t.suite.ctx.store.upsert({ serial: 'CURL-1', profile: 'rfc8572', config: 'hostname curl-1\n' });
  const idevid = await issueDeviceIdentity(t.suite.ctx.pki, 'CURL-1');
  Object.assign(files, { ca: join(dir, 'ca.pem'), cert: join(dir, 'idevid.pem'), key: join(dir, 'idevid.key') });
  writeFileSync(files.ca, t.suite.ctx.pki.rootCaPem);
  writeFileSync(files.cert, idevid.certPem);
  writeFileSync(files.key, idevid.keyPem, { mode: 0o600 });
});

afterAll(async () => {
  await t?.suite.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(skip)('curl with mutual TLS against the RESTCONF endpoint', () => {
  it('get-bootstrapping-data in JSON: 200, yang-data+json, conveyed information for this device', async () => {
    const r = await curl(GBD, JSON.stringify({ 'ietf-sztp-bootstrap-server:input': { 'hw-model': 'curl-model' } }), 'json');
    expect(r.exit, r.stderr).toBe(0);
    expect(r.status, r.body).toBe(200);
    expect(r.contentType).toMatch(/^application\/yang-data\+json/);
    const output = (JSON.parse(r.body) as Record<string, Record<string, string>>)['ietf-sztp-bootstrap-server:output']!;
    const conveyed = Buffer.from(output['conveyed-information']!, 'base64');
    const info = JSON.parse(unwrapUnsigned(conveyed).content.toString()) as Record<string, Record<string, string>>;
    expect(Buffer.from(info['ietf-sztp-conveyed-info:onboarding-information']!.configuration!, 'base64').toString()).toBe('hostname curl-1\n');
    expect(t.suite.ctx.store.recentHistory('CURL-1', 10, 'request').at(-1)!.data).toMatchObject({ result: 'ok', auth: 'cert' });
  });

  it('get-bootstrapping-data in XML: 200, yang-data+xml, the output element in the module namespace', async () => {
    const r = await curl(GBD, `<input xmlns="${NS}"><hw-model>curl-model</hw-model></input>`, 'xml');
    expect(r.exit, r.stderr).toBe(0);
    expect(r.status, r.body).toBe(200);
    expect(r.contentType).toMatch(/^application\/yang-data\+xml/);
    expect(r.body).toMatch(new RegExp(`<output xmlns="${NS.replace(/[.:]/g, '\\$&')}">`));
    const b64 = /<conveyed-information>([^<]+)<\/conveyed-information>/.exec(r.body)?.[1];
    expect(b64, r.body).toBeDefined();
    // XML requests get XML conveyed information (RFC 8572 §5.3 content type .42)
    expect(unwrapUnsigned(Buffer.from(b64!, 'base64')).contentType).toBe(OID.conveyedInfoXml);
  });

  it('report-progress in JSON and in XML: 204 with no body, each report in the device history', async () => {
    const json = await curl(PROGRESS, JSON.stringify({ 'ietf-sztp-bootstrap-server:input': { 'progress-type': 'bootstrap-initiated', message: 'from curl (json)' } }), 'json');
    expect(json.exit, json.stderr).toBe(0);
    expect(json.status, json.body).toBe(204);
    expect(json.body).toBe('');
    const xml = await curl(PROGRESS, `<input xmlns="${NS}"><progress-type>parsing-initiated</progress-type><message>from curl (xml)</message></input>`, 'xml');
    expect(xml.status, xml.body).toBe(204);
    const reports = t.suite.ctx.store.recentHistory('CURL-1', 10, 'progress').map((e) => [e.data.progressType, e.data.message]);
    expect(reports).toEqual(expect.arrayContaining([['bootstrap-initiated', 'from curl (json)'], ['parsing-initiated', 'from curl (xml)']]));
  });

  it('refusals a stock client sees: no client certificate → 401 RESTCONF error; an unknown CA → curl refuses the server (exit 60)', async () => {
    const anonymous = await curl(GBD, JSON.stringify({ 'ietf-sztp-bootstrap-server:input': {} }), 'json', { clientCert: false });
    expect(anonymous.exit, anonymous.stderr).toBe(0);
    expect(anonymous.status, anonymous.body).toBe(401);
    expect(JSON.parse(anonymous.body)).toMatchObject({ 'ietf-restconf:errors': { error: [{ 'error-type': 'protocol' }] } });
    const untrusted = await curl(GBD, '{}', 'json', { cacert: false });
    expect(untrusted.exit, untrusted.stderr).toBe(60);
    // and a malformed body is the client's mistake: 400 with a RESTCONF error, not 500
    const bad = await curl(GBD, '{"ietf-sztp-bootstrap-server:input": ', 'json');
    expect(bad.status, bad.body).toBe(400);
    expect(JSON.parse(bad.body)).toHaveProperty('ietf-restconf:errors');
  });
});
