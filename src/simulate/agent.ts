// The simulated DPU's sZTP agent (RFC 8572 §5), in one of two client profiles
// (SZTP-INTEROP.md "Two client families"):
//
//   rfc8572  an RFC-faithful device (Cisco/Juniper/Nokia class): asks for signed data with a
//            nonce; trusts nothing until voucher → owner certificate → signature verify
//            (§5.5, §5.6); decrypts EnvelopedData with its IDevID key; follows redirects;
//            order boot image → pre-script → configuration → post-script (§5.6); reports
//            every stage, errors included (`*-error`, `boot-image-mismatch`).
//   opi      the OPI Go agent (opiproject/sztp sztp-agent): sends "nonce": ""; decodes the reply
//            strictly (exactly one member), takes the [0] OCTET STRING as primitive DER JSON,
//            rejects unknown fields, uses download-uri[0] and requires sha-256
//            image-verification; order boot image → configuration → pre → post, every stage
//            reported even when absent; empty ssh-host-keys/trust-anchor-certs on every
//            report; a failure is *not* reported (the agent logs it and retries the sequence
//            later), which is why the conductor needs per-step timeouts.
//
// Both authenticate with the IDevID (mTLS) and/or HTTP Basic, verify the server against the
// CA they were provisioned with, download and hash the boot image, run the pre/post scripts in
// a sandbox (sandbox.ts) and end with bootstrap-complete carrying real SSH host keys
// (ssh-keys.ts). Fault injection (faults) makes the agent crash, corrupt the image or present
// the wrong password; everything else is the profile's normal behaviour.
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as asn1js from 'asn1js';
import type { Profile } from '../devices/model.js';
import { errorMessage, isZtpError, ZtpError, type ErrorCode } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { certificatesOf, decryptEnveloped, OID, verifySignedData } from '../pki/cms.js';
import { splitPem } from '../pki/lab.js';
import type { PemKeyPair } from '../pki/material.js';
import { verifyVoucher } from '../pki/voucher.js';
import { DeviceHttp, withTransportRetries, type HttpResult, type TransportRetries } from './http.js';
import { describeOutcome, runScript } from './sandbox.js';
import { generateSshHostKeys, type SshHostKey } from './ssh-keys.js';

export const RPC = '/restconf/operations/ietf-sztp-bootstrap-server:';
const JSON_TYPE = 'application/yang-data+json';

export interface AgentIdentity {
  serial: string;
  /** HTTP Basic password; omitted for certificate-only devices */
  password?: string;
  /** IDevID leaf + chain and key, offered as the TLS client certificate */
  idevid?: PemKeyPair;
  /** trust anchor for the bootstrap server's (and image server's) TLS certificate */
  serverCaPem: string;
  /** manufacturer trust anchor for ownership vouchers (rfc8572) */
  masaCaPem?: string;
}

/** Where the agent stops on purpose (injected faults). */
export interface AgentFaults {
  /** stop making requests right after sending this progress report ('get-bootstrapping-data': after the first reply) */
  crashAfter?: string;
  /** flip one byte of the downloaded boot image (a corrupted transfer): the digest check fails */
  corruptImage?: boolean;
  /** present a wrong HTTP Basic password (with the certificate, if any) */
  wrongPassword?: boolean;
}

export interface AgentOptions {
  profile: Profile;
  identity: AgentIdentity;
  /** https://host:port (RFC 8572 DHCP option 143 form) or the full get-bootstrapping-data URL (OPI form) */
  bootstrapUrl: string;
  hwModel?: string;
  osName?: string;
  osVersion?: string;
  /** per HTTP request, ms (default 10 000) */
  requestTimeoutMs?: number;
  /** per script, ms (default 30 000) */
  scriptTimeoutMs?: number;
  /** parent of the agent's sandbox directory (default: the OS temp dir) */
  workDir?: string;
  /** get-bootstrapping-data attempts before giving up (default 1) */
  maxAttempts?: number;
  /** pause between attempts, ms (the OPI agent waits 5 s) */
  retryDelayMs?: number;
  /** follow redirect-information (default true; at most 3 hops) */
  followRedirects?: boolean;
  /** send `*-error` reports on failure (default: rfc8572 yes, opi no, as the real agents do) */
  reportErrors?: boolean;
  faults?: AgentFaults;
  /** repeat a progress report or image download that failed at the connection level (default: no) */
  transportRetries?: TransportRetries;
  /** the device's SSH host keys (default: generated) */
  hostKeys?: SshHostKey[];
  log?: Logger;
  signal?: AbortSignal;
  /** called after each progress report the server accepted */
  onReport?: (progressType: string) => void;
}

export type AgentStage = 'get-bootstrapping-data' | 'parsing' | 'redirect' | 'boot-image' | 'pre-script' | 'config' | 'post-script' | 'bootstrap-complete';

export interface AgentResult {
  outcome: 'complete' | 'failed' | 'crashed' | 'redirected' | 'aborted';
  /** where a failure or crash happened */
  stage?: AgentStage;
  error?: { code: ErrorCode | 'INTERNAL'; message: string };
  /** the last reply's kind */
  kind?: 'onboarding-information' | 'redirect-information';
  conveyed?: Record<string, unknown>;
  /** progress reports the server accepted, in order */
  reports: string[];
  /** reports the server refused (type: status) */
  refusedReports: string[];
  imageVerified: boolean;
  hostKeys: SshHostKey[];
  /** bootstrap servers asked, in order (redirects) */
  servers: string[];
  attempts: number;
  durationMs: number;
}

/** Thrown inside the run to end it at a stage; carries the report to send, if any. */
class StageFailure extends Error {
  constructor(
    readonly stage: AgentStage,
    readonly error: ZtpError,
    readonly report?: string,
  ) {
    super(error.message);
  }
}

class Crash extends Error {}

function sha256Colon(digest: Buffer): string {
  return digest.toString('hex').match(/../g)!.join(':');
}

/** https://host:port[/…] → the RPC base https://host:port (the OPI form carries the full RPC URL). */
export function bootstrapBase(url: string): string {
  const u = new URL(url);
  if (u.protocol !== 'https:') throw new ZtpError('SIM_INVALID', `bootstrap URL must be https: ${url}`);
  return u.origin;
}

function fail(stage: AgentStage, code: ErrorCode, message: string, report?: string, cause?: unknown): never {
  throw new StageFailure(stage, new ZtpError(code, message, cause === undefined ? {} : { cause }), report);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const OPI_ONBOARDING_FIELDS = new Set(['boot-image', 'pre-configuration-script', 'configuration-handling', 'configuration', 'post-configuration-script']);
const OPI_IMAGE_FIELDS = new Set(['download-uri', 'image-verification']);

export async function runAgent(options: AgentOptions): Promise<AgentResult> {
  const started = performance.now();
  const { profile, identity } = options;
  const log = (options.log ?? silentLogger).child({ serial: identity.serial, profile });
  const faults = options.faults ?? {};
  const reportErrors = options.reportErrors ?? profile === 'rfc8572';
  const hostKeys = options.hostKeys ?? generateSshHostKeys();
  const requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
  const password = faults.wrongPassword ? `${identity.password ?? ''}-wrong` : identity.password;
  const result: AgentResult = { outcome: 'failed', reports: [], refusedReports: [], imageVerified: false, hostKeys, servers: [], attempts: 0, durationMs: 0 };
  const sandboxParent = options.workDir ?? tmpdir();
  mkdirSync(sandboxParent, { recursive: true });
  const sandbox = mkdtempSync(join(sandboxParent, `sztp-${identity.serial}-`));
  let caPem = identity.serverCaPem;
  let http = new DeviceHttp({ caPem, ...(identity.idevid ? { clientCert: identity.idevid } : {}), timeoutMs: requestTimeoutMs, maxBodyBytes: 16 * 1024 * 1024 });
  let base = bootstrapBase(options.bootstrapUrl);
  const signal = options.signal;

  const headers = (): Record<string, string> => ({
    'content-type': JSON_TYPE,
    accept: JSON_TYPE,
    ...(password !== undefined ? { authorization: 'Basic ' + Buffer.from(`${identity.serial}:${password}`).toString('base64') } : {}),
  });
  const post = (rpc: string, input: Record<string, unknown>): Promise<HttpResult> =>
    http.request(base + RPC + rpc, { method: 'POST', headers: headers(), body: JSON.stringify({ 'ietf-sztp-bootstrap-server:input': input }), ...(signal ? { signal } : {}) });

  const checkAbort = () => {
    if (signal?.aborted) throw new Crash('aborted');
  };

  /** report-progress; a refused report is noted, never fatal (neither real agent stops for it). */
  const report = async (progressType: string, message?: string, extra: Record<string, unknown> = {}) => {
    checkAbort();
    const input: Record<string, unknown> = { 'progress-type': progressType, message: message ?? progressType.replace(/-/g, ' '), ...extra };
    if (profile === 'opi') {
      // The Go agent's struct always serialises both containers, empty unless it has keys.
      input['ssh-host-keys'] ??= {};
      input['trust-anchor-certs'] ??= {};
    }
    try {
      const res = await withTransportRetries(() => post('report-progress', input), options.transportRetries, signal, (err, n) =>
        log.info({ progressType, attempt: n, err: errorMessage(err) }, 'sZTP agent: progress report not delivered; trying again'));
      const ok = profile === 'opi' ? res.status === 200 || res.status === 204 : res.status === 204;
      if (ok) {
        result.reports.push(progressType);
        options.onReport?.(progressType);
      } else {
        result.refusedReports.push(`${progressType}: ${res.status}`);
        log.warn({ progressType, status: res.status, body: res.body.toString('utf8').slice(0, 300) }, 'sZTP agent: progress report refused');
      }
    } catch (err) {
      result.refusedReports.push(`${progressType}: ${errorMessage(err)}`);
      log.warn({ progressType, err: errorMessage(err) }, 'sZTP agent: progress report not delivered');
    }
    if (faults.crashAfter === progressType) throw new Crash(progressType);
  };

  /** get-bootstrapping-data with the profile's input, retried per maxAttempts. */
  const getBootstrappingData = async (): Promise<Record<string, unknown>> => {
    const nonce = randomBytes(16);
    const input: Record<string, unknown> =
      profile === 'rfc8572'
        ? { 'signed-data-preferred': [null], 'hw-model': options.hwModel ?? 'simulated-dpu', 'os-name': options.osName ?? 'sim-os', 'os-version': options.osVersion ?? '1.0', nonce: nonce.toString('base64') }
        : { 'hw-model': options.hwModel ?? 'simulated-dpu', 'os-name': options.osName ?? 'linux', 'os-version': options.osVersion ?? '6.1', nonce: '' };
    const attempts = Math.max(1, options.maxAttempts ?? 1);
    let last: StageFailure | undefined;
    for (let i = 0; i < attempts; i++) {
      checkAbort();
      if (i > 0) await sleep(options.retryDelayMs ?? 5_000, signal);
      result.attempts++;
      result.servers.push(base);
      try {
        const res = await post('get-bootstrapping-data', input);
        if (res.status === 200) return { ...parseBody(res), __nonce: nonce };
        last = new StageFailure('get-bootstrapping-data', new ZtpError('SIM_BOOTSTRAP_REFUSED', `get-bootstrapping-data: HTTP ${res.status} ${restconfMessage(res.body)}`, { details: { status: res.status } }));
        // 4xx other than 401/404 will not change on a retry.
        if (res.status >= 400 && res.status < 500 && res.status !== 401 && res.status !== 404) break;
      } catch (err) {
        if (err instanceof StageFailure) throw err;
        if (signal?.aborted) throw new Crash('aborted');
        last = new StageFailure('get-bootstrapping-data', isZtpError(err) ? err : new ZtpError('SIM_BOOTSTRAP_REFUSED', `get-bootstrapping-data: ${errorMessage(err)}`, { cause: err }));
      }
      log.info({ attempt: i + 1, of: attempts, err: last.error.message }, 'sZTP agent: get-bootstrapping-data failed');
    }
    throw last!;
  };

  try {
    for (let hop = 0; ; hop++) {
      const output = await getBootstrappingData();
      const nonce = output.__nonce as Buffer;
      delete output.__nonce;
      if (faults.crashAfter === 'get-bootstrapping-data') throw new Crash('get-bootstrapping-data');
      let conveyed: Record<string, unknown>;
      if (profile === 'opi') {
        await report('bootstrap-initiated', 'Bootstrap Initiated');
        conveyed = parseOpi(output);
      } else {
        await report('bootstrap-initiated');
        await report('parsing-initiated');
        conveyed = await parseRfc(output, identity, nonce);
        await report('parsing-complete');
      }
      result.conveyed = conveyed;
      const redirect = conveyed['ietf-sztp-conveyed-info:redirect-information'];
      if (redirect !== undefined) {
        result.kind = 'redirect-information';
        if (options.followRedirects === false) {
          result.outcome = 'redirected';
          break;
        }
        if (hop >= 3) fail('redirect', 'SIM_BAD_REPLY', 'more than 3 redirects', 'bootstrap-error');
        const next = nextServer(redirect, profile, base);
        if (next.trustAnchorPems) caPem = next.trustAnchorPems.join('\n');
        log.info({ from: base, to: next.base }, 'sZTP agent: following redirect-information');
        http.close();
        http = new DeviceHttp({ caPem, ...(identity.idevid ? { clientCert: identity.idevid } : {}), timeoutMs: requestTimeoutMs, maxBodyBytes: 16 * 1024 * 1024 });
        base = next.base;
        continue;
      }
      result.kind = 'onboarding-information';
      const info = conveyed['ietf-sztp-conveyed-info:onboarding-information'];
      if (!isObject(info)) fail('parsing', 'SIM_BAD_REPLY', 'conveyed information is neither onboarding nor redirect information', 'parsing-error');
      await onboard(info);
      await report('bootstrap-complete', 'Bootstrap Complete', {
        'ssh-host-keys': { 'ssh-host-key': hostKeys.map((k) => ({ algorithm: k.algorithm, 'key-data': k.keyData })) },
        ...(profile === 'rfc8572' && typeof output['owner-certificate'] === 'string' ? { 'trust-anchor-certs': { 'trust-anchor-cert': [output['owner-certificate']] } } : {}),
      });
      result.outcome = 'complete';
      break;
    }
  } catch (err) {
    if (err instanceof Crash) {
      result.outcome = signal?.aborted ? 'aborted' : 'crashed';
      result.stage = stageOf(result.reports[result.reports.length - 1]);
      result.error = { code: 'SIM_CRASHED', message: `agent stopped after ${err.message}` };
      log.warn({ after: err.message }, result.outcome === 'aborted' ? 'sZTP agent aborted' : 'sZTP agent crashed (injected fault): no further reports');
    } else if (err instanceof StageFailure) {
      result.outcome = 'failed';
      result.stage = err.stage;
      result.error = { code: err.error.code, message: err.error.message };
      log.warn({ stage: err.stage, code: err.error.code, err: err.error.message, reported: reportErrors ? err.report : undefined }, 'sZTP agent: bootstrapping failed');
      if (reportErrors && err.report && result.reports.length > 0) {
        try {
          await report(err.report, err.error.message.slice(0, 1000));
        } catch {
          // a crash or abort while reporting the error: the failure stands
        }
      }
    } else {
      result.outcome = 'failed';
      result.error = { code: isZtpError(err) ? err.code : 'INTERNAL', message: errorMessage(err) };
      log.error({ err: errorMessage(err) }, 'sZTP agent: internal error');
    }
  } finally {
    http.close();
    rmSync(sandbox, { recursive: true, force: true });
    result.durationMs = Math.round(performance.now() - started);
  }
  return result;

  // ---- stages -------------------------------------------------------------------------

  async function onboard(info: Record<string, unknown>): Promise<void> {
    if (profile === 'opi') {
      for (const k of Object.keys(info)) if (!OPI_ONBOARDING_FIELDS.has(k)) fail('parsing', 'SIM_BAD_REPLY', `unknown onboarding field ${k}`);
    }
    const image = info['boot-image'];
    if (image !== undefined) await bootImage(image);
    const pre = decodeScript(info['pre-configuration-script'], 'pre-configuration-script');
    const post = decodeScript(info['post-configuration-script'], 'post-configuration-script');
    const config = typeof info.configuration === 'string' ? Buffer.from(info.configuration, 'base64') : undefined;
    if (profile === 'opi') {
      // The Go agent: configuration, then pre, then post, each reported even when absent.
      await configuration(config ?? Buffer.alloc(0));
      await script('pre', pre ?? Buffer.alloc(0));
      await script('post', post ?? Buffer.alloc(0));
    } else {
      // RFC 8572 §5.6 step order; absent items are skipped silently.
      if (pre) await script('pre', pre);
      if (config) await configuration(config);
      if (post) await script('post', post);
    }
  }

  async function bootImage(raw: unknown): Promise<void> {
    if (!isObject(raw)) fail('boot-image', 'SIM_BAD_REPLY', 'boot-image must be a container', 'boot-image-error');
    if (profile === 'opi') for (const k of Object.keys(raw)) if (!OPI_IMAGE_FIELDS.has(k)) fail('parsing', 'SIM_BAD_REPLY', `unknown boot-image field ${k}`);
    const uris = Array.isArray(raw['download-uri']) ? raw['download-uri'].filter((u): u is string => typeof u === 'string') : [];
    const verification = Array.isArray(raw['image-verification']) ? raw['image-verification'].filter(isObject) : [];
    if (uris.length === 0) fail('boot-image', 'SIM_BAD_REPLY', 'boot-image has no download-uri', 'boot-image-error');
    const sha = verification.find((v) => v['hash-algorithm'] === 'ietf-sztp-conveyed-info:sha-256' || v['hash-algorithm'] === 'sztp-info:sha-256');
    if (!sha || typeof sha['hash-value'] !== 'string') fail('boot-image', 'SIM_BAD_REPLY', 'image-verification with sha-256 is required', 'boot-image-error');
    await report('boot-image-initiated', profile === 'opi' ? 'BootImage Initiated' : undefined);
    // rfc8572 tries each URI in order (§6.1 "download-uri": ordered-by user); the OPI agent only [0].
    let lastErr: unknown;
    for (const uri of profile === 'opi' ? uris.slice(0, 1) : uris) {
      checkAbort();
      try {
        const got = await withTransportRetries(() => http.download(uri, { ...(signal ? { signal } : {}), ...(faults.corruptImage ? { corrupt: true } : {}) }), options.transportRetries, signal);
        const actual = sha256Colon(got.sha256);
        // OPI compares with colons stripped, case-sensitive; RFC 8572 hex-string is case-insensitive.
        const expected = String(sha['hash-value']);
        const match = profile === 'opi' ? expected.replace(/:/g, '') === actual.replace(/:/g, '') : expected.toLowerCase() === actual;
        if (!match) fail('boot-image', 'SIM_IMAGE_MISMATCH', `boot image ${uri}: sha-256 ${actual} does not match ${expected}`, 'boot-image-mismatch');
        result.imageVerified = true;
        await report('boot-image-complete', profile === 'opi' ? 'BootImage Complete' : `boot image verified (${got.bytes} bytes)`);
        return;
      } catch (err) {
        if (err instanceof StageFailure || err instanceof Crash) throw err;
        lastErr = err;
        log.info({ uri, err: errorMessage(err) }, 'sZTP agent: boot image download failed');
      }
    }
    fail('boot-image', 'SIM_IMAGE_FETCH_FAILED', `boot image download failed: ${errorMessage(lastErr)}`, 'boot-image-error', lastErr);
  }

  async function configuration(config: Buffer): Promise<void> {
    await report('config-initiated', profile === 'opi' ? 'Configuration Initiated' : undefined);
    // "Committing" the configuration: the simulated DPU keeps it in its sandbox.
    writeFileSync(join(sandbox, 'startup-config'), config, { mode: 0o600 });
    await report('config-complete', profile === 'opi' ? 'Configuration Complete' : undefined);
  }

  async function script(which: 'pre' | 'post', bytes: Buffer): Promise<void> {
    const stage: AgentStage = which === 'pre' ? 'pre-script' : 'post-script';
    await report(`${which}-script-initiated`);
    let outcome;
    try {
      outcome = await runScript(`${which}-configuration-script`, bytes, sandbox, { timeoutMs: options.scriptTimeoutMs ?? 30_000, maxOutputBytes: 16 * 1024 }, { SZTP_SERIAL: identity.serial, SZTP_PROFILE: profile });
    } catch (err) {
      fail(stage, isZtpError(err) ? err.code : 'SIM_SCRIPT_FAILED', `${which}-configuration-script: ${errorMessage(err)}`, `${which}-script-error`, err);
    }
    const message = describeOutcome(`${which}-configuration-script`, outcome);
    log.info({ script: which, result: outcome.result, exitCode: outcome.exitCode, ms: outcome.durationMs }, 'sZTP agent: script ran');
    if (outcome.result === 'error') fail(stage, 'SIM_SCRIPT_FAILED', message, `${which}-script-error`);
    if (outcome.result === 'warning') await report(`${which}-script-warning`, message);
    await report(`${which}-script-complete`);
  }

  function decodeScript(raw: unknown, field: string): Buffer | undefined {
    if (raw === undefined) return undefined;
    if (typeof raw !== 'string') fail('parsing', 'SIM_BAD_REPLY', `${field} must be base64`, 'parsing-error');
    return Buffer.from(raw, 'base64');
  }
}

// ---- reply parsing (pure but for the CMS verification) -----------------------------------

function parseBody(res: HttpResult): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(res.body.toString('utf8'));
  } catch {
    fail('parsing', 'SIM_BAD_REPLY', 'get-bootstrapping-data reply is not JSON');
  }
  if (!isObject(parsed)) fail('parsing', 'SIM_BAD_REPLY', 'get-bootstrapping-data reply is not an object');
  const keys = Object.keys(parsed);
  // The OPI agent decodes with DisallowUnknownFields: exactly one member, the output.
  if (keys.length !== 1 || keys[0] !== 'ietf-sztp-bootstrap-server:output') fail('parsing', 'SIM_BAD_REPLY', `unexpected member(s) in reply: ${keys.join(', ')}`);
  const output = parsed['ietf-sztp-bootstrap-server:output'];
  if (!isObject(output)) fail('parsing', 'SIM_BAD_REPLY', 'output is not an object');
  return output;
}

function restconfMessage(body: Buffer): string {
  try {
    const e = (JSON.parse(body.toString('utf8')) as { 'ietf-restconf:errors'?: { error?: { 'error-tag'?: string; 'error-message'?: string }[] } })['ietf-restconf:errors']?.error?.[0];
    return e ? `${e['error-tag'] ?? ''} ${e['error-message'] ?? ''}`.trim() : body.toString('utf8').slice(0, 200);
  } catch {
    return body.toString('utf8').slice(0, 200);
  }
}

/** OPI: unsigned ContentInfo .43 whose [0] holds a primitive, definite-length OCTET STRING of JSON. */
function parseOpi(output: Record<string, unknown>): Record<string, unknown> {
  const outKeys = Object.keys(output);
  if (outKeys.length !== 1 || outKeys[0] !== 'conveyed-information') fail('parsing', 'SIM_BAD_REPLY', `unknown field(s) in output: ${outKeys.join(', ')}`);
  if (typeof output['conveyed-information'] !== 'string') fail('parsing', 'SIM_BAD_REPLY', 'conveyed-information is not base64');
  const der = Buffer.from(output['conveyed-information'], 'base64');
  const ci = asn1js.fromBER(new Uint8Array(der).buffer);
  if (ci.offset === -1 || ci.offset !== der.length) fail('parsing', 'SIM_BAD_REPLY', 'conveyed-information is not one DER ContentInfo');
  const [oid, tagged] = (ci.result as asn1js.Sequence).valueBlock.value ?? [];
  if (!(oid instanceof asn1js.ObjectIdentifier) || oid.valueBlock.toString() !== OID.conveyedInfoJson) fail('parsing', 'SIM_BAD_REPLY', 'conveyed-information is not id-ct-sztpConveyedInfoJSON (the OPI agent cannot parse SignedData)');
  const octet = (tagged as asn1js.Constructed | undefined)?.valueBlock.value[0];
  if (!(octet instanceof asn1js.OctetString) || octet.idBlock.isConstructed || octet.lenBlock.isIndefiniteForm) fail('parsing', 'SIM_BAD_REPLY', 'conveyed information is not a primitive DER OCTET STRING');
  return parseConveyedJson(Buffer.from(octet.valueBlock.valueHexView));
}

function parseConveyedJson(bytes: Buffer): Record<string, unknown> {
  let conveyed: unknown;
  try {
    conveyed = JSON.parse(bytes.toString('utf8'));
  } catch {
    fail('parsing', 'SIM_BAD_REPLY', 'conveyed information is not JSON', 'parsing-error');
  }
  if (!isObject(conveyed)) fail('parsing', 'SIM_BAD_REPLY', 'conveyed information is not an object', 'parsing-error');
  return conveyed;
}

/** RFC 8572 §5.5/§5.6: voucher (manufacturer trust anchor, serial, nonce) → owner certificate (pinned) → signature. */
async function parseRfc(output: Record<string, unknown>, identity: AgentIdentity, nonce: Buffer): Promise<Record<string, unknown>> {
  const voucherB64 = output['ownership-voucher'];
  const ownerB64 = output['owner-certificate'];
  if (typeof output['conveyed-information'] !== 'string') fail('parsing', 'SIM_BAD_REPLY', 'no conveyed-information', 'parsing-error');
  if (typeof voucherB64 !== 'string' || typeof ownerB64 !== 'string') fail('parsing', 'SIM_UNTRUSTED', 'unsigned data: no ownership-voucher/owner-certificate, refusing (RFC 8572 §5.6)', 'parsing-error');
  if (!identity.masaCaPem) fail('parsing', 'SIM_UNTRUSTED', 'no manufacturer trust anchor to verify the voucher', 'parsing-error');
  try {
    const voucher = await verifyVoucher(Buffer.from(voucherB64, 'base64'), identity.masaCaPem, identity.serial);
    if (voucher.voucher.nonce !== undefined && voucher.voucher.nonce !== nonce.toString('base64')) fail('parsing', 'SIM_UNTRUSTED', 'voucher nonce does not match the request', 'parsing-error');
    const ownerCerts = certificatesOf(Buffer.from(ownerB64, 'base64'));
    const leaf = ownerCerts[0];
    if (!leaf) fail('parsing', 'SIM_UNTRUSTED', 'owner-certificate holds no certificate', 'parsing-error');
    let conveyedDer = Buffer.from(output['conveyed-information'], 'base64');
    const outer = asn1js.fromBER(new Uint8Array(conveyedDer).buffer);
    const outerOid = (outer.result as asn1js.Sequence).valueBlock?.value?.[0];
    if (outerOid instanceof asn1js.ObjectIdentifier && outerOid.valueBlock.toString() === OID.envelopedData) {
      if (!identity.idevid) fail('parsing', 'SIM_UNTRUSTED', 'encrypted conveyed information but no IDevID key', 'parsing-error');
      const inner = await decryptEnveloped(conveyedDer, identity.idevid);
      if (inner.contentType !== OID.signedData) fail('parsing', 'SIM_UNTRUSTED', `decrypted content type ${inner.contentType} is not SignedData`, 'parsing-error');
      conveyedDer = Buffer.from(
        new asn1js.Sequence({
          value: [new asn1js.ObjectIdentifier({ value: OID.signedData }), new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 0 }, value: [asn1js.fromBER(new Uint8Array(inner.content).buffer).result] })],
        }).toBER(false),
      );
    }
    // The owner certificate must chain to the voucher's pinned-domain-cert, and sign the data.
    const verified = await verifySignedData(conveyedDer, [voucher.pinnedDomainCertPem], { signerCertPem: leaf });
    const signer = splitPem(verified.signerCertPem)[0]!.replace(/\s/g, '');
    if (!ownerCerts.some((c) => c.replace(/\s/g, '') === signer)) fail('parsing', 'SIM_UNTRUSTED', 'conveyed information is not signed by the owner certificate', 'parsing-error');
    if (verified.eContentType !== OID.conveyedInfoJson) fail('parsing', 'SIM_UNTRUSTED', `eContentType ${verified.eContentType} is not id-ct-sztpConveyedInfoJSON`, 'parsing-error');
    return parseConveyedJson(verified.content);
  } catch (err) {
    if (err instanceof StageFailure) throw err;
    fail('parsing', 'SIM_UNTRUSTED', `conveyed information did not verify: ${errorMessage(err)}`, 'parsing-error', err);
  }
}

/** The next bootstrap server of a redirect: OPI uses [0] with an explicit port and keeps its path. */
function nextServer(redirect: unknown, profile: Profile, currentBase: string): { base: string; trustAnchorPems?: string[] } {
  const list = isObject(redirect) && Array.isArray(redirect['bootstrap-server']) ? redirect['bootstrap-server'].filter(isObject) : [];
  const first = list[0];
  if (!first || typeof first.address !== 'string' || first.address === '') fail('redirect', 'SIM_BAD_REPLY', 'redirect-information without a bootstrap-server address', 'bootstrap-error');
  const port = first.port;
  if (profile === 'opi' && (typeof port !== 'number' || port <= 0)) fail('redirect', 'SIM_BAD_REPLY', 'redirect without an explicit port (the OPI agent needs one)');
  const host = profile === 'rfc8572' && first.address.includes(':') ? `[${first.address}]` : first.address;
  const base = `https://${host}:${typeof port === 'number' ? port : 443}`;
  if (base === currentBase) fail('redirect', 'SIM_BAD_REPLY', 'redirected to the same server', 'bootstrap-error');
  const anchor = typeof first['trust-anchor'] === 'string' ? certificatesOf(Buffer.from(first['trust-anchor'], 'base64')) : undefined;
  return anchor && anchor.length ? { base, trustAnchorPems: anchor } : { base };
}

function stageOf(progressType: string | undefined): AgentStage {
  if (!progressType) return 'get-bootstrapping-data';
  if (progressType.startsWith('boot-image')) return 'boot-image';
  if (progressType.startsWith('pre-script')) return 'pre-script';
  if (progressType.startsWith('post-script')) return 'post-script';
  if (progressType.startsWith('config')) return 'config';
  if (progressType.startsWith('parsing') || progressType === 'bootstrap-initiated') return 'parsing';
  return 'bootstrap-complete';
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    t.unref();
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });
}

