// `ztp bmc inventory|boot-iso|boot-http|power|eject|clear-boot <serial|bmc-url>`: drive one BMC by
// Redfish. With a serial the device record's BMC is used and every step lands in that device's
// history (source 'redfish'); with a URL nothing is stored unless `inventory --record` matches
// the BMC to a registered device (by serial, else by port MAC). Long steps print progress on a TTY.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { isZtpError, ZtpError } from '../errors.js';
import { createLogger, silentLogger, type Logger } from '../log.js';
import type { Device } from '../devices/model.js';
import { describeImage } from '../images/api.js';
import { ImageCatalogue, imagesDirOf } from '../images/catalogue.js';
import {
  allListeners, displayUrl, endpointFromDevice, historyStepListener, openBmcSession,
  type BmcEndpoint, type BmcSession, type Inventory, type StepListener, type StepOutcome,
} from '../redfish/index.js';
import { EXIT, globalOptions, openStorage, printResult, table, usageError, type GlobalOptions, type Io, type Storage } from './common.js';
import type { CliRegistrar } from './main.js';

interface BmcFlags {
  user?: string;
  password?: string;
  factoryPassword?: string;
  ca?: string;
  fingerprint?: string;
  insecure?: boolean;
  system?: string;
  progress?: boolean;
  verbose?: boolean;
  timeout?: string;
  record?: boolean;
}

interface Target {
  endpoint: BmcEndpoint;
  device: Device | null;
  storage: Storage | null;
}

const isUrl = (s: string) => /^https?:\/\//i.test(s);

function addBmcOptions(cmd: Command): Command {
  return cmd
    .option('--user <user>', 'BMC user name (default: the device record\'s)')
    .option('--password <password>', 'BMC password (never printed; default: the device record\'s)')
    .option('--factory-password <password>', 'log in with this factory password and change it to --password / the record\'s when the BMC demands it')
    .option('--ca <file>', 'PEM bundle the BMC certificate must chain to')
    .option('--fingerprint <sha256>', 'pin the BMC leaf certificate by SHA-256 fingerprint instead of a CA')
    .option('--insecure', 'do not verify the BMC certificate (logged as a warning)')
    .option('--system <id>', 'ComputerSystem id (default: the DPU system, else the only one)')
    .option('--timeout <seconds>', 'overall deadline of the command', '900')
    .option('--progress', 'print each step as it ends (default on a TTY)')
    .option('-v, --verbose', 'log the Redfish conversation to stderr (pino, secrets redacted)');
}

function resolveTarget(g: GlobalOptions, arg: string, flags: BmcFlags, needStore: boolean): Target {
  let storage: Storage | null = null;
  let device: Device | null = null;
  let endpoint: BmcEndpoint;
  if (isUrl(arg)) {
    endpoint = { url: arg };
    if (needStore) storage = openStorage(g);
  } else {
    storage = openStorage(g);
    try {
      device = storage.store.require(arg);
    } catch (err) {
      storage.close();
      throw err;
    }
    if (!device.bmc) {
      storage.close();
      throw new ZtpError('DEVICE_INVALID', `device ${arg} has no BMC (ztp device add ${arg} --bmc URL …)`, { details: { field: 'bmc' } });
    }
    endpoint = endpointFromDevice(device.bmc);
  }
  const exclusive = [flags.ca, flags.fingerprint, flags.insecure].filter(Boolean).length;
  if (exclusive > 1) {
    storage?.close();
    throw usageError('--ca, --fingerprint and --insecure exclude each other');
  }
  if (flags.user !== undefined) endpoint.username = flags.user;
  if (flags.factoryPassword !== undefined) {
    endpoint.newPassword = flags.password ?? endpoint.password;
    endpoint.password = flags.factoryPassword;
  } else if (flags.password !== undefined) endpoint.password = flags.password;
  if (flags.ca) {
    try {
      endpoint.caBundle = readFileSync(resolve(flags.ca), 'utf8');
    } catch (err) {
      storage?.close();
      throw usageError(`cannot read --ca ${flags.ca}: ${(err as Error).message}`);
    }
    delete endpoint.fingerprint256;
    delete endpoint.insecure;
  }
  if (flags.fingerprint) {
    endpoint.fingerprint256 = flags.fingerprint;
    delete endpoint.caBundle;
    delete endpoint.insecure;
  }
  if (flags.insecure) {
    endpoint.insecure = true;
    delete endpoint.caBundle;
    delete endpoint.fingerprint256;
  }
  if (flags.system) endpoint.systemId = flags.system;
  return { endpoint, device, storage };
}

function progressListener(io: Io, enabled: boolean): StepListener | undefined {
  if (!enabled) return undefined;
  return (s: StepOutcome) => {
    const mark = s.outcome === 'ok' ? 'ok  ' : s.outcome === 'skipped' ? 'skip' : 'FAIL';
    io.err(`  ${mark} ${s.step}${s.via ? ` (${s.via})` : ''}${s.detail ? `: ${s.detail}` : ''}  ${s.durationMs} ms`);
  };
}

function stepsTable(steps: StepOutcome[]): string {
  return table([['STEP', 'OUTCOME', 'VIA', 'MS', 'DETAIL'], ...steps.map((s) => [s.step, s.outcome, s.via ?? '-', String(s.durationMs), s.detail ?? ''])]);
}

/**
 * Where a password set on a factory-fresh BMC is kept: the device record (sealed), when the
 * target is a registered device driven as its recorded user. A bare URL has nowhere to keep a
 * generated password, so there the change needs --factory-password with --password.
 */
function passwordKeeper(target: Target): ((password: string) => void) | undefined {
  const { device, storage } = target;
  if (!device?.bmc || !storage) return undefined;
  if ((target.endpoint.username ?? '') !== (device.bmc.username ?? '')) return undefined;
  return (password) => storage.store.setBmcPassword(device.serial, password, 'cli');
}

/**
 * Logs in as the record says. A record with a factory password (ztp device add
 * --bmc-factory-password) and no password flags: with no configured password the factory one logs
 * in (a generated password replaces it); when the configured one is refused the BMC may be
 * factory-fresh, so the factory one logs in and the configured one is set.
 */
async function openWithFactoryFallback(target: Target, flags: BmcFlags, deps: { log: Logger; signal: AbortSignal; onStep: StepListener }) {
  const keep = passwordKeeper(target);
  const factory = target.device?.bmc?.factoryPassword;
  const configured = target.device?.bmc?.password;
  const fromRecord = factory !== undefined && flags.password === undefined && flags.factoryPassword === undefined;
  if (fromRecord && !configured) target.endpoint.password = factory;
  try {
    return await openBmcSession(target.endpoint, { ...deps, ...(keep ? { onPasswordChange: keep } : {}) });
  } catch (err) {
    if (!(fromRecord && configured && isZtpError(err, 'REDFISH_AUTH_FAILED'))) throw err;
    const onPasswordChange = keep ? (password: string) => (password === factory ? undefined : keep(password)) : undefined;
    return openBmcSession({ ...target.endpoint, password: factory, newPassword: configured }, { ...deps, ...(onPasswordChange ? { onPasswordChange } : {}) });
  }
}

/** Opens the session, runs `fn`, always logs out; Ctrl-C aborts cleanly (session deleted). */
async function withSession<T>(
  io: Io,
  g: GlobalOptions,
  target: Target,
  flags: BmcFlags,
  fn: (session: BmcSession, steps: StepOutcome[]) => Promise<T>,
  options: { closeStorage?: boolean } = {},
): Promise<T> {
  const steps: StepOutcome[] = [];
  const controller = new AbortController();
  const seconds = Number(flags.timeout ?? 900);
  if (!Number.isFinite(seconds) || seconds <= 0) throw usageError('--timeout must be a positive number of seconds');
  const timer = setTimeout(() => controller.abort(new ZtpError('REDFISH_TIMEOUT', `ztp bmc gave up after ${seconds} s (--timeout)`)), seconds * 1000);
  timer.unref();
  const onSigint = () => controller.abort();
  process.once('SIGINT', onSigint);
  const log: Logger = flags.verbose ? createLogger('debug', process.stderr) : silentLogger;
  const tty = flags.progress === true || (flags.progress === undefined && process.stderr.isTTY === true && !g.json);
  const history = target.device && target.storage ? historyStepListener({ store: target.storage.store, serial: target.device.serial, bmcUrl: target.endpoint.url, log }) : undefined;
  const onStep = allListeners((s) => steps.push(s), history, progressListener(io, tty));
  try {
    const session = await openWithFactoryFallback(target, flags, { log, signal: controller.signal, onStep });
    try {
      return await fn(session, steps);
    } finally {
      await session.close();
    }
  } finally {
    clearTimeout(timer);
    process.removeListener('SIGINT', onSigint);
    if (options.closeStorage !== false) target.storage?.close();
  }
}

/** The image URL for a boot: the argument, else the device's boot image (a URL or a catalogue name → its BMC URL). */
function bootUrl(target: Target, arg: string | undefined, storage: Storage | null): string {
  if (arg) {
    if (!/^(https?|smb|nfs):\/\//i.test(arg)) throw usageError(`image URL must be http(s):// (got "${arg}")`);
    return arg;
  }
  const image = target.device?.bootImage;
  if (!image) throw usageError('give the image URL (the device record has no boot image)');
  if (isUrl(image)) return image;
  if (!storage) throw usageError('give the image URL');
  const catalogue = new ImageCatalogue(storage.db, imagesDirOf(resolve(storage.config.dataDir)));
  return describeImage(catalogue.require(image), storage.config, storage.config.publicHost || hostname()).urls.bmc;
}

function inventoryText(bmc: string, inv: Inventory, matched: string | null): string {
  const lines = [
    `bmc:            ${bmc}`,
    `system:         ${inv.systemId}${inv.systemType ? ` (${inv.systemType})` : ''}`,
    `vendor/model:   ${inv.vendor ?? '-'} / ${inv.model ?? '-'}`,
    `serial:         ${inv.serial ?? '-'}`,
    `power:          ${inv.powerState}${inv.bootProgress ? `   boot progress: ${inv.bootProgress}` : ''}`,
    `operation mode: ${inv.operationMode ?? '-'}`,
    `port MACs:      ${inv.macs.join(', ') || '-'}`,
    `boot targets:   ${inv.allowedBootTargets.join(', ') || '(not advertised)'}`,
    ...(inv.bootOrder ? [`boot order:     ${inv.bootOrder.map((b) => `${b.name ?? b.reference}${b.oobNetwork ? ' [OOB]' : ''}`).join(', ') || '(empty)'}`] : []),
    `reset types:    ${inv.allowedResetTypes.join(', ') || '(not advertised)'}`,
    `virtual media:  ${inv.virtualMedia.map((m) => `${m.id} [${m.via}]${m.inserted ? ` ${m.image ?? '(inserted)'}` : ''}`).join('; ') || '-'}`,
    ...inv.firmware.map((f) => `firmware:       ${f.name} ${f.version}`),
  ];
  if (matched !== null) lines.push(`device:         ${matched}`);
  return lines.join('\n');
}

export const registerBmcCommands: CliRegistrar = (program, action, io) => {
  const bmc = program.command('bmc').description('drive a BMC by Redfish: inventory, boot from ISO or UEFI HTTP, power, eject');

  addBmcOptions(bmc.command('inventory <target>').description('vendor, model, serial, port MACs, power, firmware, boot progress, media (target: serial or BMC URL)'))
    .option('--record', 'match the BMC to a registered device (serial, else port MAC), store its BMC coordinates and record the inventory')
    .action(
      action(async (cmd: Command, arg: string) => {
        const g = globalOptions(cmd);
        const flags = cmd.opts<BmcFlags>();
        const target = resolveTarget(g, arg, flags, flags.record === true);
        const storage = target.storage;
        let matched: string | null = target.device?.serial ?? null;
        let recorded = false;
        const inv = await withSession(io, g, target, flags, (s) => s.inventory(), { closeStorage: false }).finally(() => {
          if (!flags.record) storage?.close();
        });
        if (flags.record && storage) {
          try {
            let device = target.device;
            if (!device && inv.serial) device = storage.store.get(inv.serial) ?? null;
            if (!device) for (const mac of inv.macs) if ((device = storage.store.getByMac(mac) ?? null)) break;
            if (device) {
              matched = device.serial;
              if (!target.device) {
                const bmcInfo = { ...(device.bmc ?? {}), address: target.endpoint.url } as NonNullable<Device['bmc']>;
                if (target.endpoint.username) bmcInfo.username = target.endpoint.username;
                if (target.endpoint.newPassword ?? target.endpoint.password) bmcInfo.password = target.endpoint.newPassword ?? target.endpoint.password;
                if (target.endpoint.caBundle) bmcInfo.caBundle = target.endpoint.caBundle;
                if (target.endpoint.insecure) bmcInfo.insecure = true;
                bmcInfo.systemId = inv.systemId;
                storage.store.upsert({ serial: device.serial, bmc: bmcInfo }, 'cli');
              }
              storage.store.record({
                serial: device.serial,
                source: 'redfish',
                type: 'inventory',
                data: { outcome: 'ok', bmc: displayUrl(target.endpoint.url), matchedBy: target.device ? 'serial-argument' : inv.serial === device.serial ? 'serial' : 'mac', vendor: inv.vendor, model: inv.model, serial: inv.serial, macs: inv.macs, powerState: inv.powerState, operationMode: inv.operationMode, firmware: inv.firmware },
              });
              recorded = true;
            }
          } finally {
            storage.close();
          }
        }
        const bmcShown = displayUrl(target.endpoint.url);
        printResult(io, g, { bmc: bmcShown, device: matched, recorded, inventory: inv }, () => inventoryText(bmcShown, inv, matched));
        if (flags.record && !matched) {
          io.err('ztp: no registered device has this serial or any of these MACs: nothing recorded');
          return EXIT.NOT_FOUND;
        }
        return EXIT.OK;
      }),
    );

  const bootCommands = [
    ['boot-iso', 'eject, insert the ISO, verify, boot once from CD, power on or restart, wait', (s: BmcSession, url: string) => s.bootFromIso(url)],
    ['boot-http', 'boot once by UEFI HTTP (HttpBootUri where supported, else the URL comes from DHCP), power on or restart, wait', (s: BmcSession, url: string) => s.bootFromHttp(url)],
  ] as const;
  for (const [name, description, boot] of bootCommands) {
    addBmcOptions(bmc.command(`${name} <target> [imageUrl]`).description(description))
      .action(
        action(async (cmd: Command, arg: string, imageUrl: string | undefined) => {
          const g = globalOptions(cmd);
          const flags = cmd.opts<BmcFlags>();
          const target = resolveTarget(g, arg, flags, false);
          const url = bootUrl(target, imageUrl, target.storage);
          const result = await withSession(io, g, target, flags, (s) => boot(s, url));
          printResult(io, g, { bmc: displayUrl(target.endpoint.url), device: target.device?.serial ?? null, image: url, ...result }, () => `${result.path}: ${url}\n${stepsTable(result.steps)}`);
          return EXIT.OK;
        }),
      );
  }

  addBmcOptions(bmc.command('boot-oob <target>').description('boot once from the DPU\'s out-of-band network port (BootNext + UefiBootNext, else BootOrder: clear-boot restores it), power on or restart, wait'))
    .option('--http', 'the OOB UEFI HTTP entry (e.g. NET-OOB-IPV4-HTTP; the URL comes from DHCP)')
    .option('--pxe', 'the OOB PXE entry (e.g. NET-OOB-IPV4)')
    .option('--no-restart', 'set the next boot only: no power on or restart')
    .action(
      action(async (cmd: Command, arg: string) => {
        const g = globalOptions(cmd);
        const flags = cmd.opts<BmcFlags & { http?: boolean; pxe?: boolean; restart?: boolean }>();
        if (flags.http && flags.pxe) throw usageError('--http and --pxe exclude each other');
        const target = resolveTarget(g, arg, flags, false);
        const result = await withSession(io, g, target, flags, (s) => {
          if (!s.bootFromOobNetwork) throw new ZtpError('REDFISH_UNSUPPORTED', 'this BMC client cannot boot from the OOB network');
          return s.bootFromOobNetwork({ ...(flags.http ? { prefer: 'http' as const } : flags.pxe ? { prefer: 'pxe' as const } : {}), restart: flags.restart !== false });
        });
        printResult(io, g, { bmc: displayUrl(target.endpoint.url), device: target.device?.serial ?? null, ...result }, () =>
          [`${result.path}`, stepsTable(result.steps), ...(result.previousBootOrder ? [`previous boot order: ${result.previousBootOrder.join(',')} (clear-boot restores it; from another shell: clear-boot --boot-order ${result.previousBootOrder.join(',')})`] : [])].join('\n'),
        );
        return EXIT.OK;
      }),
    );

  addBmcOptions(bmc.command('power <target> [action]').description('power status (default) | on | off | restart | cycle | graceful-off | graceful-restart'))
    .option('--wait', 'wait until the power state is reached')
    .action(
      action(async (cmd: Command, arg: string, verb: string | undefined) => {
        const g = globalOptions(cmd);
        const flags = cmd.opts<BmcFlags & { wait?: boolean }>();
        const kinds = { on: 'On', off: 'ForceOff', restart: 'ForceRestart', cycle: 'PowerCycle', 'graceful-off': 'GracefulShutdown', 'graceful-restart': 'GracefulRestart' } as const;
        const v = (verb ?? 'status').toLowerCase();
        if (v !== 'status' && !(v in kinds)) throw usageError(`power action must be status, ${Object.keys(kinds).join(', ')}`);
        const target = resolveTarget(g, arg, flags, false);
        const out = await withSession(io, g, target, flags, async (s) => {
          if (v === 'status') return { powerState: await s.powerState() };
          const kind = kinds[v as keyof typeof kinds];
          const r = await s.reset(kind);
          if (flags.wait && (kind === 'On' || kind === 'ForceOff' || kind === 'GracefulShutdown')) await s.waitForPower(kind === 'On' ? 'On' : 'Off');
          return { ...r, powerState: await s.powerState() };
        });
        printResult(io, g, { bmc: displayUrl(target.endpoint.url), device: target.device?.serial ?? null, ...out }, () =>
          'outcome' in out ? `${out.outcome} (${out.resetType}); power ${out.powerState}` : `power ${out.powerState}`,
        );
        return EXIT.OK;
      }),
    );

  addBmcOptions(bmc.command('eject <target>').description('eject every inserted virtual CD'))
    .action(
      action(async (cmd: Command, arg: string) => {
        const g = globalOptions(cmd);
        const flags = cmd.opts<BmcFlags>();
        const target = resolveTarget(g, arg, flags, false);
        const steps = await withSession(io, g, target, flags, async (s, st) => {
          await s.ejectMedia();
          return [...st];
        });
        printResult(io, g, { bmc: displayUrl(target.endpoint.url), device: target.device?.serial ?? null, steps }, () => stepsTable(steps));
        return EXIT.OK;
      }),
    );

  addBmcOptions(bmc.command('clear-boot <target>').description('after onboarding: eject media, disable the boot override, restore a boot order (--boot-order)'))
    .option('--boot-order <refs>', 'restore this boot order (comma-separated BootOptionReferences, as boot-oob printed)')
    .action(
      action(async (cmd: Command, arg: string) => {
        const g = globalOptions(cmd);
        const flags = cmd.opts<BmcFlags & { bootOrder?: string }>();
        const bootOrder = flags.bootOrder?.split(',').map((r) => r.trim()).filter(Boolean);
        if (flags.bootOrder !== undefined && (!bootOrder?.length || bootOrder.some((r) => !/^[A-Za-z0-9_.-]{1,64}$/.test(r)))) {
          throw usageError('--boot-order takes comma-separated boot option references, e.g. Boot0000,Boot0001');
        }
        const target = resolveTarget(g, arg, flags, false);
        const steps = await withSession(io, g, target, flags, async (s, st) => {
          await s.clearBoot(bootOrder ? { bootOrder } : undefined);
          return [...st];
        });
        printResult(io, g, { bmc: displayUrl(target.endpoint.url), device: target.device?.serial ?? null, steps }, () => stepsTable(steps));
        return EXIT.OK;
      }),
    );
};
