// The lab's client of a running suite's admin API (/api/v1, bearer token): registers the
// lab's devices and makes sure its boot image is in the catalogue. Every call has a timeout;
// errors come back as typed ZtpErrors naming the call.
import { ZtpError } from '../errors.js';

export interface AdminApi {
  /** http://host:port of the admin API */
  url: string;
  token: string;
  timeoutMs?: number;
}

async function call(api: AdminApi, method: string, path: string, body?: { type: string; data: string | Uint8Array }): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(api.url.replace(/\/+$/, '') + path, {
      method,
      headers: { authorization: `Bearer ${api.token}`, ...(body ? { 'content-type': body.type } : {}) },
      ...(body ? { body: typeof body.data === 'string' ? body.data : new Blob([new Uint8Array(body.data)]) } : {}),
      signal: AbortSignal.timeout(api.timeoutMs ?? 60_000),
    });
  } catch (err) {
    throw new ZtpError('ONBOARDING_SERVER_UNREACHABLE', `admin API ${api.url}: ${(err as Error).message}`, { cause: err });
  }
  const text = await res.text();
  const parsed = text ? (JSON.parse(text) as unknown) : undefined;
  if (!res.ok) {
    const e = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
    throw new ZtpError('SIM_INVALID', `admin API ${method} ${path}: HTTP ${res.status} ${e?.code ?? ''} ${e?.message ?? text.slice(0, 300)}`.trim(), { details: { status: res.status } });
  }
  return parsed;
}

/** Registers (or updates: idempotent) the devices in one atomic import. */
export async function registerDevices(api: AdminApi, records: Record<string, unknown>[]): Promise<{ created: number; updated: number; unchanged: number }> {
  return (await call(api, 'POST', '/api/v1/devices/import', { type: 'application/json', data: JSON.stringify({ devices: records }) })) as { created: number; updated: number; unchanged: number };
}

export interface ImageInfo {
  name: string;
  sha256: string;
  size: number;
  urls: { bmc: string; device: string };
}

/** Uploads `bytes` as image `name` (idempotent for the same bytes). */
export async function ensureImage(api: AdminApi, name: string, bytes: Buffer): Promise<ImageInfo> {
  const out = (await call(api, 'POST', `/api/v1/images?name=${encodeURIComponent(name)}`, { type: 'application/octet-stream', data: bytes })) as { image: ImageInfo };
  return out.image;
}

export async function getImage(api: AdminApi, name: string): Promise<ImageInfo> {
  const out = (await call(api, 'GET', `/api/v1/images/${encodeURIComponent(name)}`)) as { image?: ImageInfo } & ImageInfo;
  return out.image ?? out;
}
