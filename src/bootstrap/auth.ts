// Device authentication for the bootstrap server (RFC 8572 §5.3, §7): the TLS client
// certificate (IDevID), validated by the TLS layer against the device trust bundle with the
// chain the device sent, and/or HTTP Basic serial:password. Both present ⇒ same serial.
import type { X509Certificate } from 'node:crypto';
import { createHash } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { createRequire } from 'node:module';
import type * as Asn1js from 'asn1js';
import type { Config } from '../config.js';
import type { DeviceStore } from '../devices/store.js';
import pLimit, { type LimitFunction } from 'p-limit';
import { DUMMY_PASSWORD_HASH, verifyPasswordAsync } from '../devices/password.js';
import { ZtpError } from '../errors.js';

export type AuthMode = Config['bootstrap']['auth'];
export type SerialSource = Config['bootstrap']['serialFrom'];

export interface ClientCertificate {
  /** verified by TLS against the device trust bundle */
  authorized: boolean;
  /** OpenSSL's reason when not authorized (e.g. CERT_HAS_EXPIRED) */
  error?: string;
  /** leaf certificate, PEM */
  pem: string;
  x509: X509Certificate;
}

export interface Credentials {
  certificate?: ClientCertificate;
  basic?: { serial: string; password: string };
}

export interface Authenticated {
  serial: string;
  method: 'cert' | 'basic' | 'cert+basic';
  certificatePem?: string;
}

const socketCache = new WeakMap<object, ClientCertificate | null>();

/** The peer certificate of a TLS socket, parsed once per connection (keep-alive reuses it). */
export function peerCertificate(socket: unknown): ClientCertificate | undefined {
  const tls = socket as TLSSocket;
  if (typeof tls?.getPeerX509Certificate !== 'function') return undefined;
  const cached = socketCache.get(tls);
  if (cached !== undefined) return cached ?? undefined;
  const x509 = tls.getPeerX509Certificate();
  const cert: ClientCertificate | null = x509
    ? { authorized: tls.authorized, ...(tls.authorizationError ? { error: String(tls.authorizationError) } : {}), pem: x509.toString(), x509 }
    : null;
  socketCache.set(tls, cert);
  return cert ?? undefined;
}

/** "Basic base64(serial:password)" → parts; malformed headers are treated as absent credentials. */
export function parseBasic(header: string | undefined): { serial: string; password: string } | undefined {
  if (!header) return undefined;
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  return { serial: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

// asn1js (~9 MB resident, ~40 ms) is only needed when a certificate is searched for a
// hardwareModuleName, so `ztp serve` does not load it at start (issue 12). It is CommonJS (no
// "exports" map): require() here and pkijs's import share one copy.
let asn1jsModule: typeof Asn1js | undefined;
function loadAsn1js(): typeof Asn1js {
  asn1jsModule ??= createRequire(import.meta.url)('asn1js') as typeof Asn1js;
  return asn1jsModule;
}

/** RFC 4108 hardwareModuleName otherName (1.3.6.1.5.5.7.8.4): SEQUENCE { hwType OID, hwSerialNum OCTET STRING }. */
function hardwareModuleSerial(cert: X509Certificate): string | undefined {
  try {
    return findHardwareModuleSerial(cert);
  } catch {
    // A certificate the TLS layer accepted but asn1js cannot walk names no serial.
    return undefined;
  }
}

function findHardwareModuleSerial(cert: X509Certificate): string | undefined {
  const asn1js = loadAsn1js();
  const der = cert.raw;
  const parsed = asn1js.fromBER(der.buffer.slice(der.byteOffset, der.byteOffset + der.byteLength) as ArrayBuffer);
  if (parsed.offset === -1) return undefined;
  // Certificate → tbsCertificate → [3] extensions → find subjectAltName (2.5.29.17)
  const tbs = (parsed.result as Asn1js.Sequence).valueBlock.value[0] as Asn1js.Sequence | undefined;
  const extsTagged = tbs?.valueBlock.value.find((b) => b.idBlock.tagClass === 3 && b.idBlock.tagNumber === 3) as Asn1js.Constructed | undefined;
  const exts = (extsTagged?.valueBlock.value[0] as Asn1js.Sequence | undefined)?.valueBlock.value ?? [];
  for (const ext of exts as Asn1js.Sequence[]) {
    const [oid, ...rest] = ext.valueBlock.value;
    if (!(oid instanceof asn1js.ObjectIdentifier) || oid.valueBlock.toString() !== '2.5.29.17') continue;
    const value = rest[rest.length - 1] as Asn1js.OctetString;
    const names = asn1js.fromBER(value.valueBlock.valueHexView.slice().buffer);
    for (const name of (names.result as Asn1js.Sequence).valueBlock?.value ?? []) {
      if (name.idBlock.tagClass !== 3 || name.idBlock.tagNumber !== 0) continue;
      const [typeId, wrapped] = (name as Asn1js.Constructed).valueBlock.value;
      if (!(typeId instanceof asn1js.ObjectIdentifier) || typeId.valueBlock.toString() !== '1.3.6.1.5.5.7.8.4') continue;
      const hmn = (wrapped as Asn1js.Constructed).valueBlock.value[0] as Asn1js.Sequence;
      const serial = hmn.valueBlock.value[1];
      if (serial instanceof asn1js.OctetString) return Buffer.from(serial.valueBlock.valueHexView).toString('utf8');
    }
  }
  return undefined;
}

function subjectField(cert: X509Certificate, field: string): string | undefined {
  for (const line of cert.subject.split('\n')) {
    const eq = line.indexOf('=');
    if (line.slice(0, eq) === field) return line.slice(eq + 1);
  }
  return undefined;
}

/** The serial number an IDevID names, per configuration (SZTP-INTEROP.md "Device identity"). */
export function serialFromCertificate(cert: X509Certificate, source: SerialSource, regex?: RegExp): string | undefined {
  switch (source) {
    case 'serialNumber':
      return subjectField(cert, 'serialNumber');
    case 'CN':
      return subjectField(cert, 'CN');
    case 'hardwareModuleName':
      return hardwareModuleSerial(cert);
    case 'regex': {
      const m = regex?.exec(cert.subject.replace(/\n/g, ', '));
      return m?.[1];
    }
  }
}

export interface AuthenticatorOptions {
  mode: AuthMode;
  serialFrom: SerialSource;
  serialRegex?: string;
  /** password verifications running at once on the libuv pool (default 2) */
  passwordChecks?: number;
  /** verifications allowed to wait for a slot; beyond, 503 with Retry-After (default 1024) */
  passwordQueue?: number;
  /** longest wait for a slot before 503, ms (default 10 s) */
  passwordWaitMs?: number;
  /** slots one source address may hold at once (0 = no cap): a flood from one host leaves the rest to others */
  passwordChecksPerSource?: number;
}

function denied(reason: string, details: Record<string, unknown> = {}): ZtpError {
  // The peer learns only "access denied"; the reason goes to the log via details.
  return new ZtpError('SZTP_ACCESS_DENIED', 'access denied', { details: { reason, ...details } });
}

/**
 * scrypt off the event loop, a few at a time (issue 11: each wrong password blocked the process
 * ~90 ms; 200 of them stalled the admin API for seconds). Excess checks wait, FIFO, up to
 * `maxWaitMs`; then, or when `queue` checks already wait, 503 + Retry-After. Waiting rather than
 * refusing at once is deliberate: an instant 503 lets a flood loop on cheap replies and keeps the
 * event loop busier than the checks did (bench/bootstrap/wrong-passwords.js).
 */
/** Decides, just before a password is checked, whether it still may be: undefined = go on. */
export type Gate = () => ZtpError | undefined;

export class PasswordVerifier {
  private readonly limit: LimitFunction;
  /** checks admitted and not finished (running, waiting for a slot, or waiting behind their source) */
  private pending = 0;
  /** per source address with checks pending: its own limiter in front of the shared one */
  private readonly sources = new Map<string, { limit: LimitFunction; users: number }>();

  constructor(
    readonly concurrency = 2,
    readonly queue = 1024,
    readonly maxWaitMs = 10_000,
    readonly perSource = 0,
  ) {
    this.limit = pLimit(concurrency);
  }

  /**
   * `gate` runs when the check's turn comes, before scrypt: a refusal it returns is thrown instead
   * (a (serial, address) that hit its failure limit while waiting costs no scrypt). With
   * `perSource`, one `source` holds at most that many slots; its other checks wait behind it.
   */
  verify(password: string, stored: string, gate?: Gate, source?: string): Promise<boolean> {
    if (this.pending >= this.concurrency + this.queue) return Promise.reject(this.busy('password check queue is full'));
    this.pending++;
    const own = source !== undefined && this.perSource > 0 ? this.sourceLimit(source) : undefined;
    return new Promise((resolve, reject) => {
      let abandoned = false;
      const timer = setTimeout(() => {
        abandoned = true;
        reject(this.busy(`password check waited ${this.maxWaitMs} ms`));
      }, this.maxWaitMs);
      const check = () => {
        // An abandoned check was already answered 503: skip its scrypt.
        if (abandoned) return Promise.resolve(false);
        clearTimeout(timer);
        const refusal = gate?.();
        return refusal ? Promise.reject(refusal) : verifyPasswordAsync(password, stored);
      };
      const run = own ? own.limit(() => this.limit(check)) : this.limit(check);
      run
        .finally(() => {
          this.pending--;
          if (own && --own.users === 0) this.sources.delete(source!);
        })
        .then(resolve, reject);
    });
  }

  private sourceLimit(source: string): { limit: LimitFunction; users: number } {
    let own = this.sources.get(source);
    if (!own) this.sources.set(source, (own = { limit: pLimit(this.perSource), users: 0 }));
    own.users++;
    return own;
  }

  private busy(reason: string): ZtpError {
    // A scrypt takes ~0.1 s: the checks ahead drain in about that many tenths per slot.
    const retryAfter = Math.max(1, Math.ceil((this.pending / this.concurrency) * 0.1));
    return new ZtpError('SZTP_BUSY', undefined, { details: { reason, retryAfter } });
  }
}

export class DeviceAuthenticator {
  private readonly regex: RegExp | undefined;
  /** serial\0sha256(password) → the stored hash it matched; scrypt runs once per credential. */
  private readonly verified = new Map<string, string>();
  /** serial per certificate object: peerCertificate() reuses one per connection, so keep-alive parses once */
  private readonly certSerials = new WeakMap<X509Certificate, string | undefined>();
  readonly verifier: PasswordVerifier;

  constructor(
    private readonly store: DeviceStore,
    private readonly options: AuthenticatorOptions,
  ) {
    this.regex = options.serialRegex ? new RegExp(options.serialRegex) : undefined;
    this.verifier = new PasswordVerifier(options.passwordChecks, options.passwordQueue, options.passwordWaitMs, options.passwordChecksPerSource);
  }

  /** Whether these credentials would cost a scrypt (Basic, not a password already verified). */
  needsPasswordCheck(credentials: Credentials): boolean {
    const basic = credentials.basic;
    if (!basic) return false;
    const stored = this.store.passwordHashOf(basic.serial);
    return !(typeof stored === 'string' && this.verified.get(credentialKey(basic.serial, basic.password)) === stored);
  }

  /** The serial a request claims (Basic user, else the certificate's), before anything is verified. */
  claimedSerial(credentials: Credentials): string | undefined {
    if (credentials.basic) return credentials.basic.serial;
    return credentials.certificate ? this.certSerial(credentials.certificate.x509) : undefined;
  }

  private certSerial(x509: X509Certificate): string | undefined {
    if (this.certSerials.has(x509)) return this.certSerials.get(x509);
    const serial = serialFromCertificate(x509, this.options.serialFrom, this.regex);
    this.certSerials.set(x509, serial);
    return serial;
  }

  async authenticate(credentials: Credentials, gate?: Gate, source?: string): Promise<Authenticated> {
    const { mode } = this.options;
    let certSerial: string | undefined;
    const cert = credentials.certificate;
    if (cert) {
      if (!cert.authorized) {
        // Unverified, but worth an audit entry on the device it claims to be.
        const claimedSerial = this.certSerial(cert.x509);
        throw denied(`client certificate rejected: ${cert.error ?? 'not trusted'}`, { subject: cert.x509.subject.replace(/\n/g, ', '), ...(claimedSerial ? { claimedSerial } : {}) });
      }
      certSerial = this.certSerial(cert.x509);
      if (!certSerial) throw denied(`client certificate names no serial number (${this.options.serialFrom})`);
    }
    const basic = credentials.basic;
    if (mode === 'cert' && !certSerial) throw denied('a client certificate is required');
    if (mode === 'basic' && !basic) throw denied('HTTP Basic credentials are required');
    if (mode === 'cert-and-basic' && (!certSerial || !basic)) throw denied('both a client certificate and HTTP Basic credentials are required');
    if (!certSerial && !basic) throw denied('no credentials');
    if (certSerial && basic && certSerial !== basic.serial) throw denied('certificate and HTTP Basic name different serial numbers', { certSerial, basicSerial: basic.serial });
    const serial = certSerial ?? basic!.serial;
    const stored = this.store.passwordHashOf(serial);
    if (basic) {
      // Credentials presented must be right whatever the mode (issue 11: auth=cert took a wrong
      // password beside a valid certificate). An unknown serial or a device without a password
      // costs the same scrypt as a wrong password, so timing does not tell them apart.
      const matched = await this.checkPassword(serial, basic.password, stored ?? undefined, gate, source);
      if (stored === undefined) throw denied('unknown serial number', { serial });
      if (stored === null) throw denied('device has no password', { serial });
      if (!matched) throw denied('wrong password', { serial });
    } else if (stored === undefined) {
      throw denied('unknown serial number', { serial });
    }
    const method = certSerial && basic ? 'cert+basic' : certSerial ? 'cert' : 'basic';
    return { serial, method, ...(cert ? { certificatePem: cert.pem } : {}) };
  }

  private async checkPassword(serial: string, password: string, stored: string | undefined, gate: Gate | undefined, source: string | undefined): Promise<boolean> {
    const key = credentialKey(serial, password);
    if (stored !== undefined && this.verified.get(key) === stored) return true;
    const matched = await this.verifier.verify(password, stored ?? DUMMY_PASSWORD_HASH, gate, source);
    if (!matched || stored === undefined) return false;
    if (this.verified.size > 50_000) this.verified.clear();
    this.verified.set(key, stored);
    return true;
  }
}

function credentialKey(serial: string, password: string): string {
  return `${serial}\0${createHash('sha256').update(password).digest('base64')}`;
}
