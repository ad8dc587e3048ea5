// The TFTP server as a suite service (config section `tftp`, off by default). PXE firmware only
// talks to port 69, which needs root or CAP_NET_BIND_SERVICE: without it the service logs why
// and stays off rather than stopping the suite, like the DHCP responder.
import type { ImageCatalogue } from '../images/catalogue.js';
import { DownloadRecorder } from '../images/recorder.js';
import { errorMessage } from '../errors.js';
import type { ListenInfo, Service, SuiteContext } from '../service.js';
import { TftpServer } from './server.js';

export type TftpService = Service & { stats(): Record<string, number> };

export function createTftpService(ctx: Pick<SuiteContext, 'config' | 'log' | 'store' | 'metrics'>, deps: { catalogue: ImageCatalogue }): TftpService {
  const cfg = ctx.config.tftp;
  const log = ctx.log.child({ service: 'tftp' });
  let server: TftpServer | undefined;
  let recorder: DownloadRecorder | undefined;
  return {
    name: 'tftp',
    stats: () => server?.stats() ?? {},
    async start(): Promise<ListenInfo[]> {
      if (!cfg.enabled) return [];
      const metrics = ctx.metrics;
      recorder = new DownloadRecorder(ctx.store, log, metrics ? { observe: (f) => metrics.imageBytes.inc({ protocol: 'tftp', view: f.view }, f.bytes) } : {});
      const s = new TftpServer({ settings: cfg, catalogue: deps.catalogue, store: ctx.store, recorder, log, requireClientCert: ctx.config.images.requireClientCert });
      try {
        const bound = await s.listen();
        server = s;
        log.info({ address: bound.address, port: bound.port, maxTransfers: cfg.maxTransfers, maxBlksize: cfg.maxBlksize }, 'TFTP server listening (read-only, catalogue images)');
        if (bound.port !== 69) log.warn({ port: bound.port }, 'TFTP is not on port 69: PXE firmware will not find it (fine for tests or a port redirect)');
        return [{ service: 'tftp', protocol: 'udp4', address: bound.address, port: bound.port }];
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EACCES') {
          log.error({ port: cfg.port }, `TFTP server disabled: port ${cfg.port} needs root or CAP_NET_BIND_SERVICE (set ZTP_TFTP_PORT ≥ 1024 for tests)`);
          return [];
        }
        throw new Error(`TFTP server cannot listen on ${cfg.host}:${cfg.port}: ${errorMessage(err)}`, { cause: err });
      }
    },
    async stop(): Promise<void> {
      await server?.close();
      server = undefined;
      recorder?.stop();
    },
  };
}
