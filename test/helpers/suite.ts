// The whole suite as `ztp serve` composes it (`startSuite`), on loopback ports the kernel picks,
// with a fresh data directory, silent logs, admin token `test-token` and optionally one image
// already in the catalogue: the preamble of the end-to-end tests.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateConfig } from '../../src/config.js';
import { ImageCatalogue, imagesDirOf } from '../../src/images/catalogue.js';
import { silentLogger } from '../../src/log.js';
import { startSuite, type Suite } from '../../src/suite.js';
import { freePort, retryOnAddressInUse } from './ports.js';

export const TEST_TOKEN = 'test-token';

export interface TestSuite {
  suite: Suite;
  dataDir: string;
  /** https://localhost:<port> of the bootstrap server. */
  bootstrapBase: string;
  /** http://127.0.0.1:<port> of the admin API. */
  apiBase: string;
  imagesPort: number;
  imagesTlsPort: number;
}

export interface TestSuiteOptions {
  /** Adds a random image of this many bytes to the catalogue as `name`. */
  image?: { name: string; bytes: number; osName?: string; osVersion?: string };
  /** Extra top-level configuration sections, merged over the loopback defaults. */
  config?: Record<string, unknown>;
  /** The environment the suite reads OTEL_* from (default: the test process's). */
  env?: NodeJS.ProcessEnv;
}

export function startTestSuite(scratchPrefix: string, opts: TestSuiteOptions = {}): Promise<TestSuite> {
  // The ports go into the URLs the suite hands out, so they are chosen before it listens.
  return retryOnAddressInUse(() => startOnce(scratchPrefix, opts));
}

async function startOnce(scratchPrefix: string, opts: TestSuiteOptions): Promise<TestSuite> {
  const dataDir = mkdtempSync(join(tmpdir(), scratchPrefix));
  const [bootstrapPort, apiPort, imagesPort, imagesTlsPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const extra = opts.config ?? {};
  const section = (name: string, base: Record<string, unknown>): Record<string, unknown> => ({ ...base, ...((extra[name] as Record<string, unknown> | undefined) ?? {}) });
  const config = validateConfig({
    ...extra,
    dataDir,
    publicHost: 'localhost',
    logLevel: 'silent',
    bootstrap: section('bootstrap', { host: '127.0.0.1', port: bootstrapPort }),
    api: section('api', { host: '127.0.0.1', port: apiPort, token: TEST_TOKEN }),
    images: section('images', { host: '127.0.0.1', port: imagesPort, tlsPort: imagesTlsPort }),
  });
  const suite = await startSuite(config, silentLogger, opts.env ? { env: opts.env } : {});
  if (opts.image) {
    const file = join(dataDir, opts.image.name);
    writeFileSync(file, randomBytes(opts.image.bytes));
    await new ImageCatalogue(suite.ctx.db, imagesDirOf(dataDir)).addFile(file, { name: opts.image.name, osName: opts.image.osName ?? 'DPU-OS', osVersion: opts.image.osVersion ?? '1.2' });
  }
  return { suite, dataDir, bootstrapBase: `https://localhost:${bootstrapPort}`, apiBase: `http://127.0.0.1:${apiPort}`, imagesPort, imagesTlsPort };
}
