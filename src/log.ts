// Structured logs (pino) with secrets redacted at the source: keys, passwords, tokens and
// activation codes never reach a log line, whatever field they hide in.
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

export const REDACTED_PATHS = [
  'password',
  '*.password',
  '*.*.password',
  'passwordHash',
  '*.passwordHash',
  'bmcPassword',
  '*.bmcPassword',
  '*.bmc.password',
  'token',
  '*.token',
  'key',
  '*.key',
  'privateKey',
  '*.privateKey',
  'activationCode',
  '*.activationCode',
  'authorization',
  'req.headers.authorization',
  'headers.authorization',
  'req.headers.cookie',
];

/**
 * Query parameters whose values are secrets (issue 11: `?token=` reached the log on a 401).
 * Compared case-insensitively, after percent-decoding the name.
 */
export const SECRET_QUERY_PARAMS = new Set([
  'token', 'access_token', 'id_token', 'refresh_token', 'auth', 'authorization', 'bearer',
  'password', 'passwd', 'pass', 'pwd', 'secret', 'client_secret', 'api_key', 'apikey', 'key',
  'activation_code', 'activationcode', 'signature', 'sig', 'x-amz-signature', 'x-amz-credential', 'x-amz-security-token',
]);

function decodedName(raw: string): string {
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' ')).toLowerCase();
  } catch {
    return raw.toLowerCase();
  }
}

/**
 * A URL (absolute or a request target) with secret query values and any userinfo password
 * replaced by [redacted]; everything else is kept byte for byte, so logs still say what was asked.
 */
export function redactUrl(url: string): string {
  let out = url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/?#@:]*):[^/?#@]*@/i, '$1:[redacted]@');
  const q = out.indexOf('?');
  if (q === -1) return out;
  const hash = out.indexOf('#', q);
  const query = out.slice(q + 1, hash === -1 ? undefined : hash);
  const redacted = query
    .split(/([&;])/)
    .map((part) => {
      const eq = part.indexOf('=');
      const name = eq === -1 ? part : part.slice(0, eq);
      return SECRET_QUERY_PARAMS.has(decodedName(name)) && eq !== -1 ? `${name}=[redacted]` : part;
    })
    .join('');
  out = `${out.slice(0, q + 1)}${redacted}${hash === -1 ? '' : out.slice(hash)}`;
  return out;
}

/**
 * Serializers every logger shares (children inherit them): any `url` field, and the `url` of a
 * logged request, pass through redactUrl. Every HTTP listener logs URLs under these keys.
 */
export const LOG_SERIALIZERS = {
  url: (value: unknown): unknown => (typeof value === 'string' ? redactUrl(value) : value),
  req: (value: unknown): unknown => {
    if (typeof value !== 'object' || value === null) return value;
    const r = value as { method?: unknown; url?: unknown; headers?: { host?: unknown }; socket?: { remoteAddress?: unknown }; ip?: unknown };
    return { method: r.method, url: typeof r.url === 'string' ? redactUrl(r.url) : r.url, host: r.headers?.host, remoteAddress: r.ip ?? r.socket?.remoteAddress };
  },
};

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { app: 'dpu-ztp' },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      serializers: LOG_SERIALIZERS,
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}

/** A logger that drops everything: for tests and library use. */
export const silentLogger: Logger = pino({ level: 'silent' });

/**
 * Rate-limits a repeated log line (e.g. hostile packets): at most `perWindow` lines per window,
 * then one summary line counting what was suppressed.
 */
export class RateLimitedLog {
  private windowStart = 0;
  private count = 0;
  private suppressed = 0;

  constructor(
    private readonly log: Logger,
    private readonly perWindow = 10,
    private readonly windowMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  warn(fields: Record<string, unknown>, message: string): void {
    const t = this.now();
    if (t - this.windowStart >= this.windowMs) {
      if (this.suppressed > 0) this.log.warn({ suppressed: this.suppressed }, 'similar log lines suppressed');
      this.windowStart = t;
      this.count = 0;
      this.suppressed = 0;
    }
    if (this.count < this.perWindow) {
      this.count++;
      this.log.warn(fields, message);
    } else {
      this.suppressed++;
    }
  }
}
