// The simulated DPU's sZTP agent (src/simulate/agent.ts) against the whole suite as `ztp serve`
// runs it (startSuite), over real HTTPS with mutual TLS: both profiles onboard, and each fault
// mode ends where a real device of that profile would leave the server.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueDeviceIdentity } from '../../src/pki/lab.js';
import { runAgent, type AgentOptions } from '../../src/simulate/agent.js';
import { interpreterFor } from '../../src/simulate/sandbox.js';
import { authorizedKeyLine, generateSshHostKeys } from '../../src/simulate/ssh-keys.js';
import type { Suite } from '../../src/suite.js';
import { isZtpError } from '../../src/errors.js';
import { startTestSuite } from '../helpers/suite.js';

let suite: Suite;
let base: string;
let workDir: string;

beforeAll(async () => {
  ({ suite, bootstrapBase: base } = await startTestSuite('ztp-sim-agent-', { image: { name: 'sim-os.img', bytes: 300 * 1024, osName: 'SIM-OS', osVersion: '2.0' } }));
  workDir = mkdtempSync(join(tmpdir(), 'ztp-sim-work-'));
});

afterAll(async () => {
  await suite?.stop();
});

let seq = 0;
async function device(profile: 'opi' | 'rfc8572', fields: Record<string, unknown> = {}, password = 'pw-' + seq) {
  const serial = `SIM-${profile.toUpperCase()}-${++seq}`;
  const mac = `02:5a:00:00:00:${seq.toString(16).padStart(2, '0')}`;
  suite.ctx.store.upsert({ serial, profile, password, macs: [mac], bootImage: 'sim-os.img', ...fields });
  const idevid = await issueDeviceIdentity(suite.ctx.pki, serial);
  const options: AgentOptions = {
    profile,
    bootstrapUrl: profile === 'opi' ? `${base}/restconf/operations/ietf-sztp-bootstrap-server:get-bootstrapping-data` : base,
    identity: { serial, password, idevid, serverCaPem: suite.ctx.pki.rootCaPem, masaCaPem: suite.ctx.pki.masa.certPem },
    workDir,
    requestTimeoutMs: 5_000,
    scriptTimeoutMs: 5_000,
  };
  return { serial, options };
}

const progress = (serial: string) => suite.ctx.store.history(serial, 0, 1000).filter((e) => e.type === 'progress').map((e) => String(e.data.progressType));

describe('rfc8572 agent over HTTPS with mTLS', () => {
  it('verifies voucher → owner certificate → signature, runs pre-script, config, post-script in RFC order, reports complete with real host keys', async () => {
    const { serial, options } = await device('rfc8572', {
      preScript: '#!/bin/sh\necho "pre for $SZTP_SERIAL"; touch pre-ran\n',
      config: 'hostname sim-1\n',
      postScript: '#!/bin/bash\n[ -f pre-ran ] || exit 3\necho post\n',
    });
    const result = await runAgent(options);
    expect(result.error).toBeUndefined();
    expect(result.outcome).toBe('complete');
    expect(result.imageVerified).toBe(true);
    expect(result.reports).toEqual([
      'bootstrap-initiated', 'parsing-initiated', 'parsing-complete', 'boot-image-initiated', 'boot-image-complete',
      'pre-script-initiated', 'pre-script-complete', 'config-initiated', 'config-complete', 'post-script-initiated', 'post-script-complete', 'bootstrap-complete',
    ]);
    expect(progress(serial)).toEqual(result.reports);
    expect(suite.ctx.store.require(serial).state).toBe('onboarded');
    const request = suite.ctx.store.recentHistory(serial, 10, 'request')[0]!;
    expect(request.data).toMatchObject({ result: 'ok', signed: true, auth: 'cert+basic' });
    const complete = suite.ctx.store.recentHistory(serial, 1, 'progress')[0]!;
    expect(complete.data.sshHostKeys).toEqual(result.hostKeys.map((k) => ({ algorithm: k.algorithm, keyData: k.keyData })));
    // The sandbox is gone afterwards.
    expect(readdirSync(workDir).filter((d) => d.includes(serial))).toEqual([]);
  });

  it('a certificate-only device (no Basic) onboards by mTLS alone', async () => {
    const { serial, options } = await device('rfc8572');
    delete options.identity.password;
    const result = await runAgent(options);
    expect(result.outcome).toBe('complete');
    expect(suite.ctx.store.recentHistory(serial, 10, 'request')[0]!.data.auth).toBe('cert');
  });

  it('bad image hash: boot-image-mismatch is reported and the device is failed', async () => {
    const { serial, options } = await device('rfc8572');
    const result = await runAgent({ ...options, faults: { corruptImage: true } });
    expect(result).toMatchObject({ outcome: 'failed', stage: 'boot-image', error: { code: 'SIM_IMAGE_MISMATCH' } });
    expect(progress(serial).slice(-2)).toEqual(['boot-image-initiated', 'boot-image-mismatch']);
    expect(suite.ctx.store.require(serial).state).toBe('failed');
  });

  it('agent crash mid-way: reports stop after the crash point, the device stays where it was', async () => {
    const { serial, options } = await device('rfc8572');
    const result = await runAgent({ ...options, faults: { crashAfter: 'boot-image-initiated' } });
    expect(result).toMatchObject({ outcome: 'crashed', stage: 'boot-image' });
    expect(progress(serial).at(-1)).toBe('boot-image-initiated');
    expect(suite.ctx.store.require(serial).state).toBe('provisioning');
  });

  it('wrong password: refused with 401 at get-bootstrapping-data, audited on the device', async () => {
    const { serial, options } = await device('rfc8572');
    const result = await runAgent({ ...options, faults: { wrongPassword: true } });
    expect(result).toMatchObject({ outcome: 'failed', stage: 'get-bootstrapping-data', error: { code: 'SIM_BOOTSTRAP_REFUSED' }, reports: [] });
    expect(result.error!.message).toContain('401');
    expect(suite.ctx.store.recentHistory(serial, 10, 'request')[0]!.data).toMatchObject({ result: 'error', error: 'wrong password' });
  });

  it('a pre-script that is not executable text is refused before it runs: pre-script-error', async () => {
    const { serial, options } = await device('rfc8572', { preScript: '#!/bin/sh\necho hi\u0000\u0001binary' });
    const result = await runAgent(options);
    expect(result).toMatchObject({ outcome: 'failed', stage: 'pre-script', error: { code: 'SIM_SCRIPT_REFUSED' } });
    expect(progress(serial).slice(-2)).toEqual(['pre-script-initiated', 'pre-script-error']);
    expect(suite.ctx.store.require(serial).state).toBe('failed');
  });

  it('a post-script over its time limit is killed (with its children): post-script-error', async () => {
    const { serial, options } = await device('rfc8572', { postScript: '#!/bin/sh\nsleep 30 &\nsleep 30\n' });
    const started = Date.now();
    const result = await runAgent({ ...options, scriptTimeoutMs: 300 });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(result).toMatchObject({ outcome: 'failed', stage: 'post-script' });
    expect(result.error!.message).toMatch(/time limit/);
    expect(progress(serial).at(-1)).toBe('post-script-error');
  });

  it('a script exiting 1 is a warning: reported, and bootstrapping continues to complete', async () => {
    const { serial, options } = await device('rfc8572', { preScript: 'echo soft problem >&2; exit 1\n' });
    const result = await runAgent(options);
    expect(result.outcome).toBe('complete');
    expect(progress(serial)).toContain('pre-script-warning');
    const warning = suite.ctx.store.recentHistory(serial, 100, 'progress').find((e) => e.data.progressType === 'pre-script-warning')!;
    expect(warning.data.message).toContain('soft problem');
  });
});

describe('opi agent over HTTPS with mTLS and Basic', () => {
  it('onboards with the Go agent order (config, pre, post always reported) and unsigned conveyed information', async () => {
    const { serial, options } = await device('opi', { config: 'opi config', postScript: 'echo post' });
    const result = await runAgent(options);
    expect(result.error).toBeUndefined();
    expect(result.reports).toEqual([
      'bootstrap-initiated', 'boot-image-initiated', 'boot-image-complete', 'config-initiated', 'config-complete',
      'pre-script-initiated', 'pre-script-complete', 'post-script-initiated', 'post-script-complete', 'bootstrap-complete',
    ]);
    expect(suite.ctx.store.require(serial).state).toBe('onboarded');
    expect(suite.ctx.store.recentHistory(serial, 10, 'request')[0]!.data).toMatchObject({ signed: false, auth: 'cert+basic', input: { warnings: ['empty nonce ignored'] } });
  });

  it('bad image hash: like the Go agent, nothing is reported — the server only sees boot-image-initiated', async () => {
    const { serial, options } = await device('opi');
    const result = await runAgent({ ...options, faults: { corruptImage: true } });
    expect(result).toMatchObject({ outcome: 'failed', stage: 'boot-image', error: { code: 'SIM_IMAGE_MISMATCH' } });
    expect(progress(serial)).toEqual(['bootstrap-initiated', 'boot-image-initiated']);
    expect(suite.ctx.store.require(serial).state).toBe('provisioning');
  });

  it('crash right after get-bootstrapping-data: no report at all', async () => {
    const { serial, options } = await device('opi');
    const result = await runAgent({ ...options, faults: { crashAfter: 'get-bootstrapping-data' } });
    expect(result).toMatchObject({ outcome: 'crashed', stage: 'get-bootstrapping-data', reports: [] });
    expect(progress(serial)).toEqual([]);
    expect(suite.ctx.store.require(serial).state).toBe('bootstrapping');
  });

  it('wrong password: retried like the Go agent, every attempt refused', async () => {
    const { options } = await device('opi');
    const result = await runAgent({ ...options, faults: { wrongPassword: true }, maxAttempts: 3, retryDelayMs: 10 });
    expect(result).toMatchObject({ outcome: 'failed', stage: 'get-bootstrapping-data', attempts: 3 });
  });

  it('a binary post-script fails silently (the Go agent does not report errors)', async () => {
    const { serial, options } = await device('opi', { postScript: '\u007fELF\u0002\u0001\u0001' });
    const result = await runAgent(options);
    expect(result).toMatchObject({ outcome: 'failed', stage: 'post-script', error: { code: 'SIM_SCRIPT_REFUSED' } });
    expect(progress(serial).at(-1)).toBe('post-script-initiated');
  });

  it('an abort signal stops the agent (outcome aborted), its sockets closed', async () => {
    const { options } = await device('opi');
    const controller = new AbortController();
    const result = await runAgent({ ...options, signal: controller.signal, onReport: (t) => t === 'boot-image-initiated' && controller.abort() });
    expect(result.outcome).toBe('aborted');
  });
});

describe('sandboxed scripts: what counts as executable text', () => {
  it('accepts sh/bash text and refuses binaries, control bytes and other interpreters', () => {
    expect(interpreterFor(Buffer.from('echo hi\n'))).toBe('/bin/sh');
    expect(interpreterFor(Buffer.from('#!/usr/bin/env bash\necho hi\n'))).toBe('/bin/bash');
    const refused = (bytes: Buffer) => {
      try {
        interpreterFor(bytes);
        return 'accepted';
      } catch (err) {
        return isZtpError(err, 'SIM_SCRIPT_REFUSED') ? 'refused' : String(err);
      }
    };
    expect(refused(Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]))).toBe('refused');
    expect(refused(Buffer.from([0xc3, 0x28]))).toBe('refused');
    expect(refused(Buffer.from('#!/usr/bin/python3\nprint(1)\n'))).toBe('refused');
    expect(refused(Buffer.from('echo $(rm -rf /)\u001b[0m'))).toBe('refused');
  });
});

describe('SSH host keys in the RFC 8572 form', () => {
  it('ssh-keygen (the OpenSSH peer) reads each key and computes the fingerprint we compute from the blob', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ztp-sshkeys-'));
    for (const key of generateSshHostKeys()) {
      const file = join(dir, `${key.algorithm}.pub`);
      writeFileSync(file, authorizedKeyLine(key, 'sim') + '\n');
      const out = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', file], { encoding: 'utf8' });
      const ours = 'SHA256:' + createHash('sha256').update(Buffer.from(key.keyData, 'base64')).digest('base64').replace(/=+$/, '');
      expect(out).toContain(ours);
      expect(out).toMatch(key.algorithm === 'ssh-ed25519' ? /^256 .*\(ED25519\)/ : /^256 .*\(ECDSA\)/);
    }
  });
});
