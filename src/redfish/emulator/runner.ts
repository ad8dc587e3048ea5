// The only place the emulator binds ports. Two addressings (see app.ts):
//   - one listener, BMCs under /bmc/<id>/redfish/v1 (default; scales to thousands of BMCs);
//   - `basePort`: also one listener per BMC at basePort+i with /redfish/v1 at its root, for
//     clients that cannot take a path prefix (sushy, Ironic). basePort 0 lets the kernel pick.
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { isIP } from 'node:net';
import { buildBmcEmulatorApp, type BmcEmulator, type BmcEmulatorOptions } from './app.js';

export interface RunBmcEmulatorOptions extends BmcEmulatorOptions {
  /** listen address (default 127.0.0.1) */
  host?: string;
  /** the shared listener's port (default 0: any free port) */
  port?: number;
  /** one listener per BMC from this port up (0: kernel-picked ports) */
  basePort?: number;
  /** the host name printed in URLs (default: host, or 127.0.0.1 for a wildcard address) */
  publicHost?: string;
}

export interface BmcEndpointInfo {
  id: string;
  /** the base URL a client is given: the service root is <url>/redfish/v1 */
  url: string;
  /** per-port URL (basePort mode), else null */
  rootUrl: string | null;
  username: string;
  password: string;
  quirks: string;
  serial: string;
  macs: string[];
  systemId: string;
}

export interface RunningBmcEmulator {
  emulator: BmcEmulator;
  /** base URL of the shared listener */
  url: string;
  endpoints: BmcEndpointInfo[];
  close(): Promise<void>;
}

function hostForUrl(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

export async function startBmcEmulator(opts: RunBmcEmulatorOptions = {}): Promise<RunningBmcEmulator> {
  const emulator = buildBmcEmulatorApp(opts);
  const host = opts.host ?? '127.0.0.1';
  const shown = hostForUrl(opts.publicHost ?? (host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host));
  const scheme = opts.https ? 'https' : 'http';
  const servers: Server[] = [];
  try {
    await emulator.app.listen({ host, port: opts.port ?? 0 });
    const address = emulator.app.server.address();
    const port = typeof address === 'object' && address ? address.port : opts.port;
    const url = `${scheme}://${shown}:${port}`;
    const rootUrls: (string | null)[] = [];
    if (opts.basePort !== undefined) {
      for (const [i, bmc] of emulator.bmcs.entries()) {
        const handler = (req: Parameters<BmcEmulator['routeAtRoot']>[1], res: Parameters<BmcEmulator['routeAtRoot']>[2]) => emulator.routeAtRoot(bmc.id, req, res);
        const server = opts.https ? createHttpsServer({ cert: opts.https.cert, key: opts.https.key }, handler) : createHttpServer(handler);
        server.keepAliveTimeout = 5_000;
        servers.push(server);
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(opts.basePort === 0 ? 0 : opts.basePort! + i, host, () => {
            server.off('error', reject);
            resolve();
          });
        });
        const a = server.address();
        rootUrls.push(`${scheme}://${shown}:${typeof a === 'object' && a ? a.port : 0}`);
      }
    }
    const endpoints = emulator.bmcs.map((bmc, i) => ({
      id: bmc.id,
      url: `${url}${emulator.prefixOf(bmc.id)}`,
      rootUrl: rootUrls[i] ?? null,
      username: bmc.account.username,
      password: bmc.account.password,
      quirks: bmc.template.mode,
      serial: bmc.identity.serial,
      macs: bmc.identity.macs,
      systemId: bmc.dpuSystemId,
    }));
    return {
      emulator,
      url,
      endpoints,
      async close() {
        await Promise.all(
          servers.map(
            (s) =>
              new Promise<void>((resolve) => {
                s.close(() => resolve());
                s.closeAllConnections();
              }),
          ),
        );
        await emulator.close();
      },
    };
  } catch (err) {
    for (const s of servers) s.close();
    await emulator.close();
    throw err;
  }
}
