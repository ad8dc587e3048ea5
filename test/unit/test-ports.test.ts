// The test helpers that pick ports: freePort() stays out of the kernel's ephemeral range (where
// port-0 binds and outgoing connections of other workers land), and a start that lost its port
// to someone else is retried with new ports, other errors are not.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { describe, expect, it } from 'vitest';
import { freePort, isAddressInUse, retryOnAddressInUse } from '../helpers/ports.js';

function listen(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen({ port, host: '127.0.0.1', exclusive: true }, () => resolve(s));
  });
}

describe('test port helpers', () => {
  it('freePort: a bindable port below the ephemeral range', async () => {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    const port = await freePort();
    expect(port).toBeLessThan(low!);
    const s = await listen(port);
    await new Promise((r) => s.close(r));
  });

  it('retryOnAddressInUse: a start that hit EADDRINUSE runs again with a new port; other errors go through', async () => {
    const taken = await listen(0);
    const takenPort = (taken.address() as { port: number }).port;
    const tried: number[] = [];
    try {
      const server = await retryOnAddressInUse(async () => {
        const port = tried.length === 0 ? takenPort : await freePort();
        tried.push(port);
        return listen(port);
      });
      expect(tried).toHaveLength(2);
      expect(tried[0]).toBe(takenPort);
      await new Promise((r) => server.close(r));
    } finally {
      await new Promise((r) => taken.close(r));
    }
    let calls = 0;
    await expect(retryOnAddressInUse(() => Promise.reject(new Error(`boom ${++calls}`)))).rejects.toThrow('boom 1');
    expect(isAddressInUse(new Error('wrapped', { cause: Object.assign(new Error('listen EADDRINUSE: address already in use'), { code: 'EADDRINUSE' }) }))).toBe(true);
  });
});
