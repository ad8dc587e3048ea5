// `ztp device import FILE` and POST /api/v1/devices/import: CSV or JSON, all rows validated
// first; any invalid row ⇒ nothing is imported and every bad row is reported. Idempotent.
import { ZtpError } from '../errors.js';
import { parseDeviceInput, parseRedirectServer, type DeviceInput } from './model.js';
import type { DeviceStore, UpsertOutcome } from './store.js';

export interface RowError {
  row: number;
  serial?: string;
  message: string;
}

export interface ImportResult {
  created: number;
  updated: number;
  unchanged: number;
  rows: { serial: string; outcome: UpsertOutcome }[];
}

/** RFC 4180 CSV: quoted fields, doubled quotes, CRLF or LF. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let i = 0;
  const src = text.replace(/^\uFEFF/, '');
  while (i < src.length) {
    const c = src[i]!;
    if (quoted) {
      if (c === '"' && src[i + 1] === '"') { field += '"'; i += 2; continue; }
      if (c === '"') { quoted = false; i++; continue; }
      field += c; i++; continue;
    }
    if (c === '"' && field === '') { quoted = true; i++; continue; }
    if (c === ',') { row.push(field); field = ''; i++; continue; }
    if (c === '\n' || c === '\r') {
      row.push(field); field = '';
      if (row.some((f) => f !== '')) rows.push(row);
      row = [];
      i += c === '\r' && src[i + 1] === '\n' ? 2 : 1;
      continue;
    }
    field += c; i++;
  }
  if (quoted) throw new ZtpError('DEVICE_IMPORT_INVALID', 'CSV ends inside a quoted field');
  row.push(field);
  if (row.some((f) => f !== '')) rows.push(row);
  return rows;
}

const CSV_COLUMNS: Record<string, keyof DeviceInput> = {
  serial: 'serial', profile: 'profile', password: 'password', signing: 'signing', macs: 'macs', mac: 'macs',
  bootimage: 'bootImage', 'boot-image': 'bootImage', image: 'bootImage', sha256: 'bootImageSha256', bootimagesha256: 'bootImageSha256',
  osname: 'osName', 'os-name': 'osName', osversion: 'osVersion', 'os-version': 'osVersion', redirect: 'redirect',
  parenthost: 'parentHost', 'parent-host': 'parentHost', hwmodel: 'hwModel', 'hw-model': 'hwModel',
  bmcaddress: 'bmc', 'bmc-address': 'bmc', bmc: 'bmc',
};

function csvRecords(text: string): Record<string, unknown>[] {
  const rows = parseCsv(text);
  if (rows.length === 0) return [];
  const header = rows[0]!.map((h) => h.trim().toLowerCase());
  const unknown = header.filter((h) => !CSV_COLUMNS[h] && h !== 'bmcusername' && h !== 'bmc-username' && h !== 'bmcpassword' && h !== 'bmc-password');
  if (unknown.length) throw new ZtpError('DEVICE_IMPORT_INVALID', `unknown CSV column(s): ${unknown.join(', ')}`, { details: { errors: [{ row: 1, message: `unknown column ${unknown[0]}` }] } });
  if (!header.includes('serial')) throw new ZtpError('DEVICE_IMPORT_INVALID', 'CSV needs a "serial" column');
  return rows.slice(1).map((cells) => {
    const record: Record<string, unknown> = {};
    const bmc: Record<string, string> = {};
    header.forEach((h, i) => {
      const value = (cells[i] ?? '').trim();
      if (value === '') return;
      if (h === 'bmcusername' || h === 'bmc-username') bmc.username = value;
      else if (h === 'bmcpassword' || h === 'bmc-password') bmc.password = value;
      else if (CSV_COLUMNS[h] === 'bmc') bmc.address = value;
      else if (CSV_COLUMNS[h] === 'macs') record.macs = value.split(/[;\s]+/).filter(Boolean);
      else if (CSV_COLUMNS[h] === 'redirect') record.redirect = value.split(/[;\s]+/).filter(Boolean);
      else record[CSV_COLUMNS[h]!] = value;
    });
    if (Object.keys(bmc).length) record.bmc = bmc;
    return record;
  });
}

/** Parses and validates every row; throws DEVICE_IMPORT_INVALID listing each bad row. */
export function parseImport(text: string, format: 'csv' | 'json' | 'auto' = 'auto'): DeviceInput[] {
  const kind = format === 'auto' ? (/^\s*[[{]/.test(text) ? 'json' : 'csv') : format;
  let records: unknown[];
  if (kind === 'json') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new ZtpError('DEVICE_IMPORT_INVALID', `import is not valid JSON: ${(err as Error).message}`);
    }
    const list = Array.isArray(parsed) ? parsed : (parsed as { devices?: unknown })?.devices;
    if (!Array.isArray(list)) throw new ZtpError('DEVICE_IMPORT_INVALID', 'JSON import must be a list of devices or {"devices": [...]}');
    records = list;
  } else {
    records = csvRecords(text);
  }
  const errors: RowError[] = [];
  const inputs: DeviceInput[] = [];
  const seen = new Map<string, number>();
  records.forEach((record, index) => {
    const row = kind === 'csv' ? index + 2 : index + 1;
    try {
      const r = record as Record<string, unknown>;
      if (Array.isArray(r?.redirect)) r.redirect = r.redirect.map((x: unknown, i: number) => parseRedirectServer(x, `redirect[${i}]`));
      const input = parseDeviceInput(record);
      const previous = seen.get(input.serial);
      if (previous !== undefined) throw new ZtpError('DEVICE_INVALID', `serial ${input.serial} repeats row ${previous}`);
      seen.set(input.serial, row);
      inputs.push(input);
    } catch (err) {
      const serial = typeof (record as { serial?: unknown })?.serial === 'string' ? (record as { serial: string }).serial : undefined;
      errors.push({ row, ...(serial ? { serial } : {}), message: (err as Error).message });
    }
  });
  if (errors.length > 0) {
    throw new ZtpError('DEVICE_IMPORT_INVALID', `${errors.length} invalid row(s); nothing imported:\n` + errors.map((e) => `  row ${e.row}${e.serial ? ` (${e.serial})` : ''}: ${e.message}`).join('\n'), { details: { errors } });
  }
  return inputs;
}

/** Row numbers as import errors name them: CSV counts the header line, JSON entries from 1. */
export function importRowNumber(text: string, format: 'csv' | 'json' | 'auto' = 'auto'): (index: number) => number {
  const kind = format === 'auto' ? (/^\s*[[{]/.test(text) ? 'json' : 'csv') : format;
  return (index) => (kind === 'csv' ? index + 2 : index + 1);
}

/** Imports validated rows atomically: a row that fails at write time (e.g. a MAC owned elsewhere) rolls back all. */
export function importDevices(store: DeviceStore, inputs: DeviceInput[], actor: string): ImportResult {
  const result: ImportResult = { created: 0, updated: 0, unchanged: 0, rows: [] };
  store.transaction(() => {
    inputs.forEach((input) => {
      const outcome = store.upsert(input, actor);
      result[outcome]++;
      result.rows.push({ serial: input.serial, outcome });
    });
  });
  return result;
}
