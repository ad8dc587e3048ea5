// `ztp image add|list|show|rm` through main(): idempotence, exit codes, --json, URL sources.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { EXIT } from '../../src/cli/common.js';
import { openDatabase } from '../../src/db/database.js';
import { DeviceStore } from '../../src/devices/store.js';
import { pattern, sha256 } from './helpers.js';

let dir: string;
let server: Server;
let base: string;
const DATA = pattern(70_000);

async function ztp(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(['--data-dir', dir, ...args], { out: (t) => void (out += t + '\n'), err: (t) => void (err += t + '\n') });
  return { code, out, err };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ztp-cli-images-'));
  writeFileSync(join(dir, 'os.iso'), DATA);
  server = createServer((req, res) => {
    if (req.url === '/dl/remote.img') res.end(DATA);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('ztp image', () => {
  it('add FILE is idempotent; --json output carries URLs', async () => {
    const a = await ztp('--json', 'image', 'add', join(dir, 'os.iso'), '--os-name', 'linux', '--os-version', '6.1');
    expect(a.code, a.err).toBe(EXIT.OK);
    const j = JSON.parse(a.out);
    expect(j).toMatchObject({ outcome: 'created', image: { name: 'os.iso', sha256: sha256(DATA), size: DATA.length, osName: 'linux' } });
    expect(j.image.urls.bmc).toMatch(/^https:\/\/.+:8444\/images\/os\.iso$/);
    const again = await ztp('image', 'add', join(dir, 'os.iso'));
    expect(again.code).toBe(EXIT.OK);
    expect(again.out).toMatch(/^unchanged: os\.iso/);
  });

  it('add URL, with --name and a matching --sha256; a wrong digest exits INVALID', async () => {
    const r = await ztp('image', 'add', `${base}/dl/remote.img`, '--name', 'remote.img', '--sha256', sha256(DATA));
    expect(r.code, r.err).toBe(EXIT.OK);
    const bad = await ztp('image', 'add', `${base}/dl/remote.img`, '--name', 'other.img', '--sha256', '0'.repeat(64));
    expect(bad.code).toBe(EXIT.INVALID);
    expect(bad.err).toMatch(/does not match|hashes to/);
    const missing = await ztp('image', 'add', `${base}/nope`);
    expect(missing.code).toBe(EXIT.UNAVAILABLE);
    expect((await ztp('image', 'add', join(dir, 'absent.iso'))).code).toBe(EXIT.INVALID);
  });

  it('list and show', async () => {
    const l = await ztp('image', 'list');
    expect(l.out).toMatch(/NAME\s+SHA256/);
    expect(l.out).toContain('remote.img');
    const s = await ztp('--json', 'image', 'show', 'os.iso');
    expect(JSON.parse(s.out).image).toMatchObject({ name: 'os.iso', referencedBy: [] });
    expect((await ztp('image', 'show', 'nope')).code).toBe(EXIT.NOT_FOUND);
  });

  it('rm refuses a referenced image (CONFLICT) unless --force; rm twice is fine', async () => {
    const db = openDatabase({ file: join(dir, 'ztp.db') });
    new DeviceStore(db).upsert({ serial: 'SN1', bootImage: 'os.iso' });
    db.close();
    const refused = await ztp('image', 'rm', 'os.iso');
    expect(refused.code).toBe(EXIT.CONFLICT);
    expect(refused.err).toContain('SN1');
    expect((await ztp('image', 'rm', 'os.iso', '--force')).code).toBe(EXIT.OK);
    const twice = await ztp('image', 'rm', 'os.iso');
    expect(twice.code).toBe(EXIT.OK);
    expect(twice.out).toContain('absent');
  });
});
