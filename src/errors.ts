// One typed error catalogue for the whole suite (STYLE.md practice 2).
// Every error the suite raises on purpose is a ZtpError whose `code` is one of the closed union
// below. Protocol layers map codes to their wire form (RESTCONF errors, Redfish error bodies,
// DHCP drop counters); nothing else leaks a stack trace to a peer.

export const ERROR_CATALOGUE = {
  // configuration and start-up
  CONFIG_INVALID: { status: 500, message: 'configuration is invalid' },
  CONFIG_UNKNOWN_KEY: { status: 500, message: 'configuration names an unknown key' },
  // storage
  DB_MIGRATION_FAILED: { status: 500, message: 'database migration failed' },
  DB_NEWER_SCHEMA: { status: 500, message: 'database was written by a newer dpu-ztp' },
  // device registry
  DEVICE_NOT_FOUND: { status: 404, message: 'no device with that serial number' },
  DEVICE_INVALID: { status: 400, message: 'device record is invalid' },
  DEVICE_IMPORT_INVALID: { status: 400, message: 'device import has invalid rows' },
  DEVICE_IN_USE: { status: 409, message: 'device is referenced' },
  // secrets at rest (src/devices/secrets.ts)
  SECRETS_KEY_INVALID: { status: 500, message: 'the data directory secret key is unreadable' },
  SECRETS_UNREADABLE: { status: 500, message: 'a stored secret does not open with this key' },
  // admin API
  API_UNAUTHORIZED: { status: 401, message: 'missing or wrong bearer token' },
  API_BAD_REQUEST: { status: 400, message: 'bad request' },
  API_NOT_FOUND: { status: 404, message: 'not found' },
  // PKI and CMS
  PKI_INVALID_CERT: { status: 400, message: 'certificate could not be parsed' },
  PKI_MISSING_MATERIAL: { status: 500, message: 'PKI material is missing' },
  PKI_KEY_MISMATCH: { status: 500, message: 'private key does not match certificate' },
  CMS_MALFORMED: { status: 400, message: 'CMS structure is malformed' },
  CMS_VERIFY_FAILED: { status: 400, message: 'CMS signature did not verify' },
  CMS_UNEXPECTED_CONTENT_TYPE: { status: 400, message: 'unexpected CMS content type' },
  VOUCHER_INVALID: { status: 400, message: 'ownership voucher is invalid' },
  // sZTP bootstrap server (RFC 8572 / RFC 8040)
  SZTP_ACCESS_DENIED: { status: 401, message: 'access denied' },
  SZTP_MALFORMED_MESSAGE: { status: 400, message: 'malformed message' },
  SZTP_INVALID_VALUE: { status: 400, message: 'invalid value' },
  SZTP_UNKNOWN_ELEMENT: { status: 400, message: 'unknown element' },
  SZTP_MISSING_ELEMENT: { status: 400, message: 'missing element' },
  SZTP_UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'unsupported media type' },
  SZTP_NOT_ACCEPTABLE: { status: 406, message: 'requested media type is not available' },
  SZTP_BODY_TOO_LARGE: { status: 413, message: 'request body too large' },
  SZTP_NOT_FOUND: { status: 404, message: 'no such resource' },
  SZTP_METHOD_NOT_ALLOWED: { status: 405, message: 'method not allowed' },
  SZTP_NO_BOOTSTRAP_DATA: { status: 404, message: 'no bootstrapping data for this device' },
  SZTP_INTERNAL: { status: 500, message: 'internal error' },
  SZTP_RATE_LIMITED: { status: 429, message: 'too many failed attempts from this address for this serial number; retry later' },
  SZTP_BUSY: { status: 503, message: 'too many password checks waiting; retry later' },
  // DHCP responder
  DHCP_MALFORMED: { status: 400, message: 'malformed DHCP packet' },
  DHCP_TRUNCATED: { status: 400, message: 'truncated DHCP packet' },
  DHCP_OPTION_LOOP: { status: 400, message: 'DHCP option overload loops' },
  DHCP_WRONG_OP: { status: 400, message: 'DHCP packet has the wrong op' },
  DHCP_POOL_EXHAUSTED: { status: 503, message: 'address pool exhausted' },
  DHCP_ENCODE_FAILED: { status: 500, message: 'DHCP packet could not be encoded' },
  DHCP_DISABLED: { status: 503, message: 'DHCP responder is disabled' },
  // images
  IMAGES_NOT_FOUND: { status: 404, message: 'no such image' },
  IMAGES_BAD_PATH: { status: 400, message: 'path is not allowed' },
  IMAGES_RANGE_NOT_SATISFIABLE: { status: 416, message: 'range not satisfiable' },
  IMAGES_DIGEST_MISMATCH: { status: 422, message: 'content does not match declared sha256' },
  IMAGES_IN_USE: { status: 409, message: 'image is referenced by devices' },
  IMAGES_STORAGE_FULL: { status: 507, message: 'image storage is full' },
  IMAGES_UPLOAD_ABORTED: { status: 400, message: 'upload was aborted' },
  IMAGES_INVALID: { status: 400, message: 'image request is invalid' },
  IMAGES_NAME_TAKEN: { status: 409, message: 'an image with that name holds other content' },
  IMAGES_CLIENT_CERT_REQUIRED: { status: 403, message: 'a trusted client certificate is required for this image' },
  IMAGES_TOO_LARGE: { status: 413, message: 'image is larger than allowed' },
  IMAGES_FETCH_FAILED: { status: 502, message: 'image could not be fetched from its URL' },
  IMAGES_CONTENT_DAMAGED: { status: 500, message: 'stored image content failed its integrity check (outside the store, or not its digest)' },
  // TFTP server (PXE)
  TFTP_MALFORMED: { status: 400, message: 'malformed TFTP packet' },
  TFTP_NOT_FOUND: { status: 404, message: 'no such file on the TFTP server' },
  TFTP_ACCESS_VIOLATION: { status: 403, message: 'TFTP path or operation is not allowed' },
  TFTP_ILLEGAL_OPERATION: { status: 400, message: 'illegal TFTP operation' },
  TFTP_BUSY: { status: 503, message: 'too many TFTP transfers in progress' },
  TFTP_TIMEOUT: { status: 504, message: 'TFTP peer stopped answering' },
  // Redfish client
  REDFISH_UNREACHABLE: { status: 502, message: 'BMC did not answer' },
  REDFISH_TIMEOUT: { status: 504, message: 'BMC timed out' },
  REDFISH_AUTH_FAILED: { status: 401, message: 'BMC refused the credentials' },
  REDFISH_BAD_RESPONSE: { status: 502, message: 'BMC sent an invalid response' },
  REDFISH_ACTION_FAILED: { status: 502, message: 'BMC action failed' },
  REDFISH_UNSUPPORTED: { status: 501, message: 'BMC does not support this' },
  REDFISH_TASK_FAILED: { status: 502, message: 'BMC task failed' },
  REDFISH_TLS_FAILED: { status: 502, message: 'BMC certificate did not verify (CA bundle or pinned fingerprint)' },
  REDFISH_UNAVAILABLE: { status: 503, message: 'BMC is busy or not ready' },
  REDFISH_NOT_FOUND: { status: 404, message: 'BMC has no such resource' },
  REDFISH_SYSTEM_NOT_FOUND: { status: 404, message: 'BMC has no system to drive (configure its id)' },
  REDFISH_INVALID_ENDPOINT: { status: 400, message: 'BMC endpoint is invalid' },
  REDFISH_PASSWORD_CHANGE_REQUIRED: { status: 401, message: 'BMC demands a password change and no new password is configured' },
  REDFISH_ABORTED: { status: 503, message: 'BMC operation was aborted' },
  // simulated DPU and sZTP agent (src/simulate/)
  SIM_INVALID: { status: 400, message: 'simulation request is invalid' },
  SIM_BOOTSTRAP_REFUSED: { status: 502, message: 'bootstrap server refused the request' },
  SIM_BAD_REPLY: { status: 502, message: 'bootstrap server sent a reply the agent cannot use' },
  SIM_UNTRUSTED: { status: 502, message: 'conveyed information did not verify' },
  SIM_IMAGE_FETCH_FAILED: { status: 502, message: 'boot image could not be downloaded' },
  SIM_IMAGE_MISMATCH: { status: 422, message: 'boot image does not match its image-verification digest' },
  SIM_SCRIPT_REFUSED: { status: 422, message: 'configuration script is not executable text' },
  SIM_SCRIPT_FAILED: { status: 422, message: 'configuration script failed' },
  SIM_TIMEOUT: { status: 504, message: 'simulated device timed out' },
  SIM_CRASHED: { status: 500, message: 'simulated agent crashed (injected fault)' },
  SIM_NETNS_UNAVAILABLE: { status: 503, message: 'network namespace DHCP path is unavailable' },
  // onboarding conductor
  ONBOARDING_NOT_FOUND: { status: 404, message: 'no onboarding job for that device' },
  ONBOARDING_INVALID: { status: 400, message: 'onboarding request is invalid' },
  ONBOARDING_CONFLICT: { status: 409, message: 'the onboarding job is in a state that does not allow this' },
  ONBOARDING_DISABLED: { status: 503, message: 'the onboarding conductor is not running' },
  ONBOARDING_SERVER_UNREACHABLE: { status: 503, message: 'ztp serve is not reachable' },
  // the ztp command line (unknown command or option, missing argument)
  CLI_USAGE: { status: 400, message: 'the command line is not valid' },
  // HTTP listeners (src/http/)
  HTTP_RATE_LIMITED: { status: 429, message: 'too many requests from this address' },
  LISTEN_PORT_IN_USE: { status: 503, message: 'a port the suite listens on is in use' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export interface ZtpErrorOptions {
  cause?: unknown;
  /** Extra structured detail, safe to log and (below status 500) to return to a peer. */
  details?: Record<string, unknown>;
  status?: number;
}

export class ZtpError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message?: string, options: ZtpErrorOptions = {}) {
    super(message ?? ERROR_CATALOGUE[code].message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ZtpError';
    this.code = code;
    this.status = options.status ?? ERROR_CATALOGUE[code].status;
    this.details = options.details;
  }
}

export function isZtpError(value: unknown, code?: ErrorCode): value is ZtpError {
  return value instanceof ZtpError && (code === undefined || value.code === code);
}

/** Human message of any thrown value, for logs. */
export function errorMessage(value: unknown): string {
  if (value instanceof Error) return value.message;
  return String(value);
}
