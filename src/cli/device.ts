// `ztp device add|import|list|show|rm|cert`: the device registry from the command line.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { ZtpError } from '../errors.js';
import { importDevices, parseImport } from '../devices/import.js';
import { parseDeviceInput, parseRedirectServer, publicDevice, type Device } from '../devices/model.js';
import { ensureLabPki, issueDeviceIdentity, writeSecretFile } from '../pki/lab.js';
import { EXIT, globalOptions, openStorage, printResult, table, configFrom, usageError, type Storage } from './common.js';
import { admitDevices } from '../onboarding/admission.js';
import { ImageCatalogue, imagesDirOf } from '../images/catalogue.js';
import { importRowNumber } from '../devices/import.js';
import type { CliRegistrar } from './main.js';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { buildPkcs12 } from '../pki/pkcs12.js';
import { ONBOARDING_STATES } from '../onboarding/state.js';

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ZtpError('DEVICE_INVALID', `${what}: cannot read ${path}: ${(err as Error).message}`);
  }
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(',').map((s) => s.trim()).filter(Boolean)];
}

function summary(d: Device): string[] {
  return [d.serial, d.profile, d.state, d.macs.join(',') || '-', d.bootImage ?? '-', d.redirect ? 'redirect' : 'onboard', d.updatedAt];
}

export const registerDeviceCommands: CliRegistrar = (program, action, io) => {
  const device = program.command('device').description('register and inspect DPUs');

  device
    .command('add <serial>')
    .description('register a device, or update it (idempotent: the same command twice changes nothing)')
    .option('--password <password>', 'HTTP Basic password the device authenticates with (stored hashed)')
    .option('--profile <profile>', 'client profile: rfc8572 or opi')
    .option('--signing <mode>', 'sign conveyed information: auto, always or never')
    .option('--mac <mac>', 'MAC address (repeatable or comma-separated)', collect)
    .option('--boot-image <nameOrUrl>', 'catalogue image name or image URL')
    .option('--sha256 <hex>', 'SHA-256 of a boot image given by URL')
    .option('--os-name <name>', 'boot image OS name')
    .option('--os-version <version>', 'boot image OS version')
    .option('--config <file>', 'initial configuration file conveyed to the device')
    .option('--pre-script <file>', 'pre-configuration script')
    .option('--post-script <file>', 'post-configuration script')
    .option('--redirect <host:port>', 'redirect the device to another bootstrap server (repeatable)', collect)
    .option('--parent-host <host>', 'host the DPU sits in')
    .option('--hw-model <model>', 'hardware model')
    .option('--bmc <address>', 'BMC address (https://host or host)')
    .option('--bmc-user <user>', 'BMC user name')
    .option('--bmc-password <password>', 'BMC password (never printed; sealed at rest)')
    .option('--bmc-factory-password <password>', "the BMC's factory default: onboarding logs in with it when --bmc-password is refused and sets --bmc-password")
    .option('--bmc-ca <file>', "PEM bundle the BMC's TLS certificate must chain to")
    .option('--bmc-fingerprint <sha256>', "pin the BMC's TLS certificate by its SHA-256 fingerprint")
    .option('--bmc-insecure', 'do not verify the BMC certificate (logged as a warning every session)')
    .option('--bmc-system <id>', 'the ComputerSystem id to drive (default: the DPU system)')
    .option('--bmc-mode <mode>', 'NVIDIA BlueField: DPU or NIC operation mode, set by onboarding before the boot')
    .action(
      action((cmd: Command, serial: string, opts: Record<string, string | string[] | undefined>) => {
        const g = globalOptions(cmd);
        const raw: Record<string, unknown> = { serial };
        if (opts.password !== undefined) raw.password = opts.password;
        if (opts.profile !== undefined) raw.profile = opts.profile;
        if (opts.signing !== undefined) raw.signing = opts.signing;
        if (opts.mac !== undefined) raw.macs = opts.mac;
        if (opts.bootImage !== undefined) raw.bootImage = opts.bootImage;
        if (opts.sha256 !== undefined) raw.bootImageSha256 = opts.sha256;
        if (opts.osName !== undefined) raw.osName = opts.osName;
        if (opts.osVersion !== undefined) raw.osVersion = opts.osVersion;
        if (opts.config !== undefined) raw.config = readText(opts.config as string, 'config');
        if (opts.preScript !== undefined) raw.preScript = readText(opts.preScript as string, 'pre-script');
        if (opts.postScript !== undefined) raw.postScript = readText(opts.postScript as string, 'post-script');
        if (opts.redirect !== undefined) raw.redirect = (opts.redirect as string[]).map((r) => parseRedirectServer(r, 'redirect'));
        if (opts.parentHost !== undefined) raw.parentHost = opts.parentHost;
        if (opts.hwModel !== undefined) raw.hwModel = opts.hwModel;
        if (opts.bmc !== undefined) {
          raw.bmc = {
            address: opts.bmc,
            ...(opts.bmcUser ? { username: opts.bmcUser } : {}),
            ...(opts.bmcPassword ? { password: opts.bmcPassword } : {}),
            ...(opts.bmcFactoryPassword ? { factoryPassword: opts.bmcFactoryPassword } : {}),
            ...(opts.bmcCa ? { caBundle: readText(opts.bmcCa as string, 'bmc-ca') } : {}),
            ...(opts.bmcFingerprint ? { fingerprint256: opts.bmcFingerprint } : {}),
            ...(opts.bmcInsecure ? { insecure: true } : {}),
            ...(opts.bmcSystem ? { systemId: opts.bmcSystem } : {}),
            ...(opts.bmcMode ? { operationMode: String(opts.bmcMode).toUpperCase() } : {}),
          };
        }
        const input = parseDeviceInput(raw);
        const storage = openStorage(g);
        try {
          admitDevices(storage.store, [input], catalogueLookup(storage));
          const outcome = storage.store.upsert(input, 'cli');
          const stored = storage.store.require(serial);
          printResult(io, g, { outcome, device: publicDevice(stored) }, () => `${outcome}: ${serial} (${stored.profile}, state ${stored.state})`);
          return EXIT.OK;
        } finally {
          storage.close();
        }
      }),
    );

  device
    .command('import <file>')
    .description('register many devices from CSV or JSON; any invalid row imports nothing')
    .option('--format <format>', 'csv, json or auto', 'auto')
    .action(
      action((cmd: Command, file: string, opts: { format: 'csv' | 'json' | 'auto' }) => {
        const g = globalOptions(cmd);
        const text = readText(file, 'import');
        const inputs = parseImport(text, opts.format);
        const storage = openStorage(g);
        try {
          admitDevices(storage.store, inputs, catalogueLookup(storage), importRowNumber(text, opts.format));
          const result = importDevices(storage.store, inputs, 'cli-import');
          printResult(io, g, result, () => `imported ${inputs.length} device(s): ${result.created} created, ${result.updated} updated, ${result.unchanged} unchanged`);
          return EXIT.OK;
        } finally {
          storage.close();
        }
      }),
    );

  device
    .command('list')
    .description('list registered devices with their onboarding state')
    .option('--state <state>', `only devices in this state: ${ONBOARDING_STATES.join(', ')}`)
    .action(
      action((cmd: Command, opts: { state?: string }) => {
        const g = globalOptions(cmd);
        // A misspelt state would list nothing, which reads as "no such devices".
        if (opts.state !== undefined && !(ONBOARDING_STATES as readonly string[]).includes(opts.state)) {
          throw new ZtpError('DEVICE_INVALID', `--state "${opts.state}" is not a state; one of: ${ONBOARDING_STATES.join(', ')}`, { details: { field: 'state', states: [...ONBOARDING_STATES] } });
        }
        const storage = openStorage(g);
        try {
          const devices = storage.store.list().filter((d) => !opts.state || d.state === opts.state);
          printResult(io, g, devices.map(publicDevice), () =>
            devices.length === 0 ? 'no devices' : table([['SERIAL', 'PROFILE', 'STATE', 'MACS', 'IMAGE', 'MODE', 'UPDATED'], ...devices.map(summary)]),
          );
          return EXIT.OK;
        } finally {
          storage.close();
        }
      }),
    );

  device
    .command('show <serial>')
    .description('one device: record, onboarding state, progress reports and bootstrapping log')
    .option('--limit <n>', 'history entries to show', '50')
    .action(
      action((cmd: Command, serial: string, opts: { limit: string }) => {
        const g = globalOptions(cmd);
        const storage = openStorage(g);
        try {
          const d = storage.store.require(serial);
          const history = storage.store.recentHistory(serial, Math.max(1, Number(opts.limit) || 50));
          printResult(io, g, { device: publicDevice(d), history }, () => {
            const lines = [
              `serial:      ${d.serial}`,
              `state:       ${d.state} (since ${d.stateChangedAt})`,
              `profile:     ${d.profile}   signing: ${d.signing}   password: ${d.hasPassword ? 'set' : 'none'}`,
              `macs:        ${d.macs.join(', ') || '-'}`,
              `boot image:  ${d.bootImage ?? '-'}${d.bootImageSha256 ? ` sha256:${d.bootImageSha256}` : ''}`,
              `redirect:    ${d.redirect ? d.redirect.map((r) => `${r.address}${r.port ? ':' + r.port : ''}`).join(', ') : '-'}`,
              `config:      ${d.config ? `${Buffer.byteLength(d.config)} bytes` : '-'}   pre-script: ${d.preScript ? 'yes' : '-'}   post-script: ${d.postScript ? 'yes' : '-'}`,
              `bmc:         ${d.bmc ? d.bmc.address : '-'}   parent host: ${d.parentHost ?? '-'}`,
              '',
              'history:',
              ...history.map((e) => `  ${e.at}  ${e.source.padEnd(9)} ${e.type.padEnd(16)} ${describeEvent(e.data)}`),
            ];
            return lines.join('\n');
          });
          return EXIT.OK;
        } finally {
          storage.close();
        }
      }),
    );

  device
    .command('rm <serial>')
    .description('remove a device (its history is kept); removing an absent device is not an error')
    .action(
      action((cmd: Command, serial: string) => {
        const g = globalOptions(cmd);
        const storage = openStorage(g);
        try {
          const removed = storage.store.remove(serial, 'cli');
          printResult(io, g, { serial, removed }, () => (removed ? `removed ${serial}` : `${serial} was not registered`));
          return EXIT.OK;
        } finally {
          storage.close();
        }
      }),
    );

  device
    .command('cert <serial>')
    .description('issue a lab IDevID (serial in subject serialNumber) for a simulated device')
    .requiredOption('--out <dir>', 'directory for <serial>.crt (leaf + issuing CA), <serial>.key (0600) and ca.crt')
    .option('--p12', 'also <serial>.p12 (0600): key and chain in a password-protected PKCS#12 bundle, for agents and TPM tooling that import one')
    .option('--p12-password-file <file>', 'with --p12: the bundle password, first line of this file (default: generated into <serial>.p12.pass, 0600)')
    .action(
      action(async (cmd: Command, serial: string, opts: { out: string; p12?: boolean; p12PasswordFile?: string }) => {
        const g = globalOptions(cmd);
        const config = configFrom(g);
        const { pki } = await ensureLabPki(resolve(config.dataDir), config.pki, config.publicHost || hostname());
        const identity = await issueDeviceIdentity(pki, serial);
        const out = resolve(opts.out);
        mkdirSync(out, { recursive: true });
        writeSecretFile(join(out, `${serial}.key`), identity.keyPem);
        writeFileSync(join(out, `${serial}.crt`), identity.certPem);
        // What the device trusts for the bootstrap server's TLS certificate.
        writeFileSync(join(out, 'ca.crt'), pki.rootCaPem);
        const files: Record<string, string> = { cert: join(out, `${serial}.crt`), key: join(out, `${serial}.key`), serverCa: join(out, 'ca.crt') };
        if (opts.p12PasswordFile !== undefined && !opts.p12) throw usageError('--p12-password-file needs --p12');
        if (opts.p12) {
          // The password is never taken on the command line (ps, shell history) nor printed.
          let password: string;
          if (opts.p12PasswordFile !== undefined) {
            password = readText(opts.p12PasswordFile, 'p12-password-file').split(/\r?\n/)[0]!;
            if (!password) throw new ZtpError('DEVICE_INVALID', `p12-password-file: ${opts.p12PasswordFile} has an empty first line`);
          } else {
            password = randomBytes(18).toString('base64url');
            files.p12Password = join(out, `${serial}.p12.pass`);
            writeSecretFile(files.p12Password, password + '\n');
          }
          files.p12 = join(out, `${serial}.p12`);
          writeSecretFile(files.p12, buildPkcs12({ keyPem: identity.keyPem, certPem: identity.certPem, password, friendlyName: serial }));
        }
        const p12 = files.p12 ? `; PKCS#12: ${files.p12}${files.p12Password ? ` (password in ${files.p12Password})` : ''}` : '';
        printResult(io, g, { serial, ...files }, () => `issued IDevID for ${serial}: ${files.cert}, ${files.key}; bootstrap server CA: ${files.serverCa}${p12}`);
        return EXIT.OK;
      }),
    );
};

/** Is a boot image name (or digest) in this data directory's catalogue? */
function catalogueLookup(storage: Storage): (name: string) => boolean {
  const catalogue = new ImageCatalogue(storage.db, imagesDirOf(storage.config.dataDir));
  return (name) => catalogue.get(name) !== undefined;
}

function describeEvent(data: Record<string, unknown>): string {
  const parts: string[] = [];
  for (const key of ['progressType', 'message', 'rpc', 'response', 'result', 'code', 'error', 'ip', 'mac', 'image', 'actor', 'fields']) {
    const v = data[key];
    if (v === undefined || (Array.isArray(v) && v.length === 0)) continue;
    parts.push(`${key}=${Array.isArray(v) ? v.join(',') : String(v)}`);
  }
  return parts.join(' ');
}
