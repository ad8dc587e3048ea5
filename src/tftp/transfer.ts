// One TFTP read transfer (RFC 1350 lock-step, RFC 2347 OACK first when options were accepted).
// The socket, the file and the clock are ports (TransferIo), so the state machine is tested
// without a network; service.ts is the adapter that owns the per-transfer UDP socket.
import { blockCount, encodeData, encodeTftp, ErrorCode, wireBlock, type TftpOption, type TftpPacket } from './codec.js';

export interface TransferIo {
  /** sends one datagram to the peer (the transfer ID it sent the request from) */
  send(datagram: Buffer): void;
  /** reads `length` bytes at `offset` of the file into `into`, resolving with the count read */
  read(into: Buffer, offset: number, length: number): Promise<number>;
  /** arms a one-shot timer; returns its cancel function */
  setTimer(ms: number, fire: () => void): () => void;
}

export interface TransferPlan {
  size: number;
  blksize: number;
  /** retransmit timeout (RFC 2349 timeout option, or the server default), ms */
  timeoutMs: number;
  /** retransmissions of one packet before giving up */
  retries: number;
  /** the OACK to send first; without it DATA 1 goes out at once (RFC 1350 flow) */
  oack?: TftpOption[] | undefined;
}

export interface TransferResult {
  completed: boolean;
  /** file bytes the peer acknowledged */
  bytes: number;
  /** blocks sent again after a timeout */
  retransmits: number;
  /** why it ended early */
  reason?: string;
  /** the peer ended it with an ERROR packet (code) */
  peerError?: number;
  /**
   * The peer stopped after the OACK without taking a block: a size probe (UEFI PXE asks for
   * tsize, then aborts with error 8 and reads again). Like HEAD on HTTP, not a download.
   */
  probe: boolean;
}

type State = 'oack' | 'data' | 'done';

export class ReadTransfer {
  private state: State = 'data';
  /** 1-based number of the block in flight */
  private block = 0;
  private packet: Buffer | undefined;
  private lastPayload = 0;
  private attempts = 0;
  private acked = 0;
  private retransmits = 0;
  private reading = false;
  private cancelTimer: (() => void) | undefined;
  private readonly blocks: number;
  private settle!: (r: TransferResult) => void;
  readonly done: Promise<TransferResult>;

  constructor(
    private readonly io: TransferIo,
    private readonly plan: TransferPlan,
  ) {
    this.blocks = blockCount(plan.size, plan.blksize);
    this.done = new Promise((resolve) => (this.settle = resolve));
  }

  start(): void {
    if (this.plan.oack) {
      this.state = 'oack';
      this.transmit(encodeTftp({ op: 'OACK', options: this.plan.oack }));
    } else {
      void this.next();
    }
  }

  /** A packet from the peer's transfer ID. Anything but ACK/ERROR is an illegal operation. */
  onPacket(p: TftpPacket): void {
    if (this.state === 'done') return;
    if (p.op === 'ERROR') {
      this.finish({ reason: `peer sent error ${p.code}${p.message ? `: ${p.message}` : ''}`, peerError: p.code });
      return;
    }
    if (p.op !== 'ACK') {
      // RFC 1350 §7: an illegal packet on the connection ends it with an error.
      this.io.send(encodeTftp({ op: 'ERROR', code: ErrorCode.ILLEGAL_OPERATION, message: `unexpected ${p.op} during a read` }));
      this.finish({ reason: `peer sent ${p.op} during a read` });
      return;
    }
    if (this.reading) return;
    if (this.state === 'oack') {
      // RFC 2347 §2: the client acknowledges the OACK with ACK block 0.
      if (p.block === 0) void this.next();
      return;
    }
    if (p.block !== wireBlock(this.block)) {
      // A duplicate ACK of an earlier block: RFC 1123 §4.2.3.1 (the Sorcerer's Apprentice
      // bug) says never to answer it with a retransmission; the timer covers real loss.
      return;
    }
    this.acked += this.lastPayload;
    if (this.block >= this.blocks) {
      this.finish({ completed: true });
      return;
    }
    void this.next();
  }

  /** Ends the transfer from outside (server shutdown). */
  abort(reason: string): void {
    if (this.state === 'done') return;
    this.io.send(encodeTftp({ op: 'ERROR', code: ErrorCode.NOT_DEFINED, message: reason }));
    this.finish({ reason });
  }

  private async next(): Promise<void> {
    this.state = 'data';
    this.block++;
    const offset = (this.block - 1) * this.plan.blksize;
    const length = Math.max(0, Math.min(this.plan.blksize, this.plan.size - offset));
    const packet = Buffer.allocUnsafe(4 + length);
    this.reading = true;
    let n: number;
    try {
      n = length === 0 ? 0 : await this.io.read(packet.subarray(4), offset, length);
    } catch (err) {
      this.reading = false;
      this.io.send(encodeTftp({ op: 'ERROR', code: ErrorCode.NOT_DEFINED, message: 'read error' }));
      this.finish({ reason: `read failed: ${(err as Error).message}` });
      return;
    }
    this.reading = false;
    if (this.state !== 'data') return;
    if (n !== length) {
      this.io.send(encodeTftp({ op: 'ERROR', code: ErrorCode.NOT_DEFINED, message: 'file changed during transfer' }));
      this.finish({ reason: `short read at ${offset}: ${n} of ${length} bytes` });
      return;
    }
    this.lastPayload = length;
    this.transmit(encodeData(wireBlock(this.block), packet.subarray(4), packet));
  }

  private transmit(packet: Buffer): void {
    this.packet = packet;
    this.attempts = 0;
    this.io.send(packet);
    this.arm();
  }

  private arm(): void {
    this.cancelTimer?.();
    this.cancelTimer = this.io.setTimer(this.plan.timeoutMs, () => this.onTimeout());
  }

  private onTimeout(): void {
    if (this.state === 'done' || !this.packet) return;
    if (this.attempts >= this.plan.retries) {
      this.finish({ reason: `no ACK after ${this.plan.retries} retransmissions` });
      return;
    }
    this.attempts++;
    this.retransmits++;
    this.io.send(this.packet);
    this.arm();
  }

  private finish(r: { completed?: boolean; reason?: string; peerError?: number }): void {
    const wasOack = this.state === 'oack';
    this.state = 'done';
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    const completed = r.completed === true;
    this.settle({
      completed,
      bytes: completed ? this.plan.size : this.acked,
      retransmits: this.retransmits,
      ...(r.reason ? { reason: r.reason } : {}),
      ...(r.peerError !== undefined ? { peerError: r.peerError } : {}),
      probe: !completed && wasOack && r.peerError !== undefined,
    });
  }
}

