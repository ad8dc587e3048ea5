// Fixtures of the emulator tests: the project's real image server on loopback (HTTP and HTTPS
// with the lab PKI) holding one ISO-sized file for a registered device, and an inject() helper
// that speaks Redfish to one emulated BMC.
import { afterAll, afterEach, beforeAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { validateConfig } from '../../src/config.js';
import { openDatabase, type Db } from '../../src/db/database.js';
import { DeviceStore, systemClock } from '../../src/devices/store.js';
import { ImageCatalogue, imagesDirOf } from '../../src/images/catalogue.js';
import { createImagesService } from '../../src/images/service.js';
import { imageUrl } from '../../src/images/urls.js';
import { silentLogger } from '../../src/log.js';
import { ensureLabPki } from '../../src/pki/lab.js';
import type { BmcEmulator } from '../../src/redfish/emulator/index.js';
import { freePort, retryOnAddressInUse } from '../helpers/ports.js';

export const DEVICE = { serial: 'SN-EMU-1', mac: '02:00:00:00:e1:01' };
export const ISO_NAME = 'dpu-installer.iso';
/** 1 MiB + a bit: several 64 KiB range reads, with a recognisable pattern */
export const ISO = Buffer.alloc(1024 * 1024 + 4321, 0).map((_, i) => (i * 31 + (i >> 9)) & 0xff);

export interface ImageServer {
  db: Db;
  store: DeviceStore;
  http: string;
  https: string;
  caPem: string;
  /** the device's per-device image URL (history-attributed), over HTTP or HTTPS */
  deviceImageUrl(tls?: boolean): string;
  stop(): Promise<void>;
}

export function startImageServer(): Promise<ImageServer> {
  // The ports go into the image URLs, so they are chosen before the server listens.
  return retryOnAddressInUse(startImageServerOnce);
}

async function startImageServerOnce(): Promise<ImageServer> {
  const dir = mkdtempSync(join(tmpdir(), 'ztp-bmc-emu-'));
  const db = openDatabase({ file: join(dir, 'ztp.db') });
  const store = new DeviceStore(db);
  const port = await freePort();
  const tlsPort = await freePort();
  const config = validateConfig({ dataDir: dir, publicHost: '127.0.0.1', images: { host: '127.0.0.1', port, tlsPort } });
  const { pki } = await ensureLabPki(dir, config.pki, '127.0.0.1');
  const catalogue = new ImageCatalogue(db, imagesDirOf(dir));
  catalogue.blobs.ensureDirs();
  const entry = await catalogue.add(Readable.from([ISO]), { name: ISO_NAME });
  store.upsert({ serial: DEVICE.serial, macs: [DEVICE.mac] });
  const service = createImagesService({ config, log: silentLogger, db, store, pki, clock: systemClock, publicHost: '127.0.0.1' }, { catalogue, recorder: { idleMs: 50 } });
  await service.start();
  return {
    db,
    store,
    http: `http://127.0.0.1:${port}`,
    https: `https://127.0.0.1:${tlsPort}`,
    caPem: pki.rootCaPem,
    deviceImageUrl: (tls = false) => imageUrl(config, '127.0.0.1', { name: entry.entry.name, sha256: entry.entry.sha256 }, tls ? 'bmc' : 'device', DEVICE.mac),
    async stop() {
      await service.stop();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface RfResponse {
  status: number;
  headers: Record<string, string | string[] | number | undefined>;
  body: Record<string, unknown> | undefined;
}

/** A tiny Redfish conversation with one BMC of an emulator, through inject(). */
export class Rf {
  token: string | undefined;
  constructor(
    readonly emu: BmcEmulator,
    readonly bmcId = emu.bmcs[0]!.id,
  ) {}

  get prefix(): string {
    return this.emu.prefixOf(this.bmcId);
  }

  /** path relative to the BMC (/redfish/v1/...) or already prefixed */
  async req(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<RfResponse> {
    const url = path.startsWith('/bmc/') ? path : this.prefix + path;
    const h: Record<string, string> = { ...headers };
    if (this.token && !('authorization' in h)) h['x-auth-token'] = this.token;
    const res = await this.emu.app.inject({
      method: method as 'GET',
      url,
      headers: body === undefined ? h : { 'content-type': 'application/json', ...h },
      ...(body === undefined ? {} : { payload: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    let parsed: Record<string, unknown> | undefined;
    try {
      parsed = res.body ? (JSON.parse(res.body) as Record<string, unknown>) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: res.statusCode, headers: res.headers, body: parsed };
  }

  async login(username?: string, password?: string): Promise<RfResponse> {
    const bmc = this.emu.bmc(this.bmcId)!;
    const res = await this.req('POST', '/redfish/v1/SessionService/Sessions', { UserName: username ?? bmc.account.username, Password: password ?? bmc.account.password });
    if (res.status === 201) this.token = String(res.headers['x-auth-token']);
    return res;
  }

  get(path: string, headers?: Record<string, string>) {
    return this.req('GET', path, undefined, headers);
  }
}

/** The first MessageId of a Redfish error body. */
export function messageId(body: Record<string, unknown> | undefined): string | undefined {
  const info = ((body?.error as Record<string, unknown> | undefined)?.['@Message.ExtendedInfo'] as { MessageId: string }[] | undefined) ?? (body?.['@Message.ExtendedInfo'] as { MessageId: string }[] | undefined);
  return info?.[0]?.MessageId;
}

export async function until(fn: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * The shared preamble of the emulator test files: one image server for the file, and the test's
 * emulator (assign `t.emu`) closed after each test.
 */
export function emulatorTestFixture(): { readonly images: ImageServer; emu: BmcEmulator | undefined } {
  let images: ImageServer | undefined;
  const t = {
    get images(): ImageServer {
      if (!images) throw new Error('image server not started (use inside a test)');
      return images;
    },
    emu: undefined as BmcEmulator | undefined,
  };
  beforeAll(async () => {
    images = await startImageServer();
  });
  afterAll(async () => {
    await images?.stop();
  });
  afterEach(async () => {
    await t.emu?.close();
    t.emu = undefined;
  });
  return t;
}
