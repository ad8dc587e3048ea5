// `ztp bmc-emulator`: N emulated DPU BMCs for labs without hardware (src/redfish/emulator/).
// Prints each BMC's URL and its lab credentials (factory defaults of the emulated vendor, fine to
// print), runs until SIGTERM/SIGINT, closes every listener.
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { ZtpError } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { ensureLabPki } from '../pki/lab.js';
import { DEFAULT_TIMING, ZERO_TIMING, type EmulatorTiming } from '../redfish/emulator/bmc.js';
import { parseFaults } from '../redfish/emulator/faults.js';
import { isQuirkMode, QUIRK_MODES } from '../redfish/emulator/quirks.js';
import { startBmcEmulator, type RunBmcEmulatorOptions, type RunningBmcEmulator } from '../redfish/emulator/runner.js';
import { configFrom, EXIT, globalOptions, table, usageError, type Io } from './common.js';
import type { CliRegistrar } from './main.js';

export interface BmcEmulatorCliOptions {
  count?: string;
  quirks?: string;
  mockup?: string;
  port?: string;
  basePort?: string;
  host?: string;
  publicHost?: string;
  tls?: boolean;
  latency?: string;
  faults?: string;
  powerOnMs?: string;
  powerOffMs?: string;
  taskMs?: string;
  zeroDelays?: boolean;
  mediaCa?: string;
  mediaRead?: string;
  initialPower?: string;
  user?: string;
  password?: string;
}

/** The shared reference data's public-smartnic mockup beside the checkout, when present. */
export function defaultMockupDir(): string | undefined {
  const shared = process.env.ZTP_SHARED ?? resolve(dirname(fileURLToPath(import.meta.url)), '../../../shared');
  const dir = join(shared, 'redfish', 'mockups', 'public-smartnic');
  return existsSync(join(dir, 'index.json')) ? dir : undefined;
}

function int(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw usageError(`--${name} must be an integer from ${min} to ${max}`);
  return n;
}

/** Turns the command's flags into emulator options (every bad value is a usage error, exit 2). */
export async function emulatorOptionsFrom(o: BmcEmulatorCliOptions, dataDir: string, log: Logger): Promise<RunBmcEmulatorOptions & { mockupLabel: string; caFile: string | null }> {
  const count = int('count', o.count, 1, 10_000) ?? 1;
  const quirks = o.quirks ?? 'generic';
  if (!isQuirkMode(quirks)) throw usageError(`--quirks must be one of ${QUIRK_MODES.join(', ')}`);
  if (o.port !== undefined && o.basePort !== undefined) throw usageError('--port and --base-port are exclusive: --base-port gives each BMC its own port');
  const basePort = int('base-port', o.basePort, 0, 65535);
  if (basePort !== undefined && basePort > 0 && basePort + count - 1 > 65535) throw usageError('--base-port + --count exceeds port 65535');
  const mockup = o.mockup === 'builtin' ? undefined : (o.mockup ?? defaultMockupDir());
  if (mockup && !existsSync(join(mockup, 'index.json'))) throw usageError(`--mockup ${mockup}: not a Redfish mockup directory (no index.json)`);
  const timing: EmulatorTiming = { ...(o.zeroDelays ? ZERO_TIMING : DEFAULT_TIMING) };
  timing.powerOnMs = int('power-on-ms', o.powerOnMs, 0, 600_000) ?? timing.powerOnMs;
  timing.powerOffMs = int('power-off-ms', o.powerOffMs, 0, 600_000) ?? timing.powerOffMs;
  timing.taskMs = int('task-ms', o.taskMs, 0, 600_000) ?? timing.taskMs;
  const faults = parseFaults(o.faults ?? '');
  const latency = int('latency', o.latency, 0, 600_000);
  if (latency !== undefined) faults.set('*', { ...(faults.get('*') ?? {}), latencyMs: latency });
  if (o.mediaRead !== undefined && o.mediaRead !== 'sample' && o.mediaRead !== 'full') throw usageError('--media-read must be sample or full');
  if (o.initialPower !== undefined && o.initialPower !== 'On' && o.initialPower !== 'Off') throw usageError('--initial-power must be On or Off');
  const publicHost = o.publicHost;
  // The lab PKI of the data dir: its TLS certificate for --tls, its root CA to trust the suite's
  // HTTPS image server (what a lab installs on its BMCs).
  let https: { cert: string; key: string } | undefined;
  let mediaCa: string | undefined;
  let caFile: string | null = null;
  const labCa = join(resolve(dataDir), 'pki', 'root-ca.crt');
  if (o.tls) {
    const config = { ...configFrom({ dataDir }) };
    const { pki } = await ensureLabPki(resolve(dataDir), config.pki, publicHost ?? hostname(), ['127.0.0.1', 'localhost']);
    https = { cert: pki.tls.certPem, key: pki.tls.keyPem };
    caFile = labCa;
  }
  if (o.mediaCa) {
    if (!existsSync(o.mediaCa)) throw usageError(`--media-ca ${o.mediaCa}: no such file`);
    mediaCa = readFileSync(o.mediaCa, 'utf8');
  } else if (existsSync(labCa)) {
    mediaCa = readFileSync(labCa, 'utf8');
  }
  return {
    count,
    quirks,
    ...(mockup ? { mockupDir: mockup } : {}),
    mockupLabel: mockup ?? 'built-in DPU tree',
    caFile,
    timing,
    faults,
    ...(mediaCa ? { mediaCa } : {}),
    ...(o.mediaRead ? { mediaRead: o.mediaRead as 'sample' | 'full' } : {}),
    ...(o.initialPower ? { initialPower: o.initialPower as 'On' | 'Off' } : {}),
    ...(o.user ? { username: o.user } : {}),
    ...(o.password ? { password: o.password } : {}),
    host: o.host ?? '127.0.0.1',
    ...(publicHost ? { publicHost } : {}),
    // with --base-port the shared prefix listener still runs, on a kernel-picked port
    port: int('port', o.port, 0, 65535) ?? (basePort !== undefined ? 0 : 8000),
    ...(basePort !== undefined ? { basePort } : {}),
    ...(https ? { https } : {}),
    log,
  };
}

/** Prints what is running: a table, or one JSON document with --json. */
export function describeRunning(io: Io, json: boolean, running: RunningBmcEmulator, extra: { mockup: string; caFile: string | null }): void {
  const bmcs = running.endpoints.map((e) => ({ id: e.id, url: e.rootUrl ?? e.url, prefixUrl: e.url, username: e.username, password: e.password, quirks: e.quirks, systemId: e.systemId, serial: e.serial, macs: e.macs }));
  if (json) {
    io.out(JSON.stringify({ url: running.url, mockup: extra.mockup, caFile: extra.caFile, bmcs }, null, 2));
    return;
  }
  const rows = [['ID', 'URL', 'USER', 'PASSWORD', 'QUIRKS', 'SYSTEM', 'SERIAL', 'MACS'], ...bmcs.map((b) => [b.id, b.url, b.username, b.password, b.quirks, b.systemId, b.serial, b.macs.join(',')])];
  io.out(table(rows));
  io.err(`BMC emulator: ${bmcs.length} BMC(s) on ${running.url} (service root <url>/redfish/v1), tree: ${extra.mockup}${extra.caFile ? `, clients trust ${extra.caFile}` : ''}; SIGTERM/SIGINT stops`);
}

export const registerBmcEmulatorCommand: CliRegistrar = (program, action, io) => {
  program
    .command('bmc-emulator')
    .description('emulate N DPU BMCs (Redfish) for labs without hardware')
    .option('--count <n>', 'how many BMCs', '1')
    .option('--quirks <mode>', `vendor behaviour: ${QUIRK_MODES.join('|')}`, 'generic')
    .option('--mockup <dir>', "DMTF mockup directory as the starting tree, or 'builtin' (default: ../shared public-smartnic when present)")
    .option('--port <p>', 'the shared listener: BMCs under /bmc/<id>/redfish/v1 (default 8000)')
    .option('--base-port <p>', 'also one listener per BMC from this port, /redfish/v1 at its root (sushy, Ironic)')
    .option('--host <h>', 'listen address', '127.0.0.1')
    .option('--public-host <h>', 'host name printed in the URLs')
    .option('--tls', "HTTPS with the data dir's lab PKI")
    .option('--latency <ms>', 'delay every response (a fault applied to all BMCs)')
    .option('--faults <spec>', 'fault injection, e.g. 5xx=2/10,bmc-0002@timeout=insert,drop-session=5,stale-etag,media-never-inserted,factory-password,async-actions,drop-connection=reset,no-boot-next')
    .option('--power-on-ms <ms>', `Off → On time (default ${DEFAULT_TIMING.powerOnMs})`)
    .option('--power-off-ms <ms>', `On → Off time (default ${DEFAULT_TIMING.powerOffMs})`)
    .option('--task-ms <ms>', `task run time (default ${DEFAULT_TIMING.taskMs})`)
    .option('--zero-delays', 'every transition completes at once (benchmarks)')
    .option('--media-ca <file>', "PEM bundle the BMCs trust for https:// media (default: the data dir's lab root CA)")
    .option('--media-read <mode>', 'sample (HEAD + spread range reads) or full (every byte in ranges)')
    .option('--initial-power <state>', 'On or Off (default Off)')
    .option('--user <name>', "account name (default: the vendor's factory user)")
    .option('--password <p>', "account password (default: the vendor's factory password)")
    .action(
      action(async (cmd: Command) => {
        const g = globalOptions(cmd);
        const o = cmd.opts() as BmcEmulatorCliOptions;
        const config = configFrom(g);
        const log = createLogger(config.logLevel).child({ service: 'bmc-emulator' });
        const { mockupLabel, caFile, ...opts } = await emulatorOptionsFrom(o, config.dataDir, log);
        let running: RunningBmcEmulator;
        try {
          running = await startBmcEmulator(opts);
        } catch (err) {
          const e = err as NodeJS.ErrnoException;
          if (e.code === 'EADDRINUSE' || e.code === 'EACCES') throw new ZtpError('CONFIG_INVALID', `cannot listen: ${e.message}`, { cause: err });
          throw err;
        }
        describeRunning(io, g.json === true, running, { mockup: mockupLabel, caFile });
        await new Promise<void>((resolveStop) => {
          const stop = (signal: string) => {
            log.info({ signal }, 'BMC emulator shutting down');
            const force = setTimeout(() => process.exit(EXIT.ERROR), 10_000);
            force.unref();
            running.close().then(resolveStop, (err: unknown) => {
              log.error({ err }, 'BMC emulator did not close cleanly');
              resolveStop();
            });
          };
          process.once('SIGTERM', () => stop('SIGTERM'));
          process.once('SIGINT', () => stop('SIGINT'));
        });
        return EXIT.OK;
      }),
    );
};
