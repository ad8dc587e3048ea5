// Issue 2: an OPI-agent-like device and an RFC-faithful device both complete onboarding against
// the whole suite (`startSuite`, as `ztp serve` runs it) over real HTTPS with mutual TLS.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config.js';
import { issueDeviceIdentity, splitPem } from '../../src/pki/lab.js';
import { certsOnlySignedData } from '../../src/pki/cms.js';
import type { Suite } from '../../src/suite.js';
import { startTestSuite } from '../helpers/suite.js';
import { runAgent, type AgentIdentity, type AgentOptions, type AgentResult } from '../../src/simulate/agent.js';
import { DeviceHttp, type HttpResult } from '../../src/simulate/http.js';

type DeviceIdentity = AgentIdentity;

/** One raw RPC as a device would send it (for the refusal cases). */
async function post(url: string, id: DeviceIdentity, body: string): Promise<HttpResult> {
  const http = new DeviceHttp({ caPem: id.serverCaPem, ...(id.idevid ? { clientCert: id.idevid } : {}), timeoutMs: 10_000, maxBodyBytes: 1 << 20 });
  try {
    const headers: Record<string, string> = { 'content-type': 'application/yang-data+json', accept: 'application/yang-data+json' };
    if (id.password !== undefined) headers.authorization = 'Basic ' + Buffer.from(`${id.serial}:${id.password}`).toString('base64');
    return await http.request(url, { method: 'POST', headers, body });
  } finally {
    http.close();
  }
}

/** The agent in a profile, not following redirects; a failure is a test failure. */
async function onboard(profile: AgentOptions['profile'], bootstrapUrl: string, identity: DeviceIdentity): Promise<AgentResult> {
  const result = await runAgent({ profile, bootstrapUrl, identity, followRedirects: false });
  if (result.outcome !== 'complete' && result.outcome !== 'redirected') throw new Error(`agent ${result.outcome} at ${result.stage}: ${result.error?.message}`);
  expect(result.refusedReports).toEqual([]);
  return result;
}
const runRfcDevice = (base: string, id: DeviceIdentity) => onboard('rfc8572', base, id);
const runOpiDevice = (base: string, id: DeviceIdentity) => onboard('opi', base, id);

let suite: Suite;
let base: string;

beforeAll(async () => {
  ({ suite, bootstrapBase: base } = await startTestSuite('ztp-e2e-', { image: { name: 'dpu-os.img', bytes: 256 * 1024 } }));
});

afterAll(async () => {
  await suite?.stop();
});

function register(serial: string, fields: Record<string, unknown>): void {
  suite.ctx.store.upsert({ serial, ...fields });
}

describe('device emulators complete onboarding over HTTPS with mTLS', () => {
  it('an RFC-faithful device verifies voucher → owner certificate → signature, checks the image, reports complete', async () => {
    register('RFC-0001', { profile: 'rfc8572', macs: ['02:00:00:00:00:01'], bootImage: 'dpu-os.img', config: 'hostname dpu-1\n' });
    const idevid = await issueDeviceIdentity(suite.ctx.pki, 'RFC-0001');
    const id: DeviceIdentity = { serial: 'RFC-0001', idevid, serverCaPem: suite.ctx.pki.rootCaPem, masaCaPem: suite.ctx.pki.masa.certPem };
    const outcome = await runRfcDevice(base, id);
    expect(outcome.kind).toBe('onboarding-information');
    expect(outcome.imageVerified).toBe(true);
    const image = (outcome.conveyed!['ietf-sztp-conveyed-info:onboarding-information'] as Record<string, Record<string, string[]>>)['boot-image']!;
    expect(image['os-name']).toBe('DPU-OS');
    expect(image['download-uri']![0]).toContain('/by-mac/02:00:00:00:00:01/');
    const device = suite.ctx.store.require('RFC-0001');
    expect(device.state).toBe('onboarded');
    const reports = suite.ctx.store.recentHistory('RFC-0001', 100, 'progress').map((e) => e.data.progressType);
    expect(reports).toEqual(['bootstrap-initiated', 'parsing-initiated', 'parsing-complete', 'boot-image-initiated', 'boot-image-complete', 'config-initiated', 'config-complete', 'bootstrap-complete']);
    const complete = suite.ctx.store.recentHistory('RFC-0001', 1, 'progress')[0]!;
    // Real host keys, RFC 4253 §6.6 blobs (ed25519 and ECDSA P-256).
    expect((complete.data.sshHostKeys as { algorithm: string }[]).map((k) => k.algorithm)).toEqual(['ssh-ed25519', 'ecdsa-sha2-nistp256']);
    expect((complete.data.trustAnchorCerts as unknown[]).length).toBe(1);
    const request = suite.ctx.store.recentHistory('RFC-0001', 100, 'request')[0]!;
    expect(request.data).toMatchObject({ result: 'ok', signed: true, auth: 'cert', response: 'onboarding-information' });
  });

  it('an OPI-agent-like device (strict decoding, empty nonce, empty containers) onboards with cert + Basic', async () => {
    register('OPI-0001', { profile: 'opi', password: 'my-secret', macs: ['02:00:00:00:00:02'], bootImage: 'dpu-os.img', config: 'opi config' });
    const idevid = await issueDeviceIdentity(suite.ctx.pki, 'OPI-0001');
    const id: DeviceIdentity = { serial: 'OPI-0001', password: 'my-secret', idevid, serverCaPem: suite.ctx.pki.rootCaPem };
    const outcome = await runOpiDevice(base, id);
    expect(outcome.imageVerified).toBe(true);
    expect(suite.ctx.store.require('OPI-0001').state).toBe('onboarded');
    const reports = suite.ctx.store.recentHistory('OPI-0001', 100, 'progress');
    // Empty containers on every report but bootstrap-complete, which carries the host keys.
    expect(reports.filter((r) => r.data.sshHostKeys !== undefined).map((r) => r.data.progressType)).toEqual(['bootstrap-complete']);
    expect(reports[0]!.data.warnings).toEqual(['empty ssh-host-keys/trust-anchor-certs dropped']);
    const request = suite.ctx.store.recentHistory('OPI-0001', 100, 'request')[0]!;
    expect(request.data).toMatchObject({ auth: 'cert+basic', signed: false, input: { warnings: ['empty nonce ignored'] } });
  });

  it('the OPI device follows a redirect that carries an explicit port, trusts the anchor it names, and onboards at the second server', async () => {
    // A second, independent suite (its own lab PKI, store and port) is the redirect target.
    const second = await startTestSuite('ztp-e2e-redirect-');
    try {
      const secondPort = Number(new URL(second.bootstrapBase).port);
      const anchor = certsOnlySignedData([second.suite.ctx.pki.rootCaPem]).toString('base64');
      register('OPI-REDIR', { profile: 'opi', password: 'my-secret', redirect: [{ address: 'localhost', port: secondPort, trustAnchor: anchor }] });
      second.suite.ctx.store.upsert({ serial: 'OPI-REDIR', profile: 'opi', password: 'my-secret', config: 'config from the second server' });
      const result = await runAgent({ profile: 'opi', bootstrapUrl: base, identity: { serial: 'OPI-REDIR', password: 'my-secret', serverCaPem: suite.ctx.pki.rootCaPem } });
      if (result.outcome !== 'complete') throw new Error(`agent ${result.outcome} at ${result.stage}: ${result.error?.message}`);
      expect(result.refusedReports).toEqual([]);
      // asked the first server, then the second (on the port the redirect carried)
      expect(result.servers).toEqual([base, `https://localhost:${secondPort}`]);
      expect(result.kind).toBe('onboarding-information');
      const info = result.conveyed!['ietf-sztp-conveyed-info:onboarding-information'] as Record<string, string>;
      expect(Buffer.from(info.configuration!, 'base64').toString()).toBe('config from the second server');
      // the first server said where to go and stays "redirected"; the second saw it onboard
      expect(suite.ctx.store.require('OPI-REDIR').state).toBe('redirected');
      expect(suite.ctx.store.recentHistory('OPI-REDIR', 10, 'request').at(-1)!.data).toMatchObject({ response: 'redirect-information' });
      expect(second.suite.ctx.store.require('OPI-REDIR').state).toBe('onboarded');
      expect(second.suite.ctx.store.recentHistory('OPI-REDIR', 100, 'progress').at(-1)!.data.progressType).toBe('bootstrap-complete');
    } finally {
      await second.suite.stop();
    }
  });

  it('encrypted conveyed information: EnvelopedData to the IDevID, signed inside, decrypted by the device', async () => {
    // A second bootstrap app with encryption on shares the suite's store and PKI.
    const { createBootstrapService } = await import('../../src/bootstrap/service.js');
    const { imageResolver } = await import('../../src/bootstrap/images.js');
    // Port 0: the kernel picks, the service reports what it bound (no window for another worker).
    const ctx = { ...suite.ctx, config: validateConfig({ ...suite.ctx.config, bootstrap: { ...suite.ctx.config.bootstrap, port: 0, encrypt: true } }) };
    const service = createBootstrapService(ctx, { images: imageResolver(undefined) });
    const [listening] = await service.start();
    const port = listening!.port;
    expect(port).toBeGreaterThan(0);
    try {
      register('RFC-ENC', { profile: 'rfc8572', config: 'secret config' });
      const idevid = await issueDeviceIdentity(suite.ctx.pki, 'RFC-ENC');
      const outcome = await runRfcDevice(`https://localhost:${port}`, { serial: 'RFC-ENC', idevid, serverCaPem: suite.ctx.pki.rootCaPem, masaCaPem: suite.ctx.pki.masa.certPem });
      const info = outcome.conveyed!['ietf-sztp-conveyed-info:onboarding-information'] as Record<string, string>;
      expect(Buffer.from(info.configuration!, 'base64').toString()).toBe('secret config');
      expect(suite.ctx.store.recentHistory('RFC-ENC', 100, 'request')[0]!.data).toMatchObject({ encrypted: true, signed: true });
    } finally {
      await service.stop();
    }
  });

  it('refuses a certificate from a foreign CA, a certificate/Basic serial mismatch, and an unknown serial', async () => {
    register('RFC-0002', { profile: 'rfc8572', password: 'pw' });
    // A device certificate from a CA outside the trust bundle.
    const { selfSignedCa } = await import('../../src/pki/lab.js');
    const foreign = await selfSignedCa('CN=foreign manufacturer', 1);
    const { issueUnder } = await import('../../src/pki/lab.js');
    const foreignLeaf = await issueUnder(foreign.pair, 'CN=RFC-0002, 2.5.4.5=RFC-0002', 30);
    const body = JSON.stringify({ 'ietf-sztp-bootstrap-server:input': {} });
    const url = base + '/restconf/operations/ietf-sztp-bootstrap-server:get-bootstrapping-data';
    const foreignRes = await post(url, { serial: 'RFC-0002', idevid: foreignLeaf, serverCaPem: suite.ctx.pki.rootCaPem }, body);
    expect(foreignRes.status).toBe(401);
    expect(JSON.parse(foreignRes.body.toString())['ietf-restconf:errors'].error[0]['error-tag']).toBe('access-denied');
    const other = await issueDeviceIdentity(suite.ctx.pki, 'RFC-0001');
    const mismatch = await post(url, { serial: 'RFC-0002', password: 'pw', idevid: other, serverCaPem: suite.ctx.pki.rootCaPem }, body);
    expect(mismatch.status).toBe(401);
    const unknown = await post(url, { serial: 'NOBODY', password: 'pw', serverCaPem: suite.ctx.pki.rootCaPem }, body);
    expect(unknown.status).toBe(401);
    // An expired IDevID from the right CA.
    const { issueDeviceIdentity: issue } = await import('../../src/pki/lab.js');
    const expired = await issue(suite.ctx.pki, 'RFC-0002', { days: -1 });
    const expiredRes = await post(url, { serial: 'RFC-0002', idevid: expired, serverCaPem: suite.ctx.pki.rootCaPem }, body);
    expect(expiredRes.status).toBe(401);
    const audit = suite.ctx.store.recentHistory('RFC-0002', 10, 'request').map((e) => e.data.error);
    expect(audit.some((e) => String(e).includes('CERT_HAS_EXPIRED'))).toBe(true);
    expect(splitPem(other.certPem)).toHaveLength(2);
  });
});
