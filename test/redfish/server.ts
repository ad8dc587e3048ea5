// A small real HTTP(S) Redfish server for the client's tests: serves a DMTF mockup directory as a
// static tree (GET only, <dir>/index.json per resource), records every request, and can be told
// to accept PATCH (merged into its copy of the tree), to run a session service, to send ETags,
// or to answer a request its own way (faults). Not an emulator: no power, media or task logic.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { join } from 'node:path';

export interface Recorded {
  method: string;
  /** path without the prefix and without a trailing slash */
  path: string;
  /** the query string, '' when none */
  query: string;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  /** an object is sent as JSON, a string as is */
  body?: unknown;
  delayMs?: number;
  /** reset the connection instead of answering */
  destroy?: boolean;
  /** never answer (the client's timeout must fire) */
  hang?: boolean;
  /** send the headers and the first bytes of the body, then stall */
  stallBody?: boolean;
}

export interface TestBmcOptions {
  /** a mockup directory whose root index.json is /redfish/v1 */
  mockup?: string;
  /** resources by path ('/redfish/v1/…'), laid over the mockup */
  tree?: Record<string, unknown>;
  tls?: { certPem: string; keyPem: string };
  /** path prefix the BMC lives under, e.g. '/bmc7' */
  prefix?: string;
  /** merge PATCH bodies into the tree and answer 204 (else 405, as a static tree does) */
  acceptPatch?: boolean;
  /** a session service at /redfish/v1/SessionService/Sessions checking these credentials */
  sessions?: { username: string; password: string };
  /** Basic credentials required on everything but the service root */
  basic?: { username: string; password: string };
  /** send ETag headers (weak, from the resource's JSON) and check If-Match on PATCH */
  etags?: 'weak' | 'strong';
  /** answers before the static tree; undefined falls through */
  handler?: (req: Recorded, bmc: TestBmc) => Reply | undefined | Promise<Reply | undefined>;
}

export class TestBmc {
  readonly requests: Recorded[] = [];
  readonly liveSessions = new Set<string>();
  readonly deletedSessions: string[] = [];
  private readonly resources = new Map<string, unknown>();
  private readonly sockets = new Set<Socket>();
  private sessionSeq = 0;
  private inFlight = 0;
  /** the most requests this server saw in flight at once */
  maxInFlight = 0;
  private readonly tokens = new Map<string, string>();
  url = '';

  private constructor(
    readonly options: TestBmcOptions,
    private readonly server: Server,
  ) {}

  static async start(options: TestBmcOptions = {}): Promise<TestBmc> {
    const holder: { bmc?: TestBmc } = {};
    const listener = (req: IncomingMessage, res: ServerResponse) => {
      holder.bmc!.handle(req, res).catch((err) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(String(err));
      });
    };
    const server = options.tls ? createHttpsServer({ cert: options.tls.certPem, key: options.tls.keyPem }, listener) : createHttpServer(listener);
    const bmc = new TestBmc(options, server);
    holder.bmc = bmc;
    for (const [path, value] of Object.entries(options.tree ?? {})) bmc.resources.set(normalize(path), structuredClone(value));
    server.on('connection', (s: Socket) => {
      bmc.sockets.add(s);
      s.on('close', () => bmc.sockets.delete(s));
    });
    server.on('secureConnection', (s: Socket) => {
      bmc.sockets.add(s);
      s.on('close', () => bmc.sockets.delete(s));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    bmc.url = `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}${options.prefix ?? ''}`;
    return bmc;
  }

  /** The resource at `path` (from the tree or the mockup), or undefined. */
  resource(path: string): Record<string, unknown> | undefined {
    const key = normalize(path);
    if (this.resources.has(key)) return this.resources.get(key) as Record<string, unknown> | undefined;
    if (!this.options.mockup || !key.startsWith('/redfish/v1')) return undefined;
    const file = join(this.options.mockup, key.slice('/redfish/v1'.length), 'index.json');
    if (!existsSync(file)) return undefined;
    const value = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    this.resources.set(key, value);
    return value;
  }

  set(path: string, value: unknown): void {
    this.resources.set(normalize(path), value);
  }

  requestsOf(method: string, pathPart?: string | RegExp): Recorded[] {
    return this.requests.filter((r) => r.method === method && (pathPart === undefined || (typeof pathPart === 'string' ? r.path.includes(pathPart) : pathPart.test(r.path))));
  }

  etagOf(value: unknown): string {
    const hash = createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 12);
    return this.options.etags === 'strong' ? `"${hash}"` : `W/"${hash}"`;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    let body: unknown = text;
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
    } else body = undefined;
    const [rawPath, query = ''] = (req.url ?? '/').split('?');
    let path = rawPath!;
    const prefix = this.options.prefix ?? '';
    if (prefix && path.startsWith(prefix)) path = path.slice(prefix.length);
    const rec: Recorded = { method: req.method ?? 'GET', path: normalize(path), query: decodeURIComponent(query), headers: req.headers, body };
    this.requests.push(rec);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    res.on('close', () => this.inFlight--);
    const custom = await this.options.handler?.(rec, this);
    const reply = custom ?? this.staticReply(rec);
    if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs));
    if (reply.hang) return; // the socket is destroyed at close()
    if (reply.destroy) {
      req.socket.destroy();
      return;
    }
    const headers: Record<string, string> = { 'odata-version': '4.0', ...reply.headers };
    let payload = '';
    if (reply.body !== undefined) {
      if (typeof reply.body === 'string') payload = reply.body;
      else {
        payload = JSON.stringify(reply.body);
        headers['content-type'] ??= 'application/json; charset=utf-8';
      }
    }
    if (reply.stallBody) {
      res.writeHead(reply.status, { ...headers, 'content-length': String(payload.length + 100) });
      res.write(payload.slice(0, 5));
      return;
    }
    res.writeHead(reply.status, headers);
    res.end(payload);
  }

  private authorized(rec: Recorded): boolean {
    const token = rec.headers['x-auth-token'];
    if (typeof token === 'string' && this.tokens.has(token)) return true;
    const creds = this.options.basic ?? this.options.sessions;
    const auth = rec.headers.authorization;
    if (creds && typeof auth === 'string' && auth.startsWith('Basic ')) {
      return Buffer.from(auth.slice(6), 'base64').toString() === `${creds.username}:${creds.password}`;
    }
    return !this.options.basic && !this.options.sessions;
  }

  /** Revoke every session (the client must log in again on the 401 that follows). */
  dropSessions(): void {
    this.tokens.clear();
    this.liveSessions.clear();
  }

  private staticReply(rec: Recorded): Reply {
    const sessions = '/redfish/v1/SessionService/Sessions';
    if (this.options.sessions && rec.method === 'POST' && rec.path === sessions) {
      const b = (rec.body ?? {}) as Record<string, unknown>;
      if (b.UserName !== this.options.sessions.username || b.Password !== this.options.sessions.password) {
        return { status: 401, body: redfishError('Base.1.8.NoValidSession', 'There is no valid session established with the implementation.') };
      }
      const id = String(++this.sessionSeq);
      const token = randomBytes(16).toString('hex');
      const location = `${sessions}/${id}`;
      this.tokens.set(token, location);
      this.liveSessions.add(location);
      return { status: 201, headers: { 'x-auth-token': token, location: `${this.options.prefix ?? ''}${location}` }, body: { '@odata.id': location, Id: id, UserName: b.UserName } };
    }
    if (this.options.sessions && rec.method === 'DELETE' && rec.path.startsWith(sessions + '/')) {
      const token = rec.headers['x-auth-token'];
      if (typeof token !== 'string' || !this.tokens.has(token)) return { status: 401, body: redfishError('Base.1.8.NoValidSession', 'no session') };
      this.tokens.delete(token);
      this.liveSessions.delete(rec.path);
      this.deletedSessions.push(rec.path);
      return { status: 204 };
    }
    if (rec.path !== '/redfish/v1' && !this.authorized(rec)) {
      return { status: 401, headers: { 'www-authenticate': 'Basic realm="bmc"' }, body: redfishError('Base.1.8.NoValidSession', 'There is no valid session established with the implementation.') };
    }
    const resource = this.resource(rec.path);
    if (rec.method === 'GET') {
      if (resource === undefined) return { status: 404, body: redfishError('Base.1.8.ResourceMissingAtURI', `The resource at the URI ${rec.path} was not found.`) };
      const headers: Record<string, string> = {};
      if (this.options.etags) headers.etag = this.etagOf(resource);
      if (this.options.acceptPatch) headers.allow = 'GET, PATCH';
      return { status: 200, headers, body: resource };
    }
    if (rec.method === 'PATCH' && this.options.acceptPatch && resource !== undefined) {
      if (this.options.etags && typeof rec.headers['if-match'] === 'string' && rec.headers['if-match'] !== this.etagOf(resource)) {
        return { status: 412, body: redfishError('Base.1.8.PreconditionFailed', 'The ETag supplied did not match the ETag required to change this resource.') };
      }
      mergePatch(resource as Record<string, unknown>, rec.body as Record<string, unknown>);
      return { status: 204 };
    }
    // A static tree: nothing but GET.
    return { status: 405, headers: { allow: 'GET' }, body: redfishError('Base.1.8.OperationNotAllowed', 'The HTTP method is not allowed on this resource.') };
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** RFC 7396 JSON merge patch. */
function mergePatch(target: Record<string, unknown>, patch: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(patch ?? {})) {
    if (v === null) delete target[k];
    else if (typeof v === 'object' && !Array.isArray(v) && typeof target[k] === 'object' && target[k] !== null) mergePatch(target[k] as Record<string, unknown>, v as Record<string, unknown>);
    else target[k] = v;
  }
}

function normalize(path: string): string {
  const p = path.replace(/\/+$/, '');
  return p === '' ? '/' : p;
}

export function redfishError(messageId: string, message: string, extra: Record<string, unknown> = {}): unknown {
  return {
    error: {
      code: 'Base.1.8.GeneralError',
      message: 'A general error has occurred. See ExtendedInfo for more information.',
      '@Message.ExtendedInfo': [{ MessageId: messageId, Message: message, Severity: 'Critical', MessageSeverity: 'Critical', ...extra }],
    },
  };
}
