// Binding a UDP socket to one network interface (issue 8, "Several interfaces").
//
// A client without an address sends its DISCOVER to 255.255.255.255, so the destination says
// nothing about the segment it came from; Node exposes neither IP_PKTINFO nor SO_BINDTODEVICE.
// socket(7): "SO_BINDTOIFINDEX — Bind this socket to a particular device like SO_BINDTODEVICE,
// but with an interface index." A socket bound to a device only receives packets that arrived on
// it, and everything it sends leaves through it, routing table or not (a limited broadcast on a
// segment without a default route included). The option takes an int, which the `sockopt`
// binding (setsockopt for Node sockets) passes; SO_BINDTODEVICE itself takes a string it does not.
//
// Needs Linux ≥ 5.0. Binding a socket that is not yet bound to a device needs no privilege since
// Linux 5.7; before that (and to re-bind) it needs CAP_NET_RAW.
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:dgram';
import { constants } from 'node:os';
import type * as Sockopt from 'sockopt';

const SOL_SOCKET = 1;
/** include/uapi/asm-generic/socket.h (x86-64, arm64): #define SO_BINDTOIFINDEX 62 */
const SO_BINDTOIFINDEX = 62;

type SockoptBinding = typeof Sockopt;

// Loaded once with the module; a native build that does not load is kept as the reason, so one
// interface still runs without device binding (service.ts) instead of the module failing.
const binding: SockoptBinding | Error = await import('sockopt').then(
  (m) => m,
  (err: unknown) => (err instanceof Error ? err : new Error(String(err))),
);

function sockopt(): SockoptBinding {
  if (binding instanceof Error) throw Object.assign(new Error(`the sockopt native binding does not load: ${binding.message}`), { code: 'ENOTSUP' });
  return binding;
}

/**
 * The file descriptor of a bound dgram socket. `socket._handle` is deprecated (DEP0112, a
 * warning on first use), so the handle is read from the socket's state object instead.
 */
function fdOf(socket: Socket): number {
  for (const sym of Object.getOwnPropertySymbols(socket)) {
    const fd = (socket as unknown as Record<symbol, { handle?: { fd?: unknown } } | undefined>)[sym]?.handle?.fd;
    if (typeof fd === 'number' && fd >= 0) return fd;
  }
  throw Object.assign(new Error('the socket has no file descriptor (not bound yet?)'), { code: 'EBADF' });
}

/**
 * The kernel's index of an interface, or undefined when it does not exist. An address label
 * (`eth0:1`, as getifaddrs names aliased addresses) is its device's (`eth0`).
 */
export function interfaceIndex(name: string): number | undefined {
  const device = name.split(':')[0]!;
  if (!device || device.includes('/') || device === '.' || device === '..') return undefined;
  try {
    const n = Number(readFileSync(`/sys/class/net/${device}/ifindex`, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** errno number → its name (EPERM, ENOPROTOOPT, …) from the binding's "… (errno)" message. */
function errnoCode(message: string): string | undefined {
  const n = /\((\d+)\)\s*$/.exec(message)?.[1];
  if (n === undefined) return undefined;
  return Object.entries(constants.errno).find(([, v]) => v === Number(n))?.[0];
}

/**
 * Binds a bound dgram socket to interface `name`. Throws an Error with an errno-style `code`
 * (ENODEV: no such interface; EPERM: needs CAP_NET_RAW; ENOPROTOOPT: kernel older than 5.0;
 * ENOTSUP: the native binding is missing). Verified by reading the option back.
 */
export function bindToDevice(socket: Socket, name: string): number {
  const index = interfaceIndex(name);
  if (index === undefined) throw Object.assign(new Error(`interface ${name} does not exist`), { code: 'ENODEV' });
  const so = sockopt();
  const handle = { _handle: { fd: fdOf(socket) } };
  try {
    so.setsockopt(handle, SOL_SOCKET, SO_BINDTOIFINDEX, index);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw Object.assign(new Error(`cannot bind a socket to ${name}: ${message}`), { code: errnoCode(message) ?? 'EINVAL' });
  }
  const read = so.getsockopt(handle, SOL_SOCKET, SO_BINDTOIFINDEX);
  if (read !== index) throw Object.assign(new Error(`socket bound to interface index ${read}, not ${name} (${index})`), { code: 'EINVAL' });
  return index;
}
