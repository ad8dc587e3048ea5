// How a BMC "mounts" a virtual-media URL: it never downloads the whole ISO up front. It sends a
// HEAD for the size (and whether ranges are accepted), then reads the file in ranges as the host
// asks for sectors: the ISO 9660 system area and volume descriptors at the start (sector 16 is
// the Primary Volume Descriptor, byte 32768), the El Torito boot catalogue, then scattered
// blocks. We do the same: HEAD, then `reads` Range GETs spread over the file (first, evenly
// spaced, last), each answered 206 or the mount fails. `full` mode reads every byte in ranges
// (a BFB push over RShim, or an installer that copies the whole ISO).
// HTTP and HTTPS through undici with a CA bundle the BMC is given; timeouts on every request.
import { Agent, request } from 'undici';

export interface MediaFetchOptions {
  /** PEM bundle the image server's certificate must chain to (default: the system store) */
  ca?: string;
  /** connect, headers and body timeouts, ms */
  timeoutMs?: number;
  /** range size, bytes */
  chunkBytes?: number;
  /** ranged reads in sample mode (≥ 2: first and last) */
  reads?: number;
}

export interface FetchOutcome {
  ok: boolean;
  /** Content-Length from the HEAD */
  size: number;
  bytesRead: number;
  requests: number;
  /** why it failed: 'unreachable' | 'tls' | 'http-<status>' | 'no-ranges' | 'timeout' | 'short-read' */
  reason?: string;
  status?: number;
  detail?: string;
}

const USER_AGENT = 'dpu-ztp-bmc-emulator/1.0 (virtual media)';

export class MediaFetcher {
  private readonly agent: Agent;
  private readonly timeoutMs: number;
  private readonly chunkBytes: number;
  private readonly reads: number;

  constructor(opts: MediaFetchOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.chunkBytes = opts.chunkBytes ?? 64 * 1024;
    this.reads = Math.max(2, opts.reads ?? 8);
    this.agent = new Agent({
      connect: { timeout: this.timeoutMs, ...(opts.ca ? { ca: opts.ca } : {}) },
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
      keepAliveTimeout: 4_000,
      connections: 64,
    });
  }

  /** HEAD then ranged reads; never throws (the outcome says why). */
  async mount(url: string, mode: 'sample' | 'full' = 'sample', signal?: AbortSignal): Promise<FetchOutcome> {
    const outcome: FetchOutcome = { ok: false, size: 0, bytesRead: 0, requests: 0 };
    try {
      const head = await request(url, { method: 'HEAD', dispatcher: this.agent, headers: { 'user-agent': USER_AGENT }, signal });
      outcome.requests++;
      await head.body.dump();
      if (head.statusCode >= 400) return { ...outcome, reason: `http-${head.statusCode}`, status: head.statusCode };
      const size = Number(head.headers['content-length']);
      if (!Number.isFinite(size) || size <= 0) return { ...outcome, reason: 'no-length', status: head.statusCode };
      outcome.size = size;
      const chunk = Math.min(this.chunkBytes, size);
      const offsets: number[] = [];
      if (mode === 'full') {
        for (let at = 0; at < size; at += chunk) offsets.push(at);
      } else {
        const n = Math.min(this.reads, Math.ceil(size / chunk));
        for (let i = 0; i < n; i++) offsets.push(n === 1 ? 0 : Math.floor(((size - chunk) * i) / (n - 1)));
      }
      for (const start of [...new Set(offsets)]) {
        const end = Math.min(size, start + chunk) - 1;
        const res = await request(url, { method: 'GET', dispatcher: this.agent, headers: { 'user-agent': USER_AGENT, range: `bytes=${start}-${end}` }, signal });
        outcome.requests++;
        if (res.statusCode !== 206) {
          await res.body.dump();
          return { ...outcome, reason: res.statusCode >= 400 ? `http-${res.statusCode}` : 'no-ranges', status: res.statusCode };
        }
        let got = 0;
        for await (const part of res.body) got += (part as Buffer).length;
        outcome.bytesRead += got;
        if (got !== end - start + 1) return { ...outcome, reason: 'short-read', detail: `range ${start}-${end} gave ${got} bytes` };
      }
      return { ...outcome, ok: true };
    } catch (err) {
      const e = err as Error & { code?: string; cause?: { code?: string } };
      const code = e.code ?? e.cause?.code ?? '';
      const reason = /TIMEOUT/i.test(code) ? 'timeout' : /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY/i.test(code + e.message) ? 'tls' : 'unreachable';
      return { ...outcome, reason, detail: `${code} ${e.message}`.trim() };
    }
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}
