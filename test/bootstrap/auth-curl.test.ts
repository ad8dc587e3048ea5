// Issue 11 on a real TLS socket with curl as the device: auth=cert with a valid IDevID and a
// wrong Basic password was 200; presented credentials must be right whatever the mode.
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBootstrapApp } from '../../src/bootstrap/app.js';
import { DeviceAuthenticator } from '../../src/bootstrap/auth.js';
import { imageResolver } from '../../src/bootstrap/images.js';
import { BootstrapResponder } from '../../src/bootstrap/responder.js';
import { openDatabase } from '../../src/db/database.js';
import { DeviceStore } from '../../src/devices/store.js';
import { silentLogger } from '../../src/log.js';
import { issueDeviceIdentity } from '../../src/pki/lab.js';
import { GBD, labPki } from '../helpers/bootstrap.js';
import { missingTool } from '../helpers/shared.js';

const run = promisify(execFile);
const skip = missingTool('curl');

describe.skipIf(skip)('bootstrap server with curl over mutual TLS, auth=cert', () => {
  let app: FastifyInstance;
  let url: string;
  let dir: string;

  beforeAll(async () => {
    const { pki } = await labPki();
    dir = mkdtempSync(join(tmpdir(), 'ztp-auth-curl-'));
    const store = new DeviceStore(openDatabase({ file: ':memory:' }));
    store.upsert({ serial: 'CURL-1', password: 'right', config: 'c' });
    const id = await issueDeviceIdentity(pki, 'CURL-1');
    writeFileSync(join(dir, 'cert.pem'), id.certPem);
    writeFileSync(join(dir, 'key.pem'), id.keyPem);
    writeFileSync(join(dir, 'ca.pem'), pki.rootCaPem);
    app = buildBootstrapApp({
      store, log: silentLogger, maxBodyBytes: 65_536,
      responder: new BootstrapResponder({ pki, images: imageResolver(undefined), encrypt: false }),
      authenticator: new DeviceAuthenticator(store, { mode: 'cert', serialFrom: 'serialNumber' }),
      https: { cert: pki.tls.certPem, key: pki.tls.keyPem, requestCert: true, rejectUnauthorized: false, ca: pki.deviceTrustPem, minVersion: 'TLSv1.2' },
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const address = app.server.address();
    url = `https://localhost:${typeof address === 'object' && address ? address.port : 0}${GBD}`;
  });

  afterAll(async () => app?.close());

  async function curl(extra: string[]): Promise<{ status: number; body: string }> {
    const port = new URL(url).port;
    const { stdout } = await run('curl', ['-sS', '--max-time', '20', '--resolve', `localhost:${port}:127.0.0.1`, '--cacert', join(dir, 'ca.pem'), '-H', 'content-type: application/yang-data+json', '-d', '{}', '-w', '\n%{http_code}', ...extra, url]);
    const cut = stdout.lastIndexOf('\n');
    return { status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) };
  }

  const withCert = () => ['--cert', join(dir, 'cert.pem'), '--key', join(dir, 'key.pem')];

  it('certificate alone: 200', async () => {
    expect((await curl(withCert())).status).toBe(200);
  });

  it('certificate with a wrong Basic password: 401 (was 200)', async () => {
    const res = await curl([...withCert(), '-u', 'CURL-1:wrong']);
    expect(res.status).toBe(401);
    expect(JSON.parse(res.body)['ietf-restconf:errors'].error[0]['error-tag']).toBe('access-denied');
  });

  it('certificate with the right Basic password: 200', async () => {
    expect((await curl([...withCert(), '-u', 'CURL-1:right'])).status).toBe(200);
  });
});
