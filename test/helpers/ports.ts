// Ports for tests that run beside other test workers (and other people's servers) on one host.
//
// Best: listen on port 0 and read the port back from the server (ListenInfo, server.address()).
// Only where a port must be known before the server starts (it goes into URLs the suite hands
// out, or the same port must survive a restart) use freePort(), and start the server through
// retryOnAddressInUse(): freePort() has to close its probe socket before the server binds, so
// another process can take the port in between.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** The kernel's ephemeral range: port-0 binds and outgoing connections take ports from it. */
function ephemeralRange(): [number, number] {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (low && high && low < high) return [low, high];
  } catch {
    // not Linux: the IANA dynamic range
  }
  return [49152, 65535];
}

const [EPHEMERAL_LOW] = ephemeralRange();
/** Below the ephemeral range, so no port-0 bind or outgoing connection can take it from us. */
const PICK_LOW = Math.min(20_000, EPHEMERAL_LOW - 2_000);
const PICK_HIGH = EPHEMERAL_LOW - 1;

function probe(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * A TCP port free on 127.0.0.1 right now, chosen at random below the kernel's ephemeral range:
 * the kernel never hands it to anyone else's port-0 bind or outgoing connection, so only another
 * freePort() caller picking the same one of ~10,000 ports could race us (retryOnAddressInUse).
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = PICK_LOW + Math.floor(Math.random() * (PICK_HIGH - PICK_LOW + 1));
    if (await probe(port)) return port;
  }
  throw new Error(`no free port found in ${PICK_LOW}-${PICK_HIGH} after 50 tries`);
}

/** EADDRINUSE anywhere in an error's cause chain (fastify and our services wrap it). */
export function isAddressInUse(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const { code, message } = e as { code?: unknown; message?: unknown };
    if (code === 'EADDRINUSE' || (typeof message === 'string' && message.includes('EADDRINUSE'))) return true;
  }
  return false;
}

/** Runs `start` (which picks its ports with freePort()) again when a port was taken meanwhile. */
export async function retryOnAddressInUse<T>(start: () => Promise<T>, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (err) {
      if (attempt >= attempts || !isAddressInUse(err)) throw err;
      console.warn(`port taken between freePort() and listen (attempt ${attempt}/${attempts}); retrying with new ports`);
    }
  }
}
