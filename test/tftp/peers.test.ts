// The TFTP server against real clients on loopback: tftp-hpa (RFC 1350 only: the 5.2 client
// sends no options), curl (sends tsize, blksize and timeout, and prints the OACK it parsed) and
// busybox tftp (-b blksize with tsize). Plus a raw socket for what no client does on demand:
// stop ACKing (retransmission on the negotiated timeout), a stray transfer ID, a full server.
import { execFile } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DownloadRecorder } from '../../src/images/recorder.js';
import { silentLogger } from '../../src/log.js';
import { decodeTftp, encodeTftp, type TftpPacket } from '../../src/tftp/codec.js';
import { TftpServer } from '../../src/tftp/server.js';
import { missingTool } from '../helpers/shared.js';
import { addBuffer, makeEnv, pattern, sha256, type ImagesEnv } from '../images/helpers.js';

const run = promisify(execFile);
const skipHpa = missingTool('tftp');
const skipCurl = missingTool('curl');
const skipBusybox = missingTool('busybox');

const SETTINGS = { host: '127.0.0.1', port: 0, maxTransfers: 8, maxBlksize: 65464, timeout: 1, retries: 3 };
const MAC = '52:54:00:aa:bb:01';

let env: ImagesEnv;
let server: TftpServer;
let port: number;
let recorder: DownloadRecorder;
const content = pattern(300_000, 3);

async function startServer(settings: Partial<typeof SETTINGS> = {}) {
  recorder = new DownloadRecorder(env.store, silentLogger);
  server = new TftpServer({ settings: { ...SETTINGS, ...settings }, catalogue: env.catalogue, store: env.store, recorder, log: silentLogger });
  port = (await server.listen()).port;
}

beforeEach(async () => {
  env = makeEnv();
  await addBuffer(env, 'boot.efi', content);
  await addBuffer(env, 'secret.iso', pattern(100), { requireClientCert: true });
  env.store.upsert({ serial: 'SN-TFTP-1', macs: [MAC], bootImage: 'boot.efi' });
  await startServer();
});
afterEach(async () => {
  await server.close();
  recorder.stop();
  env.cleanup();
});

/** tftp-hpa: `tftp -l -m binary 127.0.0.1 PORT -c get REMOTE LOCAL` (-l: a ':' in a MAC is not host:file); errors on stdout. */
async function hpaGet(remote: string, local: string, mode = 'binary'): Promise<string> {
  const { stdout, stderr } = await run('tftp', ['-l', '-m', mode, '127.0.0.1', String(port), '-c', 'get', remote, local], { timeout: 20_000 });
  return stdout + stderr;
}

const downloads = (serial: string) => env.store.history(serial).filter((e) => e.source === 'images' && e.type === 'download');

describe.skipIf(skipHpa)('tftp-hpa client', () => {
  it('downloads a catalogue image by name, byte for byte (512-byte blocks, no options)', async () => {
    const out = join(env.dir, 'got.efi');
    expect(await hpaGet('boot.efi', out)).toBe('');
    expect(sha256(readFileSync(out))).toBe(sha256(content));
    // the client exits on the last DATA; its final ACK reaches the server a moment later
    await expect.poll(() => server.stats().completed).toBe(1);
  });

  it('the per-device path is recorded in the device history like an HTTP download, with protocol tftp', async () => {
    const out = join(env.dir, 'dev.efi');
    expect(await hpaGet(`by-mac/${MAC}/boot.efi`, out)).toBe('');
    expect(readFileSync(out).equals(content)).toBe(true);
    await expect.poll(() => downloads('SN-TFTP-1').length).toBe(1);
    expect(downloads('SN-TFTP-1')[0]!.data).toMatchObject({ image: 'boot.efi', sha256: sha256(content), bytes: content.length, completed: true, protocol: 'tftp', mac: MAC, view: 'device', client: '127.0.0.1' });
    expect(env.store.get('SN-TFTP-1')?.state).toBe('image-fetched');
  });

  it('a missing file is TFTP error 1', async () => {
    expect(await hpaGet('nope.efi', join(env.dir, 'x'))).toMatch(/Error code 1: file not found/i);
  });

  it.each(['../../etc/passwd', '/images/../../etc/passwd', 'pxelinux\\..\\boot.efi', '.ztp.db'])('traversal %s is refused with error 2 and nothing is read', async (name) => {
    expect(await hpaGet(name, join(env.dir, 'x'))).toMatch(/Error code 2: path is not allowed/);
    expect(server.stats()).toMatchObject({ 'refused-TFTP_ACCESS_VIOLATION': 1 });
  });

  it('netascii is refused (it would rewrite a binary image); put (WRQ) is refused: read-only', async () => {
    expect(await hpaGet('boot.efi', join(env.dir, 'x'), 'netascii')).toMatch(/Error code 4: netascii mode is not supported/);
    const { stdout } = await run('tftp', ['-m', 'binary', '127.0.0.1', String(port), '-c', 'put', join(env.dir, 'ztp.db'), 'up.bin'], { timeout: 20_000 });
    expect(stdout).toMatch(/Error code 2: this server is read-only/);
  });

  it('issue 11: with the store\'s sha256/ directory swapped for a symlink, the decoy it points to is never served', async () => {
    const blobDir = env.catalogue.blobs.blobDir;
    const decoy = join(env.dir, 'decoy');
    mkdirSync(decoy);
    // Same names and sizes as the real blobs, other bytes (what an attacker wants served: a token,
    // a key), so only the store's path and digest checks can tell.
    for (const name of readdirSync(blobDir)) writeFileSync(join(decoy, name), Buffer.alloc(statSync(join(blobDir, name)).size, 'admin-token-decoy '));
    renameSync(blobDir, join(env.dir, 'moved-sha256'));
    symlinkSync(decoy, blobDir);
    const out = join(env.dir, 'leak.efi');
    expect(await hpaGet('boot.efi', out)).toMatch(/Error code 0: image content is damaged/);
    expect(existsSync(out) ? readFileSync(out, 'utf8') : '').not.toContain('admin-token-decoy');
    expect(server.stats()).toMatchObject({ 'refused-TFTP_NOT_FOUND': 1 });
  });

  it('an image that needs a device certificate is not served over TFTP', async () => {
    expect(await hpaGet('secret.iso', join(env.dir, 'x'))).toMatch(/Error code 2: this image needs HTTPS/);
  });
});

describe.skipIf(skipCurl)('curl (tsize, blksize, timeout options)', () => {
  it('negotiates blksize, tsize and timeout in an OACK curl parses, and gets the file', async () => {
    const out = join(env.dir, 'curl.efi');
    const { stderr } = await run('curl', ['-sS', '-v', '--tftp-blksize', '1400', '--connect-timeout', '10', '-o', out, `tftp://127.0.0.1:${port}/boot.efi`], { timeout: 30_000 });
    expect(readFileSync(out).equals(content)).toBe(true);
    // curl's own OACK parser reports each option it got back (lib/tftp.c tftp_parse_option_ack).
    expect(stderr).toMatch(/got option=\(blksize\) value=\(1400\)/);
    expect(stderr).toMatch(new RegExp(`got option=\\(tsize\\) value=\\(${content.length}\\)`));
    expect(stderr).toMatch(/got option=\(timeout\) value=\(\d+\)/);
  });

  it('a blksize above our limit is lowered in the OACK and curl follows it', async () => {
    await server.close();
    await startServer({ maxBlksize: 1024 });
    const out = join(env.dir, 'curl2.efi');
    const { stderr } = await run('curl', ['-sS', '-v', '--tftp-blksize', '8192', '-o', out, `tftp://127.0.0.1:${port}/boot.efi`], { timeout: 30_000 });
    expect(stderr).toMatch(/got option=\(blksize\) value=\(1024\)/);
    expect(readFileSync(out).equals(content)).toBe(true);
  });
});

describe.skipIf(skipBusybox)('busybox tftp', () => {
  it('gets the file with -b 1468 (blksize + tsize)', async () => {
    const out = join(env.dir, 'bb.efi');
    await run('busybox', ['tftp', '-g', '-b', '1468', '-r', 'boot.efi', '-l', out, '127.0.0.1', String(port)], { timeout: 30_000 });
    expect(readFileSync(out).equals(content)).toBe(true);
  });
});

/** A raw client socket collecting what the server sends. */
async function rawClient(): Promise<{ sock: Socket; got: { p: TftpPacket; port: number }[]; next: (n?: number) => Promise<{ p: TftpPacket; port: number }> }> {
  const sock = createSocket('udp4');
  const got: { p: TftpPacket; port: number }[] = [];
  sock.on('message', (m, r) => got.push({ p: decodeTftp(m), port: r.port }));
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const next = async (n = got.length + 1) => {
    const end = Date.now() + 10_000;
    while (got.length < n) {
      if (Date.now() > end) throw new Error(`no packet ${n} from the server (got ${JSON.stringify(got)})`);
      await new Promise((r) => setTimeout(r, 20));
    }
    return got[n - 1]!;
  };
  return { sock, got, next };
}

describe('raw socket: timeout, transfer IDs, limits', () => {
  it('retransmits on the negotiated timeout when ACKs stop, then gives up and records an incomplete download', async () => {
    const c = await rawClient();
    try {
      c.sock.send(encodeTftp({ op: 'RRQ', filename: `by-mac/${MAC}/boot.efi`, mode: 'octet', options: [{ name: 'timeout', value: '1' }, { name: 'blksize', value: '1024' }] }), port, '127.0.0.1');
      const oack = await c.next(1);
      expect(oack.p).toEqual({ op: 'OACK', options: [{ name: 'timeout', value: '1' }, { name: 'blksize', value: '1024' }] });
      expect(oack.port).not.toBe(port); // RFC 1350 §4: a new transfer ID
      expect((await c.next(2)).p).toEqual(oack.p); // no ACK 0: the OACK again after the timeout
      c.sock.send(encodeTftp({ op: 'ACK', block: 0 }), oack.port, '127.0.0.1');
      const d1 = await c.next(3);
      expect(d1.p).toMatchObject({ op: 'DATA', block: 1 });
      expect((d1.p as { data: Buffer }).data.equals(content.subarray(0, 1024))).toBe(true);
      c.sock.send(encodeTftp({ op: 'ACK', block: 1 }), oack.port, '127.0.0.1');
      expect((await c.next(4)).p).toMatchObject({ op: 'DATA', block: 2 });
      // stop ACKing: DATA 2 comes back `retries` (3) times, then the server gives up
      await c.next(7);
      expect(c.got.slice(3).map((g) => (g.p as { block: number }).block)).toEqual([2, 2, 2, 2]);
      await expect.poll(() => downloads('SN-TFTP-1').length, { timeout: 10_000 }).toBe(1);
      expect(downloads('SN-TFTP-1')[0]!.data).toMatchObject({ completed: false, bytes: 1024, protocol: 'tftp' });
      expect(server.stats()).toMatchObject({ incomplete: 1, active: 0 });
    } finally {
      c.sock.close();
    }
  }, 30_000);

  it('a packet from another transfer ID gets error 5 and leaves the transfer alone; a size probe is not a download', async () => {
    const c = await rawClient();
    const stray = await rawClient();
    try {
      c.sock.send(encodeTftp({ op: 'RRQ', filename: `by-mac/${MAC}/boot.efi`, mode: 'octet', options: [{ name: 'tsize', value: '0' }] }), port, '127.0.0.1');
      const oack = await c.next(1);
      expect(oack.p).toEqual({ op: 'OACK', options: [{ name: 'tsize', value: String(content.length) }] });
      stray.sock.send(encodeTftp({ op: 'ACK', block: 0 }), oack.port, '127.0.0.1');
      expect((await stray.next(1)).p).toMatchObject({ op: 'ERROR', code: 5 });
      // UEFI PXE: learn the size, then abort with error 8 (RFC 2347) and ask again.
      c.sock.send(encodeTftp({ op: 'ERROR', code: 8, message: 'size probe' }), oack.port, '127.0.0.1');
      await expect.poll(() => server.stats()['size-probe']).toBe(1);
      expect(downloads('SN-TFTP-1')).toHaveLength(0);
      expect(c.got).toHaveLength(1);
    } finally {
      c.sock.close();
      stray.sock.close();
    }
  });

  it('bounds concurrent transfers: over the limit a request gets "server busy"; a repeated RRQ is not a second transfer', async () => {
    await server.close();
    await startServer({ maxTransfers: 1, retries: 20 });
    const a = await rawClient();
    const b = await rawClient();
    try {
      const rrq = encodeTftp({ op: 'RRQ', filename: 'boot.efi', mode: 'octet', options: [] });
      a.sock.send(rrq, port, '127.0.0.1');
      await a.next(1);
      a.sock.send(rrq, port, '127.0.0.1');
      b.sock.send(rrq, port, '127.0.0.1');
      expect((await b.next(1)).p).toEqual({ op: 'ERROR', code: 0, message: 'server busy, try again' });
      expect(server.stats()).toMatchObject({ active: 1, 'duplicate-request': 1, 'refused-TFTP_BUSY': 1 });
    } finally {
      a.sock.close();
      b.sock.close();
    }
  });

  it('garbage on the request port gets no answer (no reflection) and the server keeps serving', async () => {
    const c = await rawClient();
    try {
      for (const junk of [Buffer.from([0]), Buffer.from('\x00\x01noterminator', 'latin1'), Buffer.alloc(600, 1), Buffer.from([0, 9, 0, 0])]) c.sock.send(junk, port, '127.0.0.1');
      c.sock.send(encodeTftp({ op: 'RRQ', filename: 'nope', mode: 'octet', options: [] }), port, '127.0.0.1');
      expect((await c.next(1)).p).toMatchObject({ op: 'ERROR', code: 1 });
      expect(c.got).toHaveLength(1);
      expect(server.stats()['drop-TFTP_MALFORMED']).toBe(4);
    } finally {
      c.sock.close();
    }
  });
});
