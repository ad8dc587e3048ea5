// The simulated device's HTTP(S) client: one small function over node:http/https with a
// timeout on every request, a cap on the body it will buffer, and TLS verification always on
// (against the CA the device was provisioned with). Keep-alive agents are per device, as a
// firmware or agent process would hold one connection to its server.
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { createHash } from 'node:crypto';
import { isZtpError, ZtpError } from '../errors.js';
import type { PemKeyPair } from '../pki/material.js';

export interface HttpResult {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface DeviceHttpOptions {
  /** trust anchor for HTTPS servers */
  caPem: string;
  /** client certificate (IDevID) offered on HTTPS */
  clientCert?: PemKeyPair;
  /** per-request timeout, ms (connect + whole response) */
  timeoutMs: number;
  /** bodies larger than this are an error, bytes */
  maxBodyBytes: number;
}

export interface RequestOptions {
  method?: 'GET' | 'HEAD' | 'POST';
  headers?: Record<string, string>;
  body?: string | Buffer;
  signal?: AbortSignal;
}

/** One device's HTTP client (keep-alive, one socket per origin like a device agent). */
export class DeviceHttp {
  private readonly https: HttpsAgent;
  private readonly http: HttpAgent;

  constructor(private readonly options: DeviceHttpOptions) {
    this.https = new HttpsAgent({
      keepAlive: true,
      maxSockets: 2,
      ca: options.caPem,
      ...(options.clientCert ? { cert: options.clientCert.certPem, key: options.clientCert.keyPem } : {}),
    });
    this.http = new HttpAgent({ keepAlive: true, maxSockets: 2 });
  }

  request(url: string, opts: RequestOptions = {}): Promise<HttpResult> {
    const u = new URL(url);
    const tls = u.protocol === 'https:';
    if (!tls && u.protocol !== 'http:') return Promise.reject(new ZtpError('SIM_INVALID', `unsupported URL scheme ${u.protocol}`));
    const body = opts.body === undefined ? undefined : Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(opts.body);
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    if (body) headers['content-length'] = String(body.length);
    const fn = tls ? httpsRequest : httpRequest;
    return new Promise<HttpResult>((resolve, reject) => {
      const req = fn(
        {
          host: u.hostname.replace(/^\[|\]$/g, ''),
          port: u.port || (tls ? 443 : 80),
          path: u.pathname + u.search,
          method: opts.method ?? 'GET',
          headers,
          agent: tls ? this.https : this.http,
          ...(opts.signal ? { signal: opts.signal } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > this.options.maxBodyBytes) {
              req.destroy(new ZtpError('SIM_BAD_REPLY', `response from ${u.origin} exceeds ${this.options.maxBodyBytes} bytes`));
              return;
            }
            chunks.push(c);
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
          res.on('error', reject);
        },
      );
      req.setTimeout(this.options.timeoutMs, () => req.destroy(new ZtpError('SIM_TIMEOUT', `${opts.method ?? 'GET'} ${u.origin}${u.pathname}: no answer within ${this.options.timeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  /**
   * GET of a whole file, hashed as it streams (never buffered). `corrupt` flips the first byte
   * before hashing: a transfer corrupted on the way, for fault injection.
   */
  download(url: string, opts: { signal?: AbortSignal; corrupt?: boolean; range?: string } = {}): Promise<{ status: number; bytes: number; sha256: Buffer; headers: IncomingHttpHeaders }> {
    const u = new URL(url);
    const tls = u.protocol === 'https:';
    if (!tls && u.protocol !== 'http:') return Promise.reject(new ZtpError('SIM_INVALID', `unsupported URL scheme ${u.protocol}`));
    const fn = tls ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = fn(
        {
          host: u.hostname.replace(/^\[|\]$/g, ''),
          port: u.port || (tls ? 443 : 80),
          path: u.pathname + u.search,
          method: 'GET',
          headers: opts.range ? { range: opts.range } : {},
          agent: tls ? this.https : this.http,
          ...(opts.signal ? { signal: opts.signal } : {}),
        },
        (res) => {
          const status = res.statusCode ?? 0;
          if (status !== 200 && status !== 206) {
            res.resume();
            reject(new ZtpError('SIM_IMAGE_FETCH_FAILED', `GET ${u.pathname}: HTTP ${status}`, { details: { status } }));
            return;
          }
          const hash = createHash('sha256');
          let bytes = 0;
          res.on('data', (c: Buffer) => {
            if (opts.corrupt && bytes === 0 && c.length > 0) {
              c = Buffer.from(c);
              c[0] = c[0]! ^ 0xff;
            }
            bytes += c.length;
            hash.update(c);
          });
          res.on('end', () => resolve({ status, bytes, sha256: hash.digest(), headers: res.headers }));
          res.on('error', reject);
        },
      );
      req.setTimeout(this.options.timeoutMs, () => req.destroy(new ZtpError('SIM_TIMEOUT', `GET ${u.origin}${u.pathname}: stalled for ${this.options.timeoutMs} ms`)));
      req.on('error', reject);
      req.end();
    });
  }

  close(): void {
    this.https.destroy();
    this.http.destroy();
  }
}

/** How often a device repeats a request that failed at the connection level (server restarting). */
export interface TransportRetries {
  /** tries in all (1: no retry) */
  attempts: number;
  /** pause between tries, ms */
  delayMs: number;
}

const TRANSPORT_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED', 'EAI_AGAIN']);

/** A failure before any HTTP status (refused, reset, hung up, no answer in time): worth another try. */
export function isTransportError(err: unknown): boolean {
  if (isZtpError(err)) return err.code === 'SIM_TIMEOUT';
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && TRANSPORT_CODES.has(code);
}

/** Runs `fn`, again after `delayMs` while it fails at the transport level (never after an abort). */
export async function withTransportRetries<T>(fn: () => Promise<T>, retries: TransportRetries | undefined, signal?: AbortSignal, onRetry?: (err: unknown, attempt: number) => void): Promise<T> {
  const attempts = Math.max(1, retries?.attempts ?? 1);
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= attempts || signal?.aborted || !isTransportError(err)) throw err;
      onRetry?.(err, attempt);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, retries!.delayMs);
        function done() {
          clearTimeout(timer);
          signal?.removeEventListener('abort', done);
          resolve();
        }
        signal?.addEventListener('abort', done, { once: true });
      });
      if (signal?.aborted) throw err;
    }
  }
}
