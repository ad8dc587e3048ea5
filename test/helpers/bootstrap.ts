// A bootstrap app on a temp database and generated lab PKI, for inject() tests.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { buildBootstrapApp } from '../../src/bootstrap/app.js';
import { DeviceAuthenticator, type Credentials } from '../../src/bootstrap/auth.js';
import { imageResolver, type CatalogueLookup } from '../../src/bootstrap/images.js';
import { BootstrapResponder } from '../../src/bootstrap/responder.js';
import { validateConfig, type Config } from '../../src/config.js';
import { openDatabase, type Db } from '../../src/db/database.js';
import { DeviceStore } from '../../src/devices/store.js';
import { silentLogger } from '../../src/log.js';
import { ensureLabPki } from '../../src/pki/lab.js';
import type { SuitePki } from '../../src/pki/material.js';

export interface BootstrapFixture {
  app: FastifyInstance;
  store: DeviceStore;
  db: Db;
  pki: SuitePki;
  dir: string;
  responder: BootstrapResponder;
}

let sharedPki: { dir: string; pki: SuitePki } | undefined;

/** Lab PKI generated once per test file. */
export async function labPki(): Promise<{ dir: string; pki: SuitePki }> {
  if (!sharedPki) {
    const dir = mkdtempSync(join(tmpdir(), 'ztp-test-'));
    sharedPki = { dir, pki: (await ensureLabPki(dir, validateConfig({}).pki, 'localhost')).pki };
  }
  return sharedPki;
}

export async function bootstrapFixture(options: { config?: Partial<Config['bootstrap']>; lookup?: CatalogueLookup; credentialsOf?: (req: FastifyRequest) => Credentials; now?: () => number } = {}): Promise<BootstrapFixture> {
  const { dir, pki } = await labPki();
  const db = openDatabase({ file: ':memory:' });
  const store = new DeviceStore(db);
  const cfg = { ...validateConfig({}).bootstrap, ...options.config };
  const responder = new BootstrapResponder({ pki, images: imageResolver(options.lookup), encrypt: cfg.encrypt });
  const app = buildBootstrapApp({
    store,
    responder,
    authenticator: new DeviceAuthenticator(store, { mode: cfg.auth, serialFrom: cfg.serialFrom, passwordChecks: cfg.passwordChecks, passwordQueue: cfg.passwordQueue, passwordChecksPerSource: cfg.passwordChecksPerSource }),
    log: silentLogger,
    maxBodyBytes: cfg.maxBodyBytes,
    failures: { windowMs: cfg.failureWindow * 1000, limit: cfg.failureLimit, sourceLimit: cfg.sourceFailureLimit },
    ...(options.now ? { now: options.now } : {}),
    ...(options.credentialsOf ? { credentialsOf: options.credentialsOf } : {}),
  });
  return { app, store, db, pki, dir, responder };
}

export function basic(serial: string, password: string): string {
  return 'Basic ' + Buffer.from(`${serial}:${password}`).toString('base64');
}

export const GBD = '/restconf/operations/ietf-sztp-bootstrap-server:get-bootstrapping-data';
export const PROGRESS = '/restconf/operations/ietf-sztp-bootstrap-server:report-progress';
export const JSON_TYPE = 'application/yang-data+json';
export const XML_TYPE = 'application/yang-data+xml';
