// The image server as a suite service: one catalogue, one download recorder, an HTTP listener
// (images.port, 0 disables) and an HTTPS listener (images.tlsPort, 0 disables) with the suite's
// TLS certificate (ctx.pki.tls: lab or operator). On HTTPS a client certificate is requested
// (optional in the handshake) and verified against the device trust bundle; images that need
// one (images.requireClientCert, or per image) are refused with 403 without it.
import type { FastifyInstance } from 'fastify';
import { observeHttp } from '../observability.js';
import { listenQuietly } from '../http/listener.js';
import type { ListenInfo, Service, SuiteContext } from '../service.js';
import { buildImagesApp } from './app.js';
import { ImageCatalogue, imagesDirOf } from './catalogue.js';
import { DownloadRecorder, type RecorderOptions } from './recorder.js';

export interface ImagesServiceOptions {
  recorder?: RecorderOptions;
  /** share a catalogue with the admin API (default: a new one on ctx.db) */
  catalogue?: ImageCatalogue;
}

export function createImagesService(ctx: SuiteContext, options: ImagesServiceOptions = {}): Service & { catalogue: ImageCatalogue } {
  const cfg = ctx.config.images;
  const log = ctx.log.child({ service: 'images' });
  const catalogue = options.catalogue ?? new ImageCatalogue(ctx.db, imagesDirOf(ctx.config.dataDir), ctx.clock);
  const metrics = ctx.metrics;
  const recorder = new DownloadRecorder(ctx.store, log, { ...(metrics ? { observe: (f) => metrics.imageBytes.inc({ protocol: f.protocol ?? 'http', view: f.view }, f.bytes) } : {}), ...options.recorder });
  const apps: FastifyInstance[] = [];

  return {
    name: 'images',
    catalogue,
    async start(): Promise<ListenInfo[]> {
      catalogue.blobs.ensureDirs();
      const swept = catalogue.sweep();
      if (swept > 0) log.warn({ swept }, 'removed temp files left by interrupted image uploads');
      // Fix where blobs must really live now; a store whose sha256/ is a symlink serves nothing.
      await catalogue.blobs.readers.blobDirReal().catch((err: unknown) => log.error({ err }, 'image store: blob directory is not trusted; images will be refused'));
      const out: ListenInfo[] = [];
      const deps = { catalogue, store: ctx.store, recorder, log, config: ctx.config };
      try {
        if (cfg.port !== 0) {
          const app = await buildImagesApp({ ...deps, scheme: 'http' });
          observeHttp(app, 'images', ctx);
          apps.push(app);
          ctx.http?.harden(app, 'images-http');
          await listenQuietly(app, cfg.host, cfg.port);
          out.push(info(app, 'http', cfg.host, ctx.publicHost));
        }
        if (cfg.tlsPort !== 0) {
          const https = {
            ...ctx.http?.tlsOptions(),
            cert: ctx.pki.tls.certPem,
            key: ctx.pki.tls.keyPem,
            ca: ctx.pki.deviceTrustPem || undefined,
            requestCert: Boolean(ctx.pki.deviceTrustPem),
            rejectUnauthorized: false,
          };
          const app = await buildImagesApp({ ...deps, scheme: 'https', https });
          observeHttp(app, 'images', ctx);
          apps.push(app);
          ctx.http?.harden(app, 'images-https');
          await listenQuietly(app, cfg.host, cfg.tlsPort);
          out.push(info(app, 'https', cfg.host, ctx.publicHost));
        }
      } catch (err) {
        await this.stop();
        throw err;
      }
      return out;
    },
    async stop(): Promise<void> {
      const closing = apps.splice(0).map((a) => a.close());
      await Promise.allSettled(closing);
      recorder.stop();
      catalogue.blobs.readers.closeAll();
    },
  };
}

function info(app: FastifyInstance, protocol: 'http' | 'https', host: string, publicHost: string): ListenInfo {
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const address = typeof addr === 'object' && addr ? addr.address : host;
  return { service: 'images', protocol, address, port, url: `${protocol}://${publicHost || 'localhost'}:${port}/` };
}
