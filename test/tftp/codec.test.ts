// TFTP codec (RFC 1350, 2347-2349), option negotiation, the transfer state machine on a fake
// socket and clock, and file-name parsing. Hostile input never throws anything but ZtpError.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isZtpError } from '../../src/errors.js';
import { blockCount, decodeTftp, encodeTftp, negotiateRead, wireBlock, type TftpPacket } from '../../src/tftp/codec.js';
import { parseTftpPath, tftpPathFor } from '../../src/tftp/paths.js';
import { ReadTransfer, type TransferIo, type TransferPlan } from '../../src/tftp/transfer.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+|\|.*$/gm, ''), 'hex');

describe('TFTP codec: byte fixtures', () => {
  it('decodes a UEFI PXE read request with options (RFC 2347 §2 layout)', () => {
    const rrq = hex(`
      0001                              | opcode 1 RRQ
      626f6f742e65666900                | "boot.efi" NUL
      6f6374657400                      | "octet" NUL
      7473697a6500 3000                 | "tsize" NUL "0" NUL
      626c6b73697a6500 3134363800       | "blksize" NUL "1468" NUL
    `);
    expect(decodeTftp(rrq)).toEqual({ op: 'RRQ', filename: 'boot.efi', mode: 'octet', options: [{ name: 'tsize', value: '0' }, { name: 'blksize', value: '1468' }] });
  });

  it('reads mode and option names case-insensitively (RFC 1350 §5, RFC 2347 §2)', () => {
    const p = decodeTftp(encodeTftp({ op: 'RRQ', filename: 'A', mode: 'octet', options: [] }).fill(0x4f, 4, 5)); // 'O'ctet
    expect(p).toMatchObject({ mode: 'octet' });
    const q = decodeTftp(Buffer.from('\x00\x01f\x00OCTET\x00BlkSize\x00512\x00', 'latin1'));
    expect(q).toMatchObject({ mode: 'octet', options: [{ name: 'blksize', value: '512' }] });
  });

  it('decodes DATA, ACK, ERROR and OACK, also from a sliced Buffer view', () => {
    const backing = Buffer.concat([Buffer.from('garbage!'), hex('0003 0102 deadbeef')]);
    const view = backing.subarray(8);
    expect(view.byteOffset - backing.byteOffset).toBe(8);
    const d = decodeTftp(view);
    expect(d).toMatchObject({ op: 'DATA', block: 0x0102 });
    expect((d as Extract<TftpPacket, { op: 'DATA' }>).data.toString('hex')).toBe('deadbeef');
    expect(decodeTftp(hex('0004 ffff'))).toEqual({ op: 'ACK', block: 65535 });
    expect(decodeTftp(Buffer.from('\x00\x05\x00\x01File not found\x00', 'latin1'))).toEqual({ op: 'ERROR', code: 1, message: 'File not found' });
    // quirk: an ERROR without its final NUL still carries its code
    expect(decodeTftp(Buffer.from('\x00\x05\x00\x08abort', 'latin1'))).toEqual({ op: 'ERROR', code: 8, message: 'abort' });
    expect(decodeTftp(Buffer.from('\x00\x06tsize\x00123\x00', 'latin1'))).toEqual({ op: 'OACK', options: [{ name: 'tsize', value: '123' }] });
  });

  it.each([
    ['shorter than 4 bytes', '0001'],
    ['unknown opcode', '0009 0000'],
    ['unterminated filename', '0001 6100 6f63746574'],
    ['empty filename', '0001 00 6f6374657400'],
    ['unknown mode', '0001 6100 7a697000'],
    ['option without a value', '0001 6100 6f6374657400 7473697a6500'],
    ['ACK of 5 bytes', '0004 000100'],
    ['OACK without options', '0006'],
  ])('refuses %s with TFTP_MALFORMED', (_what, bytes) => {
    let caught: unknown;
    try {
      decodeTftp(hex(bytes));
    } catch (err) {
      caught = err;
    }
    expect(isZtpError(caught, 'TFTP_MALFORMED')).toBe(true);
  });

  it('refuses requests over 512 bytes (RFC 2347 §2) and DATA over the largest block', () => {
    const long = encodeTftp({ op: 'RRQ', filename: 'x'.repeat(600), mode: 'octet', options: [] });
    expect(() => decodeTftp(long)).toThrow(/512/);
    expect(() => decodeTftp(Buffer.alloc(4 + 65465, 0).fill(3, 1, 2))).toThrow(/largest block/);
  });

  it('property: decode of arbitrary bytes throws only ZtpError TFTP_MALFORMED', () => {
    const opcodeFirst = fc.tuple(fc.integer({ min: 0, max: 7 }), fc.uint8Array({ maxLength: 600 })).map(([op, rest]) => Buffer.concat([Buffer.from([0, op]), rest]));
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 700 }).map((a) => Buffer.from(a)), opcodeFirst), fc.nat(8), (buf, cut) => {
        const view = Buffer.concat([Buffer.alloc(cut), buf]).subarray(cut);
        try {
          decodeTftp(view);
        } catch (err) {
          if (!isZtpError(err, 'TFTP_MALFORMED')) throw err;
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('property: decode(encode(p)) = p', () => {
    const text = fc.string({ minLength: 1, maxLength: 40 }).filter((s) => !s.includes('\0') && [...s].every((c) => c.charCodeAt(0) < 256));
    const option = fc.record({ name: text.map((s) => s.toLowerCase()).filter((s) => s.length > 0 && !s.includes('\0')), value: text });
    const packet: fc.Arbitrary<TftpPacket> = fc.oneof(
      fc.record({ op: fc.constant('RRQ' as const), filename: text, mode: fc.constantFrom('octet' as const, 'netascii' as const, 'mail' as const), options: fc.array(option, { maxLength: 4 }) }),
      fc.record({ op: fc.constant('DATA' as const), block: fc.integer({ min: 0, max: 0xffff }), data: fc.uint8Array({ maxLength: 1500 }).map((a) => Buffer.from(a)) }),
      fc.record({ op: fc.constant('ACK' as const), block: fc.integer({ min: 0, max: 0xffff }) }),
      fc.record({ op: fc.constant('ERROR' as const), code: fc.integer({ min: 0, max: 8 }), message: text }),
      fc.record({ op: fc.constant('OACK' as const), options: fc.array(option, { minLength: 1, maxLength: 4 }) }),
    );
    fc.assert(
      fc.property(packet, (p) => {
        const bytes = encodeTftp(p);
        if (bytes.length > 512 && (p.op === 'RRQ' || p.op === 'OACK')) return;
        expect(decodeTftp(bytes)).toEqual(p);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('option negotiation (RFC 2348, RFC 2349)', () => {
  const limits = { maxBlksize: 1468, defaultTimeoutS: 2, fileSize: 123456 };
  it('grants blksize up to our limit, the timeout asked, and the file size for tsize=0, in request order', () => {
    const n = negotiateRead([{ name: 'tsize', value: '0' }, { name: 'blksize', value: '65464' }, { name: 'timeout', value: '7' }], limits);
    expect(n).toMatchObject({ blksize: 1468, timeoutS: 7, tsize: 123456 });
    expect(n.oack).toEqual([{ name: 'tsize', value: '123456' }, { name: 'blksize', value: '1468' }, { name: 'timeout', value: '7' }]);
  });
  it('leaves out options it does not take; none taken means the RFC 1350 flow (no OACK)', () => {
    const n = negotiateRead([{ name: 'blksize', value: '7' }, { name: 'timeout', value: '0' }, { name: 'timeout', value: '256' }, { name: 'windowsize', value: '4' }, { name: 'tsize', value: 'x' }], limits);
    expect(n.oack).toBeUndefined();
    expect(n).toMatchObject({ blksize: 512, timeoutS: 2 });
    expect(n.ignored.map((i) => i.why)).toEqual([expect.stringContaining('≥ 8'), expect.stringContaining('1..255'), 'repeated', 'unsupported option', 'not a number']);
  });
  it('a smaller blksize than ours is granted as asked', () => {
    expect(negotiateRead([{ name: 'blksize', value: '1024' }], limits).oack).toEqual([{ name: 'blksize', value: '1024' }]);
  });
  it('block numbers: a file of n×blksize ends with an empty block; numbers wrap after 65535', () => {
    expect(blockCount(1024, 512)).toBe(3);
    expect(blockCount(1023, 512)).toBe(2);
    expect(blockCount(0, 512)).toBe(1);
    expect([65535, 65536, 65537].map(wireBlock)).toEqual([65535, 0, 1]);
  });
});

/** A transfer on a fake network: packets the server sent, timers fired by hand. */
function fakeTransfer(content: Buffer, plan: Partial<TransferPlan> = {}) {
  const sent: TftpPacket[] = [];
  const timers: (() => void)[] = [];
  const io: TransferIo = {
    send: (d) => sent.push(decodeTftp(Buffer.from(d))),
    read: async (into, offset, length) => content.copy(into, 0, offset, offset + length),
    setTimer: (_ms, fire) => {
      timers.push(fire);
      return () => {
        const i = timers.indexOf(fire);
        if (i >= 0) timers.splice(i, 1);
      };
    },
  };
  const t = new ReadTransfer(io, { size: content.length, blksize: 8, timeoutMs: 1000, retries: 2, ...plan });
  const tick = () => new Promise((r) => setImmediate(r));
  return { t, sent, timers, tick, fire: () => timers.shift()?.() };
}

describe('ReadTransfer (lock-step, RFC 1350 §2)', () => {
  it('sends DATA 1..n, each after the ACK of the previous; the short block ends it', async () => {
    const f = fakeTransfer(Buffer.from('0123456789abcdefXYZ'));
    f.t.start();
    await f.tick();
    expect(f.sent).toEqual([{ op: 'DATA', block: 1, data: Buffer.from('01234567') }]);
    f.t.onPacket({ op: 'ACK', block: 1 });
    await f.tick();
    f.t.onPacket({ op: 'ACK', block: 1 }); // duplicate: no retransmission (Sorcerer's Apprentice)
    f.t.onPacket({ op: 'ACK', block: 2 });
    await f.tick();
    f.t.onPacket({ op: 'ACK', block: 3 });
    const r = await f.t.done;
    expect(f.sent.map((p) => (p.op === 'DATA' ? `${p.block}:${p.data.toString()}` : p.op))).toEqual(['1:01234567', '2:89abcdef', '3:XYZ']);
    expect(r).toMatchObject({ completed: true, bytes: 19, retransmits: 0, probe: false });
    expect(f.timers).toHaveLength(0);
  });

  it('a file of exactly n blocks ends with an empty DATA block', async () => {
    const f = fakeTransfer(Buffer.from('0123456789abcdef'));
    f.t.start();
    for (let b = 1; b <= 3; b++) {
      await f.tick();
      f.t.onPacket({ op: 'ACK', block: b });
    }
    expect((await f.t.done).completed).toBe(true);
    expect(f.sent.at(-1)).toEqual({ op: 'DATA', block: 3, data: Buffer.alloc(0) });
  });

  it('OACK first; ACK 0 starts the data; ERROR 8 right after the OACK is a size probe', async () => {
    const f = fakeTransfer(Buffer.from('abc'), { oack: [{ name: 'tsize', value: '3' }] });
    f.t.start();
    expect(f.sent).toEqual([{ op: 'OACK', options: [{ name: 'tsize', value: '3' }] }]);
    f.t.onPacket({ op: 'ERROR', code: 8, message: '' });
    expect(await f.t.done).toMatchObject({ completed: false, probe: true, peerError: 8, bytes: 0 });
    const g = fakeTransfer(Buffer.from('abc'), { oack: [{ name: 'blksize', value: '8' }] });
    g.t.start();
    g.t.onPacket({ op: 'ACK', block: 0 });
    await g.tick();
    g.t.onPacket({ op: 'ACK', block: 1 });
    expect(await g.t.done).toMatchObject({ completed: true, bytes: 3 });
  });

  it('retransmits the packet in flight on timeout, then gives up after `retries`', async () => {
    const f = fakeTransfer(Buffer.from('0123456789'), { retries: 2 });
    f.t.start();
    await f.tick();
    f.fire();
    f.fire();
    expect(f.sent.map((p) => (p as { block: number }).block)).toEqual([1, 1, 1]);
    f.fire();
    expect(await f.t.done).toMatchObject({ completed: false, retransmits: 2, bytes: 0, reason: expect.stringContaining('no ACK') });
  });

  it('block numbers wrap after 65535 on a file of more than 65535 blocks', async () => {
    const content = Buffer.alloc(8 * 65536 + 3, 1);
    const f = fakeTransfer(content);
    f.t.start();
    for (let n = 1; n <= 65537; n++) {
      await Promise.resolve();
      await Promise.resolve();
      f.t.onPacket({ op: 'ACK', block: n & 0xffff });
    }
    const r = await f.t.done;
    expect(r).toMatchObject({ completed: true, bytes: content.length });
    expect(f.sent.slice(65534, 65537).map((p) => (p as { block: number }).block)).toEqual([65535, 0, 1]);
  });

  it('ends a transfer with error 4 when the peer sends DATA during a read', async () => {
    const f = fakeTransfer(Buffer.from('x'));
    f.t.start();
    await f.tick();
    f.t.onPacket({ op: 'DATA', block: 1, data: Buffer.alloc(0) });
    expect((await f.t.done).completed).toBe(false);
    expect(f.sent.at(-1)).toMatchObject({ op: 'ERROR', code: 4 });
  });
});

describe('TFTP file names → catalogue lookups', () => {
  it.each([
    ['boot.efi', { by: 'name', key: 'boot.efi' }],
    ['/boot.efi', { by: 'name', key: 'boot.efi' }],
    ['images/boot.efi', { by: 'name', key: 'boot.efi' }],
    ['by-mac/52:54:00:12:34:56/boot.efi', { by: 'name', key: 'boot.efi', mac: '52:54:00:12:34:56' }],
    [`sha256/${'a'.repeat(64)}`, { by: 'sha256', key: 'a'.repeat(64) }],
  ])('%s', (name, target) => {
    expect(parseTftpPath(name)).toEqual({ ok: true, target: { kind: 'image', ...target } });
  });
  it.each(['../etc/passwd', '/../../etc/passwd', 'images/../x', 'a//b', 'pxelinux\\boot.efi', '.hidden', 'images/%2e%2e/x', 'a\u0001b', 'by-mac/zz/boot.efi', 'x'.repeat(300)])(
    'refuses %s as an access violation',
    (name) => {
      expect(parseTftpPath(name)).toMatchObject({ ok: false, refused: true });
    },
  );
  it('unknown shapes are not found, not violations', () => {
    expect(parseTftpPath('pxelinux.cfg/default')).toMatchObject({ ok: false, refused: false });
    expect(parseTftpPath('/')).toMatchObject({ ok: false, refused: false });
  });
  it('tftpPathFor is the inverse for per-device paths', () => {
    const p = tftpPathFor('boot.efi', '52:54:00:12:34:56');
    expect(parseTftpPath(p)).toMatchObject({ ok: true, target: { mac: '52:54:00:12:34:56', key: 'boot.efi' } });
  });
});
