// Schema of the `http` configuration section: one set of limits shared by every HTTP listener
// the suite opens (bootstrap server, image server HTTP and HTTPS, admin API). Each listener gets
// its own connection cap and its own per-source rate buckets; the values are the same for all,
// except the admin API's whole-request timeout (image uploads stream through it: uploadTimeout).
import { Type, type Static } from '../schema.js';
import { ZtpError } from '../errors.js';

/** Marks a leaf with its environment variable; the flag is derived (--http-headers-timeout). */
const env = (name: string) => ({ env: name });
const Seconds = (def: number, max: number, envName: string, description: string) =>
  Type.Number({ minimum: 0.1, maximum: max, default: def, description: `${description}, seconds`, ...env(envName) });

export const HttpSectionSchema = Type.Object(
  {
    headersTimeout: Seconds(10, 600, 'ZTP_HTTP_HEADERS_TIMEOUT', 'time a client has to send the request line and headers (then 408 and close)'),
    requestTimeout: Seconds(60, 86_400, 'ZTP_HTTP_REQUEST_TIMEOUT', 'time a client has to send a whole request, body included (admin API: uploadTimeout)'),
    uploadTimeout: Seconds(3600, 86_400, 'ZTP_HTTP_UPLOAD_TIMEOUT', "the admin API's whole-request timeout (image uploads stream through it)"),
    idleTimeout: Seconds(60, 86_400, 'ZTP_HTTP_IDLE_TIMEOUT', 'a connection with no traffic either way for this long is closed'),
    keepAliveTimeout: Seconds(5, 600, 'ZTP_HTTP_KEEP_ALIVE_TIMEOUT', 'an idle keep-alive connection waits this long for its next request'),
    handshakeTimeout: Seconds(10, 600, 'ZTP_HTTP_HANDSHAKE_TIMEOUT', 'time a client has to finish the TLS handshake (HTTPS listeners)'),
    maxConnections: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 512, description: 'open connections per listener; more are closed on accept', ...env('ZTP_HTTP_MAX_CONNECTIONS') }),
    maxConnectionsPerSource: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 0, description: 'open connections one source address may hold to one listener; more are closed on accept, before TLS (0: no limit)', ...env('ZTP_HTTP_MAX_CONNECTIONS_PER_SOURCE') }),
    rateLimit: Type.Number({ minimum: 0, maximum: 1_000_000, default: 0, description: 'requests per second one source address may make to one listener (429 + Retry-After beyond; 0: no limit)', ...env('ZTP_HTTP_RATE_LIMIT') }),
    rateBurst: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 200, description: 'requests one source address may make at once before rateLimit applies', ...env('ZTP_HTTP_RATE_BURST') }),
  },
  { additionalProperties: false, default: {} },
);

export type HttpSettings = Static<typeof HttpSectionSchema>;

/**
 * Relations the schema cannot say. Node refuses a header timeout longer than the request
 * timeout (the headers are part of the request), and a keep-alive wait longer than the idle
 * timeout would never be reached.
 */
export function validateHttpSettings(s: HttpSettings): void {
  for (const key of ['requestTimeout', 'uploadTimeout'] as const) {
    if (s.headersTimeout > s[key]) {
      throw new ZtpError('CONFIG_INVALID', `configuration key "http.headersTimeout": ${s.headersTimeout} s is longer than http.${key} (${s[key]} s)`, { details: { key: 'http.headersTimeout' } });
    }
  }
  if (s.keepAliveTimeout > s.idleTimeout) {
    throw new ZtpError('CONFIG_INVALID', `configuration key "http.keepAliveTimeout": ${s.keepAliveTimeout} s is longer than http.idleTimeout (${s.idleTimeout} s)`, { details: { key: 'http.keepAliveTimeout' } });
  }
}
