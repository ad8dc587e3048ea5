// The TFTP server (read-only): catalogue images to PXE firmware. The adapter around the pure
// codec (codec.ts), the path parser (paths.ts) and the transfer state machine (transfer.ts):
// one listening socket for requests, one socket per transfer (RFC 1350 §4: the server's
// transfer ID is a fresh port), retransmit timers, a bound on concurrent transfers, and a
// download record in the device history for each completed or abandoned transfer.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { read as fsRead } from 'node:fs';
import type { BlobLease } from '../images/blob-reader.js';
import type { Config } from '../config.js';
import type { DeviceStore } from '../devices/store.js';
import { errorMessage, isZtpError, type ErrorCode as ZtpCode } from '../errors.js';
import type { ImageCatalogue, ImageEntry } from '../images/catalogue.js';
import type { DownloadRecorder } from '../images/recorder.js';
import { RateLimitedLog, type Logger } from '../log.js';
import { decodeTftp, encodeTftp, ErrorCode, MAX_PACKET_BYTES, negotiateRead, type TftpPacket } from './codec.js';
import { parseTftpPath, type TftpTarget } from './paths.js';
import { ReadTransfer, type TransferResult } from './transfer.js';

export type TftpSettings = Config['tftp'];

export interface TftpServerDeps {
  settings: Pick<TftpSettings, 'host' | 'port' | 'maxTransfers' | 'maxBlksize' | 'timeout' | 'retries'>;
  catalogue: ImageCatalogue;
  /** attribution of per-device paths to a serial */
  store?: DeviceStore | undefined;
  recorder?: DownloadRecorder | undefined;
  log: Logger;
  /** images.requireClientCert: TFTP cannot authenticate, so such images are refused */
  requireClientCert?: boolean | undefined;
}

interface Active {
  transfer: ReadTransfer;
  socket: Socket;
}

/** A refusal before any transfer starts: the TFTP error sent and the typed code logged. */
class Refusal {
  constructor(
    readonly tftpCode: number,
    readonly code: ZtpCode,
    readonly message: string,
    readonly fields: Record<string, unknown> = {},
  ) {}
}

export class TftpServer {
  private socket: Socket | undefined;
  private readonly active = new Map<string, Active>();
  private readonly counters: Record<string, number> = {};
  private readonly hostile: RateLimitedLog;

  constructor(private readonly deps: TftpServerDeps) {
    this.hostile = new RateLimitedLog(deps.log);
  }

  stats(): Record<string, number> {
    return { ...this.counters, active: this.active.size };
  }

  /** Binds the request socket; resolves with the bound port. */
  async listen(): Promise<{ address: string; port: number }> {
    const socket = createSocket({ type: 'udp4' });
    socket.on('message', (msg, rinfo) => this.onRequest(socket, msg, rinfo));
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ address: this.deps.settings.host, port: this.deps.settings.port }, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    socket.on('error', (err) => this.deps.log.error({ err: errorMessage(err) }, 'TFTP: socket error'));
    this.socket = socket;
    const a = socket.address();
    return { address: a.address, port: a.port };
  }

  async close(): Promise<void> {
    for (const a of [...this.active.values()]) a.transfer.abort('server shutting down');
    const s = this.socket;
    this.socket = undefined;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
    // Transfers settle synchronously on abort; their sockets close in the settle handler.
    await Promise.all([...this.active.values()].map((a) => a.transfer.done));
  }

  private count(name: string): void {
    this.counters[name] = (this.counters[name] ?? 0) + 1;
  }

  private onRequest(socket: Socket, msg: Buffer, rinfo: RemoteInfo): void {
    const peer = `${rinfo.address}:${rinfo.port}`;
    this.count('received');
    let packet: TftpPacket;
    try {
      packet = decodeTftp(msg);
    } catch (err) {
      // No answer to garbage: an error reply would make us a reflector.
      this.count(isZtpError(err) ? `drop-${err.code}` : 'internal-error');
      this.hostile.warn({ from: peer, reason: errorMessage(err), length: msg.length }, 'TFTP: dropped packet');
      return;
    }
    try {
      if (packet.op === 'ERROR') return; // never answer an error with an error
      if (packet.op !== 'RRQ') {
        if (packet.op === 'WRQ') throw new Refusal(ErrorCode.ACCESS_VIOLATION, 'TFTP_ACCESS_VIOLATION', 'this server is read-only', { file: packet.filename.slice(0, 128) });
        throw new Refusal(ErrorCode.ILLEGAL_OPERATION, 'TFTP_ILLEGAL_OPERATION', `${packet.op} without a transfer`);
      }
      // A retransmitted RRQ while its transfer runs: the transfer's own timer answers it.
      if (this.active.has(peer)) {
        this.count('duplicate-request');
        return;
      }
      void this.startRead(packet, rinfo).catch((err: unknown) => this.refuse(socket, rinfo, err));
    } catch (err) {
      this.refuse(socket, rinfo, err);
    }
  }

  private refuse(socket: Socket, rinfo: RemoteInfo, err: unknown): void {
    const peer = `${rinfo.address}:${rinfo.port}`;
    let refusal: Refusal;
    if (err instanceof Refusal) refusal = err;
    else {
      this.deps.log.error({ from: peer, err: errorMessage(err) }, 'TFTP: internal error handling a request');
      refusal = new Refusal(ErrorCode.NOT_DEFINED, 'TFTP_ILLEGAL_OPERATION', 'internal error');
      this.count('internal-error');
    }
    this.count(`refused-${refusal.code}`);
    this.hostile.warn({ from: peer, code: refusal.code, tftpError: refusal.tftpCode, reason: refusal.message, ...refusal.fields }, 'TFTP: request refused');
    this.sendTo(socket, encodeTftp({ op: 'ERROR', code: refusal.tftpCode, message: refusal.message }), rinfo);
  }

  private sendTo(socket: Socket, datagram: Buffer, to: RemoteInfo): void {
    socket.send(datagram, to.port, to.address, (err) => {
      if (err) this.hostile.warn({ to: `${to.address}:${to.port}`, err: errorMessage(err) }, 'TFTP: send failed');
    });
  }

  private resolve(filename: string): { entry: ImageEntry; target: TftpTarget } {
    const parsed = parseTftpPath(filename);
    const file = filename.slice(0, 128);
    if (!parsed.ok) {
      if (parsed.refused) throw new Refusal(ErrorCode.ACCESS_VIOLATION, 'TFTP_ACCESS_VIOLATION', `path is not allowed (${parsed.reason})`, { file });
      throw new Refusal(ErrorCode.FILE_NOT_FOUND, 'TFTP_NOT_FOUND', 'file not found', { file, why: parsed.reason });
    }
    const { target } = parsed;
    const entry = target.by === 'name' ? this.deps.catalogue.getByName(target.key) : this.deps.catalogue.getBySha256(target.key);
    if (!entry) throw new Refusal(ErrorCode.FILE_NOT_FOUND, 'TFTP_NOT_FOUND', 'file not found', { file });
    // TFTP has no authentication: an image that needs a device certificate stays on HTTPS.
    if (this.deps.requireClientCert || entry.requireClientCert) {
      throw new Refusal(ErrorCode.ACCESS_VIOLATION, 'TFTP_ACCESS_VIOLATION', 'this image needs HTTPS with a device certificate', { file, image: entry.name });
    }
    return { entry, target };
  }

  private async startRead(rrq: Extract<TftpPacket, { op: 'RRQ' }>, rinfo: RemoteInfo): Promise<void> {
    const peer = `${rinfo.address}:${rinfo.port}`;
    const { settings, log } = this.deps;
    // RFC 1350 §5 netascii would rewrite line ends of a binary image; firmware uses octet.
    if (rrq.mode !== 'octet') throw new Refusal(ErrorCode.ILLEGAL_OPERATION, 'TFTP_ILLEGAL_OPERATION', `${rrq.mode} mode is not supported: use octet (binary)`, { mode: rrq.mode });
    if (this.active.size >= settings.maxTransfers) throw new Refusal(ErrorCode.NOT_DEFINED, 'TFTP_BUSY', 'server busy, try again', { active: this.active.size });
    const { entry, target } = this.resolve(rrq.filename);
    let blob: BlobLease;
    try {
      // The image server's reader: the blob must be inside the store (no symlinked directories)
      // and hash to its name (verified once per file identity), as over HTTP.
      blob = await this.deps.catalogue.blobs.openForRead(entry.sha256);
    } catch (err) {
      const damaged = isZtpError(err, 'IMAGES_CONTENT_DAMAGED');
      log.error({ err: errorMessage(err), image: entry.name }, damaged ? 'TFTP: stored image content is damaged; refused' : 'TFTP: catalogue entry has no readable content');
      throw damaged ? new Refusal(ErrorCode.NOT_DEFINED, 'TFTP_NOT_FOUND', 'image content is damaged') : new Refusal(ErrorCode.FILE_NOT_FOUND, 'TFTP_NOT_FOUND', 'file not found');
    }
    let released = false;
    const release = () => {
      if (!released) blob.release();
      released = true;
    };
    let transfer: ReadTransfer;
    let tsock: Socket;
    try {
      if (blob.size !== entry.size) {
        log.error({ image: entry.name, size: blob.size, expected: entry.size }, 'TFTP: stored content does not match the catalogue');
        throw new Refusal(ErrorCode.NOT_DEFINED, 'TFTP_NOT_FOUND', 'image content is damaged');
      }
      // Re-checked after the awaits: other requests may have filled the slots meanwhile.
      if (this.active.size >= settings.maxTransfers) throw new Refusal(ErrorCode.NOT_DEFINED, 'TFTP_BUSY', 'server busy, try again', { active: this.active.size });
      if (this.active.has(peer)) {
        this.count('duplicate-request');
        release();
        return;
      }
      const n = negotiateRead(rrq.options, { maxBlksize: settings.maxBlksize, defaultTimeoutS: settings.timeout, fileSize: entry.size });
      if (n.ignored.length) log.debug({ from: peer, ignored: n.ignored }, 'TFTP: options not taken');
      tsock = createSocket({ type: 'udp4' });
      await new Promise<void>((resolve, reject) => {
        tsock.once('error', reject);
        tsock.bind({ address: settings.host, port: 0 }, () => {
          tsock.off('error', reject);
          resolve();
        });
      });
      tsock.on('error', (err) => this.hostile.warn({ peer, err: errorMessage(err) }, 'TFTP: transfer socket error'));
      const fd = blob.fd;
      transfer = new ReadTransfer(
        {
          send: (d) => this.sendTo(tsock, d, rinfo),
          read: (into, offset, length) => new Promise((res, rej) => fsRead(fd, into, 0, length, offset, (err, bytes) => (err ? rej(err) : res(bytes)))),
          setTimer: (ms, fire) => {
            const t = setTimeout(fire, ms);
            t.unref();
            return () => clearTimeout(t);
          },
        },
        { size: entry.size, blksize: n.blksize, timeoutMs: n.timeoutS * 1000, retries: settings.retries, oack: n.oack },
      );
      tsock.on('message', (msg, from) => {
        if (from.address !== rinfo.address || from.port !== rinfo.port) {
          // RFC 1350 §4: a packet from another transfer ID gets error 5 and does not disturb this one.
          this.count('unknown-tid');
          if (msg.length >= 2 && msg.readUInt16BE(0) !== 5) this.sendTo(tsock, encodeTftp({ op: 'ERROR', code: ErrorCode.UNKNOWN_TID, message: 'unknown transfer ID' }), from);
          return;
        }
        let p: TftpPacket;
        try {
          p = decodeTftp(msg.length > MAX_PACKET_BYTES ? msg.subarray(0, MAX_PACKET_BYTES + 1) : msg);
        } catch (err) {
          this.count('drop-in-transfer');
          this.hostile.warn({ peer, reason: errorMessage(err) }, 'TFTP: dropped packet in a transfer');
          return;
        }
        transfer.onPacket(p);
      });
      this.active.set(peer, { transfer, socket: tsock });
      log.debug({ peer, image: entry.name, blksize: n.blksize, timeout: n.timeoutS, tsize: n.tsize }, 'TFTP: read request accepted');
    } catch (err) {
      release();
      throw err;
    }
    const started = performance.now();
    transfer.start();
    const result = await transfer.done;
    this.active.delete(peer);
    tsock.close();
    release();
    this.finished(result, entry, target, rinfo, Math.round(performance.now() - started));
  }

  private finished(r: TransferResult, entry: ImageEntry, target: TftpTarget, rinfo: RemoteInfo, durationMs: number): void {
    const peer = `${rinfo.address}:${rinfo.port}`;
    const fields = { peer, image: entry.name, bytes: r.bytes, durationMs, retransmits: r.retransmits, mac: target.mac };
    if (r.probe) {
      // tsize probe (UEFI PXE): the firmware learnt the size and will ask again.
      this.count('size-probe');
      this.deps.log.debug({ ...fields, peerError: r.peerError }, 'TFTP: size probe ended by the client');
      return;
    }
    this.count(r.completed ? 'completed' : 'incomplete');
    if (!r.completed) this.hostile.warn({ ...fields, reason: r.reason }, 'TFTP: transfer not completed');
    let serial: string | null = null;
    if (target.mac) serial = this.deps.store?.getByMac(target.mac)?.serial ?? null;
    else if (target.serial) serial = this.deps.store?.get(target.serial)?.serial ?? null;
    this.deps.recorder?.record({
      serial,
      image: entry.name,
      sha256: entry.sha256,
      bytes: r.bytes,
      durationMs,
      completed: r.completed,
      client: rinfo.address,
      view: 'device',
      protocol: 'tftp',
      ...(target.mac ? { mac: target.mac } : {}),
    });
  }
}
