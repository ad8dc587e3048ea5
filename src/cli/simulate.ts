// `ztp simulate --count N`: a virtual lab (src/simulate/) against a running `ztp serve`: N
// simulated DPUs, each behind its own emulated BMC (the Redfish emulator, one listener), or
// without BMCs ("racked and powered by hand"). It makes sure the boot image is in the catalogue,
// registers the devices through the admin API (serial, MACs, profile, BMC URL and credentials),
// optionally starts their onboarding, prints what it started, and runs until SIGTERM/SIGINT:
// then it stops the DPUs, closes the BMCs and prints what happened (runs, the BMCs' counters).
// The devices stay registered (their history with them); running it again updates them.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import pino from 'pino';
import { isZtpError } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { imagePath } from '../images/paths.js';
import { issueDeviceIdentity, splitPem } from '../pki/lab.js';
import type { PemKeyPair, SuitePki } from '../pki/material.js';
import { isQuirkMode, QUIRK_MODES } from '../redfish/emulator/quirks.js';
import { emulatedBmcs } from '../simulate/bmcs.js';
import { directDhcp, NetnsDhcp, type DhcpPath } from '../simulate/dhcp.js';
import type { DpuRun } from '../simulate/dpu.js';
import { parseFaultPlan, VirtualLab, type LabDevice, type LabProfile } from '../simulate/lab.js';
import { AdminClient } from './admin-client.js';
import { configFrom, EXIT, globalOptions, table, usageError } from './common.js';
import type { CliRegistrar } from './main.js';

export interface SimulateCliOptions {
  count: string;
  profile: string;
  faults?: string;
  prefix: string;
  macTag: string;
  image?: string;
  imageSize: string;
  bmc: boolean;
  bmcHost: string;
  bmcPort: string;
  quirks: string;
  powerOnMs?: string;
  bootstrapUrl?: string;
  dhcp: string;
  dhcpInterface?: string;
  dhcpAddress?: string;
  basicAuth?: boolean;
  onboard?: boolean;
  restart?: boolean;
  concurrency?: string;
  server?: string;
  token?: string;
}

interface ImageInfo {
  name: string;
  sha256: string;
  size: number;
  urls: { bmc: string; device: string };
}

interface OnboardResult {
  serial: string;
  outcome: string;
  reason?: string;
  job?: { status: string; step: string; attempt: number };
}

function int(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw usageError(`--${name} must be a whole number from ${min} to ${max}`);
  return n;
}

/** The same bytes for the same size on every run (the upload is then idempotent): a sha-256 stream. */
export function labImage(size: number): Buffer {
  const out = Buffer.alloc(size);
  let block = createHash('sha256').update('dpu-ztp simulated DPU OS').digest();
  for (let off = 0; off < size; off += block.length) {
    block.copy(out, off);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

/**
 * The lab PKI ztp serve keeps in its data directory, read (never generated or rewritten: it is
 * the suite's): the root CA its TLS certificate chains to, the MASA CA of its vouchers, the
 * IDevID CA the lab devices' identities are issued under.
 */
export function labPki(dataDir: string): { rootCaPem: string; masaCaPem: string; idevidCa: PemKeyPair } {
  const dir = join(resolve(dataDir), 'pki');
  const read = (file: string) => {
    const path = join(dir, file);
    if (!existsSync(path)) throw usageError(`no lab PKI in ${dir} (${file} is missing): give ztp simulate the data directory of ztp serve (--data-dir or ZTP_DATA_DIR)`);
    return readFileSync(path, 'utf8');
  };
  const idevidCa = read('idevid-ca.crt');
  const idevidRoot = read('idevid-root-ca.crt');
  return {
    rootCaPem: read('root-ca.crt'),
    masaCaPem: read('masa-ca.crt'),
    idevidCa: { certPem: [...splitPem(idevidCa).slice(0, 1), ...splitPem(idevidRoot).slice(0, 1)].join(''), keyPem: read('idevid-ca.key') },
  };
}

function describeRun(serial: string, run: DpuRun): Record<string, unknown> {
  return {
    serial,
    via: run.booting.via,
    outcome: run.outcome,
    ...(run.stage ? { stage: run.stage } : {}),
    ...(run.error ? { error: run.error } : {}),
    ...(run.firmware ? { firmware: { url: run.firmware.url, bytes: run.firmware.bytes, requests: run.firmware.requests } } : {}),
    reports: run.agent?.reports ?? [],
    ...(run.agent?.refusedReports.length ? { refusedReports: run.agent.refusedReports } : {}),
    durationMs: run.durationMs,
  };
}

function deviceLine(d: LabDevice): Record<string, unknown> {
  return {
    serial: d.serial,
    profile: d.profile,
    macs: d.macs,
    faults: [...d.faults.dpu, ...d.faults.bmc.map((f) => `bmc/${f}`)],
    ...(d.bmc ? { bmc: { id: d.bmc.id, url: d.bmc.url, username: d.bmc.username, password: d.bmc.password, systemId: d.bmc.systemId } } : {}),
  };
}

/** SIGTERM or SIGINT, whichever comes first (`cancel` drops the listeners). */
function untilSignal(): { signal: Promise<string>; cancel(): void } {
  let cancel = () => undefined as void;
  const signal = new Promise<string>((resolve) => {
    const term = () => on('SIGTERM');
    const int = () => on('SIGINT');
    cancel = () => {
      process.off('SIGTERM', term);
      process.off('SIGINT', int);
    };
    const on = (name: string) => {
      cancel();
      resolve(name);
    };
    process.once('SIGTERM', term);
    process.once('SIGINT', int);
  });
  return { signal, cancel };
}

async function dhcpPath(o: SimulateCliOptions, log: Logger): Promise<DhcpPath> {
  if (o.dhcp === 'direct') return directDhcp(log);
  if (o.dhcp === 'netns') {
    const path = await NetnsDhcp.create({ log, ...(o.dhcpInterface ? { hostInterface: o.dhcpInterface } : {}), ...(o.dhcpAddress ? { hostAddress: o.dhcpAddress } : {}) });
    log.info({ namespace: path.namespace, hostInterface: path.hostInterface, hostAddress: path.hostAddress }, 'DHCP path: netns (udhcpc per DPU MAC; point ZTP_DHCP_INTERFACE of ztp serve at the host interface)');
    return path;
  }
  throw usageError('--dhcp must be direct or netns');
}

export const registerSimulateCommand: CliRegistrar = (program, action, io) => {
  program
    .command('simulate')
    .description('a virtual lab against a running ztp serve: N simulated DPUs behind emulated BMCs, registered (and onboarded with --onboard); runs until SIGTERM/SIGINT')
    .option('--count <n>', 'how many simulated DPUs', '1')
    .option('--profile <p>', 'agent profile: rfc8572, opi or mixed (alternating)', 'mixed')
    .option('--faults <spec>', 'fault plan NAME[:N|:P%],…: bad-image-hash, agent-crash, wrong-password, never-boots, bad-script, bmc/<emulator fault> (one fault per device, from the first)')
    .option('--prefix <p>', 'serial numbers <prefix>-0001 …', 'SIM')
    .option('--mac-tag <hex>', 'second MAC byte (02:<tag>:…), so that two labs do not share MACs', '7a')
    .option('--image <name>', 'boot image from the catalogue (default: a generated sim-os-<size>.img, uploaded)')
    .option('--image-size <bytes>', 'size of the generated boot image', '262144')
    .option('--no-bmc', 'no BMCs: the devices are powered by hand (with --onboard, the lab boots them over UEFI HTTP)')
    .option('--bmc-host <h>', 'listen address of the emulated BMCs (ztp serve must reach it)', '127.0.0.1')
    .option('--bmc-port <p>', 'port of the emulated BMCs (one listener, /bmc/<id>/redfish/v1; 0: any)', '0')
    .option('--quirks <mode>', `BMC vendor behaviour: ${QUIRK_MODES.join('|')}`, 'generic')
    .option('--power-on-ms <ms>', 'BMC Off → On time (default 0)')
    .option('--bootstrap-url <url>', 'the bootstrap server as the DPUs reach it (default https://<public host>:<bootstrap port>)')
    .option('--dhcp <path>', 'direct (no DHCP on the wire) or netns (udhcpc in a network namespace, root)', 'direct')
    .option('--dhcp-interface <name>', 'with --dhcp netns: the host-side interface ztp serve answers DHCP on')
    .option('--dhcp-address <cidr>', 'with --dhcp netns: the host-side address and prefix (default 10.231.0.1/24; serve a dhcp.subnets entry for it)')
    .option('--basic-auth', 'every device also gets an HTTP Basic password (sim-<serial>)')
    .option('--onboard', 'start onboarding the lab devices once registered')
    .option('--restart', 'with --onboard: start again even devices whose last onboarding completed')
    .option('--concurrency <n>', 'with --onboard: at most this many of them at once')
    .option('--server <url>', 'admin API of ztp serve (default: from the configuration)')
    .option('--token <token>', 'admin token (default: from the configuration or <data-dir>/admin-token)')
    .action(
      action(async (cmd: Command) => {
        const g = globalOptions(cmd);
        const o = cmd.opts() as SimulateCliOptions;
        const config = configFrom(g);
        // Logs go to stderr: stdout is the lab's own output (NDJSON with --json).
        const log = createLogger(config.logLevel, pino.destination({ fd: 2, sync: true })).child({ service: 'simulate' });
        const count = int('count', o.count, 1, 10_000)!;
        const profile = o.profile as LabProfile;
        if (!['rfc8572', 'opi', 'mixed'].includes(profile)) throw usageError('--profile must be rfc8572, opi or mixed');
        const macTag = Number.parseInt(o.macTag, 16);
        if (!/^[0-9a-f]{1,2}$/i.test(o.macTag) || !Number.isInteger(macTag)) throw usageError('--mac-tag must be one hex byte (e.g. 7a)');
        if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,40}$/.test(o.prefix)) throw usageError('--prefix: letters, digits, . _ - (at most 41)');
        const imageSize = int('image-size', o.imageSize, 1, 1 << 30)!;
        const bmcPort = int('bmc-port', o.bmcPort, 0, 65535)!;
        const powerOnMs = int('power-on-ms', o.powerOnMs, 0, 600_000);
        const concurrency = int('concurrency', o.concurrency, 1, 100_000);
        if (!isQuirkMode(o.quirks)) throw usageError(`--quirks must be one of ${QUIRK_MODES.join(', ')}`);
        if (o.restart && !o.onboard) throw usageError('--restart needs --onboard');
        if (o.dhcp !== 'direct' && o.dhcp !== 'netns') throw usageError('--dhcp must be direct or netns');
        if ((o.dhcpInterface || o.dhcpAddress) && o.dhcp !== 'netns') throw usageError('--dhcp-interface and --dhcp-address need --dhcp netns');
        if (o.dhcpInterface && !/^[A-Za-z0-9_.-]{1,15}$/.test(o.dhcpInterface)) throw usageError('--dhcp-interface: an interface name of at most 15 characters');
        if (o.dhcpAddress && !/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(o.dhcpAddress)) throw usageError('--dhcp-address: an IPv4 address with prefix, e.g. 10.231.0.1/24');
        try {
          parseFaultPlan(o.faults ?? '', count);
        } catch (err) {
          if (isZtpError(err) && err.code === 'SIM_INVALID') throw usageError(`--faults: ${err.message}`);
          throw err;
        }
        const publicHost = config.publicHost || hostname();
        const bootstrapUrl = o.bootstrapUrl ?? `https://${publicHost}:${config.bootstrap.port}`;
        if (!/^https:\/\/[^/]+/i.test(bootstrapUrl)) throw usageError('--bootstrap-url must be an https:// URL');
        const client = AdminClient.from(config, { server: o.server, token: o.token });
        const pki = labPki(config.dataDir);
        let image: ImageInfo;
        if (o.image) {
          image = (await client.request<{ image: ImageInfo }>('GET', `/api/v1/images/${encodeURIComponent(o.image)}`)).image;
        } else {
          const name = `sim-os-${imageSize}.img`;
          image = (await client.request<{ image: ImageInfo }>('POST', `/api/v1/images?name=${encodeURIComponent(name)}&osName=sim-os&osVersion=1.0`, labImage(imageSize), 'application/octet-stream')).image;
        }


        let dhcp: DhcpPath | undefined;
        let lab: VirtualLab | undefined;
        // From here on a signal stops the lab cleanly (also one that comes while it starts).
        const stopSignal = untilSignal();
        try {
          dhcp = await dhcpPath(o, log);
          lab = await VirtualLab.create({
            count,
            profile,
            ...(o.faults ? { faults: o.faults } : {}),
            serialPrefix: o.prefix,
            macTag,
            bootImage: image.name,
            bootstrapUrl,
            serverCaPem: pki.rootCaPem,
            masaCaPem: pki.masaCaPem,
            // issueDeviceIdentity reads only the IDevID CA of the suite's PKI
            issueIdevid: (serial) => issueDeviceIdentity({ idevidCa: pki.idevidCa } as SuitePki, serial),
            ...(o.basicAuth ? { basicAuth: true } : {}),
            dhcp,
            ...(o.bmc ? { bmcs: emulatedBmcs({ log, mediaCa: pki.rootCaPem, quirks: o.quirks, host: o.bmcHost, port: bmcPort, ...(powerOnMs !== undefined ? { timing: { powerOnMs } } : {}) }) } : {}),
            // A device whose server restarts tries again, as the real agents do.
            agent: { maxAttempts: 1_000_000, retryDelayMs: 5_000, transportRetries: { attempts: 12, delayMs: 5_000 } },
            log,
          });
          // Runs that end before the 'started' line is out wait for it (it comes first).
          let pending: string[] | undefined = [];
          for (const d of lab.devices) {
            d.dpu.on('run', (run) => {
              const at = new Date().toISOString();
              const text = g.json ? JSON.stringify({ kind: 'run', at, ...describeRun(d.serial, run) }) : `${at}  ${d.serial}  boot via ${run.booting.via}: ${run.outcome}${run.stage ? ` at ${run.stage}` : ''}${run.error ? ` (${run.error})` : ''}`;
              if (pending) pending.push(text);
              else io.out(text);
            });
          }
          const registered = await client.request<{ created: number; updated: number; unchanged: number }>('POST', '/api/v1/devices/import', { devices: lab.deviceRecords() });
          let onboarding: OnboardResult[] | undefined;
          if (o.onboard) {
            const body = { serials: lab.devices.map((d) => d.serial), ...(concurrency ? { concurrency } : {}), ...(o.restart ? { restart: true } : {}) };
            onboarding = (await client.request<{ results: OnboardResult[] }>('POST', '/api/v1/onboarding', body)).results;
            if (!o.bmc) {
              // Without BMCs nobody powers them: the lab does, booting the image over UEFI HTTP.
              const origin = new URL(image.urls.device).origin;
              const started = new Set(onboarding.filter((r) => r.outcome === 'queued').map((r) => r.serial));
              for (const d of lab.devices) if (started.has(d.serial)) void d.dpu.boot({ bmcId: 'none', systemId: 'none', serial: d.serial, via: 'uefi-http', imageUrl: origin + imagePath('name', image.name, { mac: d.macs[0]! }), target: null, at: new Date() }).catch(() => undefined);
            }
          }
          const started = {
            kind: 'started',
            server: client.base,
            bootstrapUrl,
            dhcp: dhcp.mode,
            image: { name: image.name, sha256: image.sha256, size: image.size },
            registered: { created: registered.created, updated: registered.updated, unchanged: registered.unchanged },
            devices: lab.devices.map(deviceLine),
            ...(onboarding ? { onboarding: onboarding.map((r) => ({ serial: r.serial, outcome: r.outcome, ...(r.reason ? { reason: r.reason } : {}), ...(r.job ? { status: r.job.status, step: r.job.step, attempt: r.job.attempt } : {}) })) } : {}),
          };
          if (g.json) {
            io.out(JSON.stringify(started));
          } else {
            const rows = [['SERIAL', 'PROFILE', 'FAULTS', 'MACS', 'BMC', ...(onboarding ? ['ONBOARDING'] : [])]];
            for (const d of lab.devices) {
              const r = onboarding?.find((x) => x.serial === d.serial);
              rows.push([d.serial, d.profile, (deviceLine(d).faults as string[]).join(',') || '-', d.macs.join(','), d.bmc ? `${d.bmc.url} (${d.bmc.username}/${d.bmc.password})` : '-', ...(onboarding ? [r ? `${r.outcome}${r.reason ? `: ${r.reason}` : ''}` : '-'] : [])]);
            }
            io.out(table(rows));
            io.err(`simulate: ${count} DPU(s) ${o.bmc ? 'behind emulated BMCs' : 'without BMCs'} registered with ${client.base} (${registered.created} created, ${registered.updated} updated, ${registered.unchanged} unchanged), image ${image.name}, DHCP ${dhcp.mode}${o.onboard ? '' : '; start them with ztp onboard --all'}; SIGTERM/SIGINT stops`);
          }
          for (const text of pending) io.out(text);
          pending = undefined;
          // Without BMC listeners nothing else keeps the process up between runs.
          const keepAlive = setInterval(() => undefined, 60_000);
          const signal = await stopSignal.signal.finally(() => clearInterval(keepAlive));
          log.info({ signal }, 'simulate: shutting down');
          const force = setTimeout(() => process.exit(EXIT.ERROR), 15_000);
          force.unref();
          const stats = new Map(lab.bmcStats().map((s) => [s.id, s.stats]));
          const bmcOf = (d: LabDevice) => {
            const s = d.bmc ? stats.get(d.bmc.id) : undefined;
            return s ? { requests: s.requests, inserts: s.inserts, mounted: s.mounted.length, ejects: s.ejects, resets: s.resets, bootPatches: s.bootPatches } : null;
          };
          const summary = lab.devices.map((d) => ({ serial: d.serial, runs: d.dpu.runs.map((r) => describeRun(d.serial, r)), bmc: bmcOf(d) }));
          await lab.stop();
          lab = undefined;
          clearTimeout(force);
          if (g.json) io.out(JSON.stringify({ kind: 'stopped', signal, devices: summary }));
          else {
            const complete = summary.filter((s) => s.runs.some((r) => r.outcome === 'complete')).length;
            io.err(`simulate: stopped (${signal}); ${complete}/${summary.length} device(s) completed a run`);
          }
          return EXIT.OK;
        } finally {
          stopSignal.cancel();
          await lab?.stop().catch(() => undefined);
          await dhcp?.close().catch((err: unknown) => log.warn({ err: (err as Error).message }, 'simulate: DHCP path did not close cleanly'));
        }
      }),
    );
};
