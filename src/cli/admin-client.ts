// How CLI commands that need the running server (`ztp onboard`) reach it: the admin API of
// `ztp serve`, found from the same configuration (api.host/api.port, the token from config or
// <dataDir>/admin-token), or --server/--token. Errors come back as the server's typed codes, so
// exit codes are the same as for local commands.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Config } from '../config.js';
import { ERROR_CATALOGUE, ZtpError, errorMessage, type ErrorCode } from '../errors.js';

export interface AdminClientOptions {
  server?: string | undefined;
  token?: string | undefined;
}

export class AdminClient {
  constructor(
    readonly base: string,
    private readonly token: string,
    private readonly timeoutMs = 15_000,
  ) {}

  static from(config: Config, opts: AdminClientOptions): AdminClient {
    const host = ['0.0.0.0', '::', ''].includes(config.api.host) ? '127.0.0.1' : config.api.host;
    const base = (opts.server ?? `http://${host.includes(':') ? `[${host}]` : host}:${config.api.port}`).replace(/\/+$/, '');
    let token = opts.token ?? config.api.token;
    if (!token) {
      const file = join(resolve(config.dataDir), 'admin-token');
      if (existsSync(file)) token = readFileSync(file, 'utf8').trim();
    }
    if (!token) throw new ZtpError('ONBOARDING_SERVER_UNREACHABLE', `no admin token: start ztp serve with this --data-dir (it writes admin-token) or pass --token`);
    return new AdminClient(base, token);
  }

  async request<T>(method: 'GET' | 'POST', path: string, body?: unknown, contentType = 'application/json'): Promise<T> {
    let res: Response;
    try {
      res = await fetch(this.base + path, {
        method,
        headers: { authorization: `Bearer ${this.token}`, ...(body !== undefined ? { 'content-type': contentType } : {}) },
        ...(body !== undefined ? { body: typeof body === 'string' ? body : body instanceof Uint8Array ? new Blob([new Uint8Array(body)]) : JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw unreachable(this.base, err);
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      throw new ZtpError('ONBOARDING_SERVER_UNREACHABLE', `${this.base} answered ${res.status} with something that is not JSON: is it ztp serve?`);
    }
    if (!res.ok) throw fromApiError(res.status, parsed);
    return parsed as T;
  }

  /** Server-Sent Events from `path`; resolves when the stream ends or `signal` aborts. */
  async stream(path: string, onEvent: (event: string, data: unknown, id: number | undefined) => void, signal: AbortSignal): Promise<void> {
    let res: Response;
    try {
      res = await fetch(this.base + path, { headers: { authorization: `Bearer ${this.token}`, accept: 'text/event-stream' }, signal });
    } catch (err) {
      if (signal.aborted) return;
      throw unreachable(this.base, err);
    }
    if (!res.ok || !res.body) throw fromApiError(res.status, await res.json().catch(() => ({})));
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let event = 'message';
          let id: number | undefined;
          const data: string[] = [];
          for (const line of frame.split('\n')) {
            if (line.startsWith('event: ')) event = line.slice(7);
            else if (line.startsWith('id: ')) id = Number(line.slice(4));
            else if (line.startsWith('data: ')) data.push(line.slice(6));
          }
          if (data.length) onEvent(event, JSON.parse(data.join('\n')) as unknown, id);
        }
      }
    } catch (err) {
      if (signal.aborted) return;
      throw unreachable(this.base, err);
    }
  }
}

function unreachable(base: string, err: unknown): ZtpError {
  return new ZtpError('ONBOARDING_SERVER_UNREACHABLE', `cannot reach ztp serve at ${base} (${errorMessage(err)}); is it running? (--server URL)`, { cause: err });
}

function fromApiError(status: number, body: unknown): ZtpError {
  const e = (body as { error?: { code?: string; message?: string; details?: Record<string, unknown> } })?.error;
  const code = e?.code && e.code in ERROR_CATALOGUE ? (e.code as ErrorCode) : status === 401 ? 'API_UNAUTHORIZED' : 'API_BAD_REQUEST';
  return new ZtpError(code, e?.message ?? `admin API answered ${status}`, { status, ...(e?.details ? { details: e.details } : {}) });
}
