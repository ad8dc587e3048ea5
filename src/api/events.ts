// The live event feed (Server-Sent Events) of the admin API, with the history table as its
// source of truth: a subscriber is a cursor into `events`, never a copy of what was emitted.
//
// - Commits of this process wake the hub at once (the store's 'event' emitter); commits of any
//   other connection — the `ztp` CLI writing the same database, a standalone DHCP process — are
//   noticed by polling `PRAGMA data_version` on a short unref'd timer (one pragma per tick while
//   idle). Either way the hub reads `id > cursor` from the table, so nothing is sent twice or
//   skipped: SQLite has one writer at a time, so committed ids only grow.
// - A subscriber starts from any id (`Last-Event-ID`, or `?after=`) and is replayed in pages
//   from the table; a slow one (socket buffer full) drops back to paging from its own cursor
//   when it drains, so a burst never piles up in memory and never loses an event.
// - close() ends every stream and its socket: shutdown never waits on an open dashboard.
import type { ServerResponse } from 'node:http';
import { publicDevice } from '../devices/model.js';
import type { DeviceStore, HistoryEvent } from '../devices/store.js';
import { ERROR_CATALOGUE } from '../errors.js';
import type { Logger } from '../log.js';
import { summarize } from '../onboarding/timeline.js';

/** A history event as streamed: the stored event plus what a viewer needs to show it. */
export interface StreamedEvent extends HistoryEvent {
  /** the device's onboarding state after this event (this process's commits) or when it was read */
  state?: string;
  /** one line for humans (the timeline's wording) */
  summary: string;
  /** a failure: failed request (with its HTTP status), error report, failed BMC step or job */
  error?: boolean;
  /** HTTP status of a failed request */
  status?: number;
  /** the device record as it is now, on device-added / device-updated */
  device?: ReturnType<typeof publicDevice> | null;
}

export interface EventHubOptions {
  /** how often other connections' commits are looked for, ms */
  pollMs?: number;
  /** events read from the table per query (replay page) */
  pageSize?: number;
}

interface Subscriber {
  res: ServerResponse;
  /** id of the last event written to this subscriber */
  sent: number;
  /** replaying from the table (at start, or after its socket filled up) */
  paging: boolean;
}

const frame = (e: StreamedEvent) => `id: ${e.id}\nevent: history\ndata: ${JSON.stringify(e)}\n\n`;

export class EventHub {
  private cursor = 0;
  private dataVersion = 0;
  /** this process's commits not yet pumped: they carry the state change the table lacks */
  private readonly local = new Map<number, HistoryEvent>();
  private readonly subscribers = new Set<Subscriber>();
  private timer: NodeJS.Timeout | undefined;
  private wakeQueued = false;
  private closed = false;
  private readonly pollMs: number;
  private readonly pageSize: number;
  private readonly onLocal = (e: HistoryEvent) => {
    if (e.id <= this.cursor) return;
    this.local.set(e.id, e);
    this.wake();
  };

  constructor(
    private readonly store: DeviceStore,
    private readonly log: Logger,
    opts: EventHubOptions = {},
  ) {
    this.pollMs = opts.pollMs ?? 250;
    this.pageSize = opts.pageSize ?? 500;
  }

  /** Starts following the table from its current end. */
  start(): void {
    if (this.timer || this.closed) return;
    this.cursor = this.store.latestEventId();
    this.dataVersion = this.store.commitVersion();
    this.store.events.on('event', this.onLocal);
    this.timer = setInterval(() => this.poll(), this.pollMs);
    this.timer.unref();
  }

  /** The newest id the hub has sent on (every live subscriber has it). */
  get head(): number {
    return this.cursor;
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  private poll(): void {
    let v: number;
    try {
      v = this.store.commitVersion();
    } catch (err) {
      // The database was closed under a running app (a test, a failed start): stop looking.
      this.log.warn({ err }, 'event feed stopped: the database is closed');
      this.close();
      return;
    }
    if (v === this.dataVersion) return;
    this.dataVersion = v;
    this.pump();
  }

  /** One pump per turn of the event loop, however many events were committed in it. */
  private wake(): void {
    if (this.wakeQueued) return;
    this.wakeQueued = true;
    setImmediate(() => {
      this.wakeQueued = false;
      this.pump();
    });
  }

  /** Reads everything after the cursor from the table and sends it to live subscribers. */
  pump(): void {
    if (this.closed) return;
    try {
      // Nobody watching: nothing to read or enrich, only the position to keep.
      if (this.subscribers.size === 0) this.cursor = Math.max(this.cursor, this.store.latestEventId());
      for (;;) {
        const page = this.read(this.cursor, this.pageSize, true);
        if (page.length === 0) break;
        this.cursor = page[page.length - 1]!.id;
        this.broadcast(page);
        if (page.length < this.pageSize) break;
      }
    } catch (err) {
      // The database closes during shutdown; the next commit or tick tries again otherwise.
      if (!this.closed) this.log.error({ err }, 'event feed could not read the history');
    }
    // Local events at or below the cursor have been sent.
    for (const id of this.local.keys()) if (id <= this.cursor) this.local.delete(id);
  }

  /** Events after `after`, as streamed. `live`: pumping (this process's state changes known). */
  read(after: number, limit: number, live = false): StreamedEvent[] {
    const rows = this.store.eventsAfter(after, limit);
    const states = new Map<string, string | undefined>();
    const stateOf = (serial: string) => {
      if (!states.has(serial)) states.set(serial, this.store.stateOf(serial));
      return states.get(serial);
    };
    return rows.map((row) => {
      const local = live ? this.local.get(row.id) : undefined;
      const e: StreamedEvent = { ...row, ...summarize(row) };
      if (local?.stateChange) e.stateChange = local.stateChange;
      if (row.serial !== null) {
        const state = local?.stateChange?.to ?? stateOf(row.serial);
        if (state !== undefined) e.state = state;
        if (row.source === 'admin' && (row.type === 'device-added' || row.type === 'device-updated')) {
          const device = this.store.get(row.serial);
          e.device = device ? publicDevice(device) : null;
        }
      }
      const code = row.data.code;
      if (row.data.result === 'error' && typeof code === 'string') {
        e.status = code in ERROR_CATALOGUE ? ERROR_CATALOGUE[code as keyof typeof ERROR_CATALOGUE].status : 500;
      }
      return e;
    });
  }

  private broadcast(events: StreamedEvent[]): void {
    if (this.subscribers.size === 0) return;
    const frames = events.map(frame);
    for (const sub of this.subscribers) {
      if (sub.paging) continue;
      for (let i = 0; i < events.length; i++) {
        if (events[i]!.id <= sub.sent) continue;
        sub.sent = events[i]!.id;
        if (!sub.res.write(frames[i]!)) {
          // Full socket buffer: the rest comes from the table once it drains.
          sub.paging = true;
          sub.res.once('drain', () => void this.catchUp(sub));
          break;
        }
      }
    }
  }

  /**
   * Streams to `res` every event after `after`, replayed from the table in pages, then live.
   * `first` is written before anything else (e.g. a snapshot). Ends when the client leaves or
   * close() is called.
   */
  subscribe(res: ServerResponse, after: number, first?: string): void {
    const sub: Subscriber = { res, sent: after, paging: true };
    if (this.closed) {
      res.end();
      return;
    }
    this.subscribers.add(sub);
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    keepAlive.unref();
    const leave = () => {
      clearInterval(keepAlive);
      this.subscribers.delete(sub);
    };
    res.on('close', leave);
    res.on('error', leave);
    if (first !== undefined && !res.write(first)) {
      res.once('drain', () => void this.catchUp(sub));
      return;
    }
    void this.catchUp(sub);
  }

  /** Pages the subscriber forward from its cursor to the hub's, then hands it to broadcast(). */
  private async catchUp(sub: Subscriber): Promise<void> {
    try {
      while (!this.closed && this.subscribers.has(sub) && sub.sent < this.cursor) {
        const page = this.read(sub.sent, this.pageSize).filter((e) => e.id <= this.cursor);
        if (page.length === 0) break;
        let full = false;
        for (const e of page) full = !sub.res.write(frame(e)) || full;
        sub.sent = page[page.length - 1]!.id;
        if (full) await new Promise<void>((resolve) => {
          const done = () => {
            sub.res.off('drain', done);
            sub.res.off('close', done);
            resolve();
          };
          sub.res.once('drain', done);
          sub.res.once('close', done);
        });
      }
    } catch (err) {
      if (!this.closed) this.log.error({ err }, 'event feed replay failed');
      sub.res.destroy();
      return;
    }
    // No await between the last page and this line: nothing committed can slip between them.
    sub.paging = false;
  }

  /** Ends every stream (and its connection) and stops polling. */
  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.store.events.off('event', this.onLocal);
    for (const sub of this.subscribers) {
      sub.res.end();
      // The client may keep the connection alive: it must not hold server.close() up.
      sub.res.socket?.destroySoon();
    }
    this.subscribers.clear();
  }
}
