// Shared plumbing of the `ztp` command: stable exit codes, --json output, opening the suite's
// storage from the same configuration `ztp serve` uses.
import type { Command } from 'commander';
import { loadConfig, type Config } from '../config.js';
import { openDatabase, type Db } from '../db/database.js';
import { DeviceStore } from '../devices/store.js';
import { isZtpError, ZtpError, type ErrorCode } from '../errors.js';
import { join, resolve } from 'node:path';

/** Exit codes are part of the CLI contract for fleet scripts: never renumber. */
export const EXIT = {
  OK: 0,
  ERROR: 1,
  USAGE: 2,
  NOT_FOUND: 3,
  INVALID: 4,
  CONFLICT: 5,
  UNAVAILABLE: 6,
  /** ztp onboard --wait: a device failed (or was aborted) */
  ONBOARDING_FAILED: 7,
  /** ztp onboard --wait: a device timed out at a step, or --timeout passed first */
  ONBOARDING_TIMED_OUT: 8,
} as const;

const EXIT_BY_CODE: Partial<Record<ErrorCode, number>> = {
  CONFIG_INVALID: EXIT.USAGE,
  CLI_USAGE: EXIT.USAGE,
  CONFIG_UNKNOWN_KEY: EXIT.USAGE,
  DEVICE_NOT_FOUND: EXIT.NOT_FOUND,
  IMAGES_NOT_FOUND: EXIT.NOT_FOUND,
  API_NOT_FOUND: EXIT.NOT_FOUND,
  DEVICE_INVALID: EXIT.INVALID,
  DEVICE_IMPORT_INVALID: EXIT.INVALID,
  IMAGES_INVALID: EXIT.INVALID,
  IMAGES_DIGEST_MISMATCH: EXIT.INVALID,
  PKI_INVALID_CERT: EXIT.INVALID,
  DEVICE_IN_USE: EXIT.CONFLICT,
  IMAGES_IN_USE: EXIT.CONFLICT,
  IMAGES_NAME_TAKEN: EXIT.CONFLICT,
  IMAGES_FETCH_FAILED: EXIT.UNAVAILABLE,
  IMAGES_STORAGE_FULL: EXIT.UNAVAILABLE,
  IMAGES_TOO_LARGE: EXIT.INVALID,
  DHCP_DISABLED: EXIT.UNAVAILABLE,
  REDFISH_UNREACHABLE: EXIT.UNAVAILABLE,
  REDFISH_TIMEOUT: EXIT.UNAVAILABLE,
  ONBOARDING_NOT_FOUND: EXIT.NOT_FOUND,
  ONBOARDING_INVALID: EXIT.INVALID,
  ONBOARDING_CONFLICT: EXIT.CONFLICT,
  ONBOARDING_DISABLED: EXIT.UNAVAILABLE,
  ONBOARDING_SERVER_UNREACHABLE: EXIT.UNAVAILABLE,
  REDFISH_UNAVAILABLE: EXIT.UNAVAILABLE,
  REDFISH_NOT_FOUND: EXIT.NOT_FOUND,
  REDFISH_SYSTEM_NOT_FOUND: EXIT.NOT_FOUND,
  REDFISH_INVALID_ENDPOINT: EXIT.INVALID,
  REDFISH_TLS_FAILED: EXIT.INVALID,
  LISTEN_PORT_IN_USE: EXIT.UNAVAILABLE,
};

export function exitCodeFor(err: unknown): number {
  if (isZtpError(err)) return EXIT_BY_CODE[err.code] ?? EXIT.ERROR;
  return EXIT.ERROR;
}

export interface GlobalOptions {
  json?: boolean;
  configFile?: string;
  dataDir?: string;
}

/** Options of the root command (--json, --config, --data-dir), wherever they were given. */
export function globalOptions(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals() as GlobalOptions;
}

export function configFrom(opts: GlobalOptions, extraFlags: Record<string, string> = {}): Config {
  const flags: Record<string, string> = { ...extraFlags };
  if (opts.dataDir) flags['data-dir'] = opts.dataDir;
  return loadConfig({ file: opts.configFile, flags });
}

export interface Storage {
  config: Config;
  db: Db;
  store: DeviceStore;
  dbFile: string;
  close(): void;
}

export function databaseFile(config: Config): string {
  return join(resolve(config.dataDir), 'ztp.db');
}

export function openStorage(opts: GlobalOptions): Storage {
  const config = configFrom(opts);
  const dbFile = databaseFile(config);
  const db = openDatabase({ file: dbFile });
  return { config, db, store: new DeviceStore(db), dbFile, close: () => db.close() };
}

/** Output sink so commands are testable without a process: main() passes process streams. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** stdout is a terminal (live displays redraw in place) */
  tty?: boolean;
}

export const processIo: Io = {
  out: (t) => process.stdout.write(t.endsWith('\n') ? t : t + '\n'),
  err: (t) => process.stderr.write(t.endsWith('\n') ? t : t + '\n'),
  tty: process.stdout.isTTY === true,
};

export function printResult(io: Io, opts: GlobalOptions, value: unknown, human: () => string): void {
  io.out(opts.json ? JSON.stringify(value, null, 2) : human());
}

export function printError(io: Io, opts: GlobalOptions, err: unknown): void {
  if (opts.json) {
    const body = isZtpError(err)
      ? { error: { code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) } }
      : { error: { code: 'ERROR', message: (err as Error)?.message ?? String(err) } };
    io.err(JSON.stringify(body));
  } else {
    io.err(`ztp: ${isZtpError(err) ? err.message : ((err as Error)?.message ?? String(err))}`);
  }
}

export function table(rows: string[][]): string {
  if (rows.length === 0) return '';
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

export function usageError(message: string): ZtpError {
  return new ZtpError('CONFIG_INVALID', message);
}
