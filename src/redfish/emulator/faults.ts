// Fault injection: what fragile BMCs do to a client, on purpose and deterministically (counted,
// never random), so a test that expects a fallback sees it every run.
//
// CLI form (`--faults`): comma-separated entries `[TARGET@]NAME[=VALUE]`, TARGET a BMC id (or
// `*`, the default); e.g. `latency=50,bmc-0002@timeout=insert,5xx=2/10,drop-session=5`.
import { ZtpError } from '../../errors.js';

/** Which requests a `timeout` fault swallows (never answered). */
export const HANG_TARGETS = ['any', 'login', 'get', 'insert', 'eject', 'reset', 'boot', 'update'] as const;
export type HangTarget = (typeof HANG_TARGETS)[number];

export interface FaultSpec {
  /** every response is delayed this long */
  latencyMs?: number;
  /** `count` consecutive 503s (with Retry-After) at the start of every `every` requests */
  burst5xx?: { count: number; every: number; retryAfterS?: number };
  /** requests of this kind are never answered (`times` of them; default all) */
  timeout?: { on: HangTarget; times?: number };
  /** a session's token is invalidated once it has served this many requests */
  dropSessionAfter?: number;
  /** GETs carry an ETag that is already out of date, so If-Match answers 412 */
  staleEtag?: boolean;
  /** InsertMedia succeeds but the slot never reports Inserted */
  mediaNeverInserted?: boolean;
  /** the account starts with PasswordChangeRequired: nothing works until it is changed */
  factoryPassword?: boolean;
  /** Reset, InsertMedia and boot PATCHes answer 202 + a task monitor instead of 204 */
  asyncActions?: boolean;
  /** Accept-Encoding: identity is refused with 406 (HPE iLO Gen10 Plus firmware) */
  refuseIdentityEncoding?: boolean;
  /**
   * The socket of a matching request is closed with no answer (`times` of them; default 1): the
   * keep-alive race where the BMC shuts an idle connection as the request arrives ('before': the
   * BMC never acts on it), or a BMC that acts and then drops the connection ('after').
   */
  dropConnection?: { on: HangTarget; when: 'before' | 'after'; times: number };
  /** the system does not offer BootSourceOverrideTarget UefiBootNext (older firmware): BootOrder it is */
  noBootNext?: boolean;
}

export const FAULT_NAMES = ['latency', '5xx', 'timeout', 'drop-session', 'stale-etag', 'media-never-inserted', 'factory-password', 'async-actions', 'identity-406', 'drop-connection', 'no-boot-next'] as const;

function bad(entry: string, why: string): ZtpError {
  return new ZtpError('CONFIG_INVALID', `fault "${entry}": ${why} (faults: ${FAULT_NAMES.join(', ')})`, { details: { fault: entry } });
}

function positiveInt(entry: string, value: string | undefined, what: string): number {
  const n = Number(value);
  if (!value || !Number.isInteger(n) || n < 0) throw bad(entry, `${what} must be a non-negative integer`);
  return n;
}

/** Adds one `NAME[=VALUE]` to a spec (throws CONFIG_INVALID naming the entry). */
export function applyFault(spec: FaultSpec, entry: string): FaultSpec {
  const [name, value] = entry.split('=', 2) as [string, string | undefined];
  switch (name) {
    case 'latency':
      return { ...spec, latencyMs: positiveInt(entry, value, 'latency') };
    case '5xx': {
      const m = /^(\d+)\/(\d+)(?::(\d+))?$/.exec(value ?? '2/10');
      if (!m) throw bad(entry, '5xx=COUNT/EVERY[:RETRY_AFTER_S]');
      const count = Number(m[1]);
      const every = Number(m[2]);
      if (every < 1 || count >= every) throw bad(entry, 'COUNT must be below EVERY');
      return { ...spec, burst5xx: { count, every, retryAfterS: m[3] === undefined ? 1 : Number(m[3]) } };
    }
    case 'timeout': {
      const [on, times] = (value ?? 'any').split(':', 2) as [string, string | undefined];
      if (!(HANG_TARGETS as readonly string[]).includes(on)) throw bad(entry, `timeout=${HANG_TARGETS.join('|')}[:TIMES]`);
      return { ...spec, timeout: { on: on as HangTarget, ...(times !== undefined ? { times: positiveInt(entry, times, 'TIMES') } : {}) } };
    }
    case 'drop-session':
      return { ...spec, dropSessionAfter: value === undefined ? 3 : Math.max(1, positiveInt(entry, value, 'drop-session')) };
    case 'stale-etag':
      return { ...spec, staleEtag: true };
    case 'media-never-inserted':
      return { ...spec, mediaNeverInserted: true };
    case 'factory-password':
      return { ...spec, factoryPassword: true };
    case 'async-actions':
      return { ...spec, asyncActions: true };
    case 'identity-406':
      return { ...spec, refuseIdentityEncoding: true };
    case 'drop-connection': {
      // drop-connection=TARGET[:before|after][:TIMES], e.g. drop-connection=reset, drop-connection=insert:after:2
      const parts = (value ?? 'any').split(':');
      const on = parts[0]!;
      if (!(HANG_TARGETS as readonly string[]).includes(on)) throw bad(entry, `drop-connection=${HANG_TARGETS.join('|')}[:before|after][:TIMES]`);
      let when: 'before' | 'after' = 'before';
      let rest = parts.slice(1);
      if (rest[0] === 'before' || rest[0] === 'after') {
        when = rest[0];
        rest = rest.slice(1);
      }
      if (rest.length > 1) throw bad(entry, 'drop-connection=TARGET[:before|after][:TIMES]');
      const times = rest[0] === undefined ? 1 : positiveInt(entry, rest[0], 'TIMES');
      return { ...spec, dropConnection: { on: on as HangTarget, when, times } };
    }
    case 'no-boot-next':
      return { ...spec, noBootNext: true };
    default:
      throw bad(entry, 'unknown fault');
  }
}

/** Parses the CLI form into per-target specs: key '*' for all BMCs, else a BMC id. */
export function parseFaults(text: string): Map<string, FaultSpec> {
  const out = new Map<string, FaultSpec>();
  for (const raw of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const at = raw.indexOf('@');
    const target = at > 0 ? raw.slice(0, at) : '*';
    const entry = at > 0 ? raw.slice(at + 1) : raw;
    out.set(target, applyFault(out.get(target) ?? {}, entry));
  }
  return out;
}

/** The spec in force for one BMC: the '*' entries, then its own on top. */
export function faultsFor(specs: Map<string, FaultSpec>, bmcId: string): FaultSpec {
  return { ...(specs.get('*') ?? {}), ...(specs.get(bmcId) ?? {}) };
}
