// The Redfish side of the suite: open a session to a BMC (the port in api.ts), record its steps
// as device history. Nothing outside src/redfish/ imports undici or knows a Redfish URI.
import type { BmcInfo } from '../devices/model.js';
import { ZtpError } from '../errors.js';
import type { Logger } from '../log.js';
import type { BmcEndpoint, BmcSession, StepListener } from './api.js';
import { RedfishBmcSession, type SessionDeps } from './client.js';
import type { RedfishClock } from './transport.js';

export type * from './api.js';
export { RedfishBmcSession, DEFAULT_TIMEOUTS, type SessionDeps, type OperationTimeouts } from './client.js';
export { historyStepListener, allListeners, REDFISH_EVENT_TYPES } from './history.js';
export { displayUrl, normalizeFingerprint, realClock, type RedfishClock, type TransportTuning } from './transport.js';
export { QUIRKS } from './quirks.js';

/**
 * Logs in to a BMC and probes what it can do. The session must be closed (session DELETE); an
 * abort of `deps.signal` closes it too. Fails with a typed REDFISH_* ZtpError.
 */
export function openBmcSession(
  endpoint: BmcEndpoint,
  deps: { log: Logger; signal?: AbortSignal; clock?: RedfishClock; onStep?: StepListener } & Partial<SessionDeps>,
): Promise<BmcSession & RedfishBmcSession> {
  return RedfishBmcSession.open(endpoint, deps);
}

/** Runs `fn` with a session that is closed (logged out) whatever happens. */
export async function withBmcSession<T>(endpoint: BmcEndpoint, deps: Parameters<typeof openBmcSession>[1], fn: (session: BmcSession & RedfishBmcSession) => Promise<T>): Promise<T> {
  const session = await openBmcSession(endpoint, deps);
  try {
    return await fn(session);
  } finally {
    await session.close();
  }
}

/** A device record's BMC coordinates → an endpoint ("host" alone means https://host). */
export function endpointFromDevice(bmc: BmcInfo & { newPassword?: string }): BmcEndpoint {
  if (bmc.passwordUnreadable) {
    throw new ZtpError('REDFISH_INVALID_ENDPOINT', 'the stored BMC password does not open with this data directory\'s key: set it again (ztp device add … --bmc-password)', { details: { field: 'bmc.password' } });
  }
  const url = /^[a-z][a-z0-9+.-]*:\/\//i.test(bmc.address) ? bmc.address : `https://${bmc.address}`;
  const endpoint: BmcEndpoint = { url };
  if (bmc.username) endpoint.username = bmc.username;
  if (bmc.password) endpoint.password = bmc.password;
  if (bmc.caBundle) endpoint.caBundle = bmc.caBundle;
  if (bmc.fingerprint256) endpoint.fingerprint256 = bmc.fingerprint256;
  if (bmc.insecure) endpoint.insecure = true;
  if (bmc.systemId) endpoint.systemId = bmc.systemId;
  if (bmc.newPassword) endpoint.newPassword = bmc.newPassword;
  return endpoint;
}
