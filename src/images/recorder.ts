// Download records: each download (who, which image, bytes, duration, completed or not) goes to
// the device's append-only history through DeviceStore.record(); "BMC fetched the ISO" is a
// progress signal (a completed download moves the device to image-fetched).
//
// A BMC mounting an ISO issues thousands of small range requests. One history event per range
// would drown a device's history, so range requests of one client for one image are coalesced
// into a single "download session" event, written when the client has been idle for `idleMs`
// (or after `maxRequests`, or at shutdown). Whole-file downloads are written at once.
import type { DeviceStore } from '../devices/store.js';
import type { Logger } from '../log.js';
import type { ImageView } from './urls.js';

export interface DownloadFact {
  serial: string | null;
  image: string;
  sha256: string;
  /** body bytes handed to the socket */
  bytes: number;
  durationMs: number;
  completed: boolean;
  /** remote address */
  client: string;
  view: ImageView;
  /** the Range header served (206), absent for a whole-file download */
  range?: string;
  mac?: string;
  /** serial from a client certificate, when one was presented */
  certSerial?: string;
  /** how it was fetched when not HTTP(S) (the TFTP server records 'tftp') */
  protocol?: 'tftp';
}

interface Session {
  fact: DownloadFact;
  requests: number;
  startedAt: number;
  lastAt: number;
  timer: NodeJS.Timeout | undefined;
}

export interface RecorderOptions {
  idleMs?: number;
  maxRequests?: number;
  now?: () => number;
  /** sees every served response's fact as it happens (metrics), before any coalescing */
  observe?: (fact: DownloadFact) => void;
}

export class DownloadRecorder {
  private readonly sessions = new Map<string, Session>();
  private readonly idleMs: number;
  private readonly maxRequests: number;
  private readonly now: () => number;
  private readonly observe: ((fact: DownloadFact) => void) | undefined;
  private stopped = false;

  constructor(
    private readonly store: DeviceStore | undefined,
    private readonly log: Logger,
    options: RecorderOptions = {},
  ) {
    this.idleMs = options.idleMs ?? 10_000;
    this.maxRequests = options.maxRequests ?? 100_000;
    this.now = options.now ?? Date.now;
    this.observe = options.observe;
  }

  record(fact: DownloadFact): void {
    this.observe?.(fact);
    if (fact.range === undefined || this.stopped) {
      this.write(fact, 1);
      return;
    }
    const key = [fact.serial ?? '', fact.mac ?? '', fact.client, fact.sha256, fact.image, fact.view].join('|');
    const now = this.now();
    let s = this.sessions.get(key);
    if (!s) {
      s = { fact: { ...fact }, requests: 0, startedAt: now - fact.durationMs, lastAt: now, timer: undefined };
      s.fact.bytes = 0;
      s.fact.completed = true;
      this.sessions.set(key, s);
    }
    s.requests++;
    s.fact.bytes += fact.bytes;
    s.fact.completed &&= fact.completed;
    s.lastAt = now;
    s.fact.durationMs = now - s.startedAt;
    if (s.requests >= this.maxRequests) {
      this.flushKey(key);
      return;
    }
    // one timer per session, pushed back on every request (not a new timer per range read)
    if (s.timer) s.timer.refresh();
    else {
      s.timer = setTimeout(() => this.flushKey(key), this.idleMs);
      s.timer.unref();
    }
  }

  /** Writes every open range session now. */
  flush(): void {
    for (const key of [...this.sessions.keys()]) this.flushKey(key);
  }

  stop(): void {
    this.stopped = true;
    this.flush();
  }

  private flushKey(key: string): void {
    const s = this.sessions.get(key);
    if (!s) return;
    this.sessions.delete(key);
    if (s.timer) clearTimeout(s.timer);
    this.write(s.fact, s.requests);
  }

  private write(fact: DownloadFact, requests: number): void {
    const data: Record<string, unknown> = {
      image: fact.image,
      sha256: fact.sha256,
      bytes: fact.bytes,
      durationMs: fact.durationMs,
      completed: fact.completed,
      client: fact.client,
      view: fact.view,
    };
    if (fact.range !== undefined) {
      data.range = fact.range;
      data.requests = requests;
    }
    if (fact.mac) data.mac = fact.mac;
    if (fact.certSerial) data.certSerial = fact.certSerial;
    if (fact.protocol) data.protocol = fact.protocol;
    this.log.info({ serial: fact.serial, mac: fact.mac, ...data }, fact.completed ? 'image download recorded' : 'image download incomplete (client went away)');
    if (!this.store) return;
    try {
      this.store.record({ serial: fact.serial, source: 'images', type: 'download', data });
    } catch (err) {
      this.log.error({ err, serial: fact.serial, image: fact.image }, 'could not record an image download');
    }
  }
}
