// The bootstrap server as a suite service: HTTPS with optional client certificates validated
// against the device trust bundle (the TLS layer checks chain and dates; auth.ts reads the result).
import type { FastifyInstance } from 'fastify';
import type { ListenInfo, Service, SuiteContext } from '../service.js';
import { buildBootstrapApp } from './app.js';
import { DeviceAuthenticator } from './auth.js';
import { BootstrapResponder, type ImageResolver } from './responder.js';

export interface BootstrapServiceDeps {
  images: ImageResolver;
}

export function createBootstrapService(ctx: SuiteContext, deps: BootstrapServiceDeps): Service & { app: FastifyInstance; responder: BootstrapResponder } {
  const cfg = ctx.config.bootstrap;
  const responder = new BootstrapResponder({ pki: ctx.pki, images: deps.images, encrypt: cfg.encrypt });
  const authenticator = new DeviceAuthenticator(ctx.store, { mode: cfg.auth, serialFrom: cfg.serialFrom, ...(cfg.serialRegex ? { serialRegex: cfg.serialRegex } : {}), passwordChecks: cfg.passwordChecks, passwordQueue: cfg.passwordQueue, passwordChecksPerSource: cfg.passwordChecksPerSource });
  const log = ctx.log.child({ service: 'bootstrap' });
  const app = buildBootstrapApp({
    store: ctx.store,
    responder,
    authenticator,
    log,
    maxBodyBytes: cfg.maxBodyBytes,
    metrics: ctx.metrics,
    telemetry: ctx.telemetry,
    failures: { windowMs: cfg.failureWindow * 1000, limit: cfg.failureLimit, sourceLimit: cfg.sourceFailureLimit },
    https: {
      ...ctx.http?.tlsOptions(),
      cert: ctx.pki.tls.certPem,
      key: ctx.pki.tls.keyPem,
      // Ask for the IDevID; verify it against the device trust bundle, but let auth.ts decide
      // (HTTP Basic-only devices present no certificate).
      requestCert: cfg.auth !== 'basic',
      rejectUnauthorized: false,
      ca: ctx.pki.deviceTrustPem,
      minVersion: 'TLSv1.2',
    },
  });
  return {
    name: 'bootstrap',
    app,
    responder,
    async start(): Promise<ListenInfo[]> {
      ctx.http?.harden(app, 'bootstrap');
      await app.listen({ host: cfg.host, port: cfg.port });
      const address = app.server.address();
      const port = typeof address === 'object' && address ? address.port : cfg.port;
      const url = `https://${ctx.publicHost}:${port}/restconf/operations/ietf-sztp-bootstrap-server:get-bootstrapping-data`;
      return [{ service: 'bootstrap', protocol: 'https', address: cfg.host, port, url }];
    },
    async stop(): Promise<void> {
      await app.close();
    },
  };
}
