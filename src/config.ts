// One configuration schema for the whole suite, validated once at start (STYLE.md practice 3).
// Sources, lowest precedence first: schema defaults, a JSON config file (--config / ZTP_CONFIG),
// ZTP_* environment variables, command-line flags. Every leaf names its env var and flag here so
// the README table, `ztp config show` and the parser read one source.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Value as TypeboxValue } from '@sinclair/typebox/value';
import { assertSupported, conforms, fillDefaults, Type, type Static, type TSchema, type TObject } from './schema.js';
import { ZtpError } from './errors.js';
import { DhcpSectionSchema } from './dhcp/config-schema.js';
import { validateDhcpSettings } from './dhcp/settings.js';
import { preflightDhcp } from './dhcp/preflight.js';
import { HttpSectionSchema, validateHttpSettings } from './http/config-schema.js';

/** Marks a leaf with its environment variable; the flag is derived (--bootstrap-port). */
const env = (name: string) => ({ env: name });

const Port = (def: number, envName: string, description: string) =>
  Type.Integer({ minimum: 0, maximum: 65535, default: def, description, ...env(envName) });
const Host = (def: string, envName: string, description: string) =>
  Type.String({ minLength: 1, default: def, description, ...env(envName) });

// The `dhcp` section and its structured settings live beside the DHCP code that validates them.
export type { DhcpOptionSetConfig, DhcpReservationConfig, DhcpSubnetV4Config, DhcpSubnetV6Config, DhcpClassConfig, DhcpMatchConfig } from './dhcp/config-schema.js';

export const ConfigSchema = Type.Object(
  {
    dataDir: Type.String({ minLength: 1, default: './data', description: 'directory for ztp.db, pki/, images/', ...env('ZTP_DATA_DIR') }),
    logLevel: Type.Union(
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
      { default: 'info', description: 'pino log level', ...env('ZTP_LOG_LEVEL') },
    ),
    publicHost: Type.String({ default: '', description: 'host name or address devices use to reach this suite (default: the machine host name)', ...env('ZTP_PUBLIC_HOST') }),
    bootstrap: Type.Object(
      {
        enabled: Type.Boolean({ default: true, description: 'run the RFC 8572 bootstrap server', ...env('ZTP_BOOTSTRAP_ENABLED') }),
        host: Host('0.0.0.0', 'ZTP_BOOTSTRAP_HOST', 'bootstrap server listen address'),
        port: Port(8443, 'ZTP_BOOTSTRAP_PORT', 'bootstrap server HTTPS port'),
        auth: Type.Union([Type.Literal('cert-or-basic'), Type.Literal('cert'), Type.Literal('basic'), Type.Literal('cert-and-basic')], {
          default: 'cert-or-basic',
          description: 'device authentication: TLS client certificate (IDevID), HTTP Basic, either or both',
          ...env('ZTP_BOOTSTRAP_AUTH'),
        }),
        serialFrom: Type.Union([Type.Literal('serialNumber'), Type.Literal('CN'), Type.Literal('hardwareModuleName'), Type.Literal('regex')], {
          default: 'serialNumber',
          description: 'where the serial number is read from an IDevID certificate',
          ...env('ZTP_BOOTSTRAP_SERIAL_FROM'),
        }),
        serialRegex: Type.String({ default: '', description: 'with serialFrom=regex: a regex over the subject DN whose first group is the serial', ...env('ZTP_BOOTSTRAP_SERIAL_REGEX') }),
        maxBodyBytes: Type.Integer({ minimum: 1024, maximum: 16 * 1024 * 1024, default: 64 * 1024, description: 'largest accepted request body, bytes', ...env('ZTP_BOOTSTRAP_MAX_BODY_BYTES') }),
        encrypt: Type.Boolean({ default: false, description: 'encrypt conveyed information to the device IDevID (EnvelopedData) when it authenticated by certificate', ...env('ZTP_BOOTSTRAP_ENCRYPT') }),
        failureWindow: Type.Integer({ minimum: 1, maximum: 86_400, default: 60, description: 'failed requests of one serial from one address are counted per window of this many seconds: the first goes to the history at once, the rest as one summary row', ...env('ZTP_BOOTSTRAP_FAILURE_WINDOW') }),
        failureLimit: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 10, description: 'failed authentications of one serial from one address per window before 429 with Retry-After', ...env('ZTP_BOOTSTRAP_FAILURE_LIMIT') }),
        passwordChecks: Type.Integer({ minimum: 1, maximum: 64, default: 2, description: 'password verifications (scrypt, ~90 ms each) running at once, off the event loop', ...env('ZTP_BOOTSTRAP_PASSWORD_CHECKS') }),
        passwordQueue: Type.Integer({ minimum: 0, maximum: 100_000, default: 1024, description: 'password verifications waiting at most, each for up to 10 s; beyond either, 503 with Retry-After', ...env('ZTP_BOOTSTRAP_PASSWORD_QUEUE') }),
        sourceFailureLimit: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 30, description: 'failed authentications from one address, any serial, per failureWindow before that address gets 429 with Retry-After for anything needing a password check', ...env('ZTP_BOOTSTRAP_SOURCE_FAILURE_LIMIT') }),
        passwordChecksPerSource: Type.Integer({ minimum: 0, maximum: 64, default: 0, description: 'password verifications one address may run at once (0: no cap beyond passwordChecks)', ...env('ZTP_BOOTSTRAP_PASSWORD_CHECKS_PER_SOURCE') }),
      },
      { additionalProperties: false, default: {} },
    ),
    api: Type.Object(
      {
        enabled: Type.Boolean({ default: true, description: 'run the admin API and dashboard', ...env('ZTP_API_ENABLED') }),
        host: Host('0.0.0.0', 'ZTP_API_HOST', 'admin API listen address'),
        port: Port(8081, 'ZTP_API_PORT', 'admin API HTTP port'),
        token: Type.String({ default: '', description: 'admin bearer token (default: generated once into <dataDir>/admin-token)', ...env('ZTP_API_TOKEN') }),
      },
      { additionalProperties: false, default: {} },
    ),
    images: Type.Object(
      {
        enabled: Type.Boolean({ default: true, description: 'run the image file server', ...env('ZTP_IMAGES_ENABLED') }),
        host: Host('0.0.0.0', 'ZTP_IMAGES_HOST', 'image server listen address'),
        port: Port(8080, 'ZTP_IMAGES_PORT', 'image server HTTP port (0 disables plain HTTP)'),
        tlsPort: Port(8444, 'ZTP_IMAGES_TLS_PORT', 'image server HTTPS port (0 disables HTTPS)'),
        bmcUrl: Type.String({ default: '', description: 'base URL BMCs use to reach the image server', ...env('ZTP_IMAGES_BMC_URL') }),
        deviceUrl: Type.String({ default: '', description: 'base URL DPUs use to reach the image server', ...env('ZTP_IMAGES_DEVICE_URL') }),
        requireClientCert: Type.Boolean({ default: false, description: 'require an IDevID client certificate on HTTPS for every image', ...env('ZTP_IMAGES_REQUIRE_CLIENT_CERT') }),
      },
      { additionalProperties: false, default: {} },
    ),
    tftp: Type.Object(
      {
        enabled: Type.Boolean({ default: false, description: 'run the TFTP server (PXE boot files from the image catalogue)', ...env('ZTP_TFTP_ENABLED') }),
        host: Host('0.0.0.0', 'ZTP_TFTP_HOST', 'TFTP listen address (also the next-server DHCP hands PXE clients, when not 0.0.0.0)'),
        port: Port(69, 'ZTP_TFTP_PORT', 'TFTP port; firmware only uses 69, which needs root or CAP_NET_BIND_SERVICE'),
        maxTransfers: Type.Integer({ minimum: 1, maximum: 10_000, default: 64, description: 'concurrent TFTP transfers; more requests are refused with an error', ...env('ZTP_TFTP_MAX_TRANSFERS') }),
        maxBlksize: Type.Integer({ minimum: 8, maximum: 65464, default: 65464, description: 'largest block size granted to a client (RFC 2348), bytes', ...env('ZTP_TFTP_MAX_BLKSIZE') }),
        timeout: Type.Integer({ minimum: 1, maximum: 255, default: 1, description: 'retransmit timeout when the client asks for none (RFC 2349), seconds', ...env('ZTP_TFTP_TIMEOUT') }),
        retries: Type.Integer({ minimum: 0, maximum: 100, default: 5, description: 'retransmissions of one packet before a transfer is abandoned', ...env('ZTP_TFTP_RETRIES') }),
      },
      { additionalProperties: false, default: {} },
    ),
    dhcp: DhcpSectionSchema,
    // The onboarding conductor (src/onboarding/): one job per device from BMC check to cleanup.
    onboarding: Type.Object(
      {
        enabled: Type.Boolean({ default: true, description: 'run the onboarding conductor (drives BMCs, times steps out)', ...env('ZTP_ONBOARDING_ENABLED') }),
        concurrency: Type.Integer({ minimum: 1, maximum: 100_000, default: 50, description: 'devices onboarded at once (jobs beyond wait queued)', ...env('ZTP_ONBOARDING_CONCURRENCY') }),
        bootPath: Type.Union([Type.Literal('auto'), Type.Literal('virtual-media'), Type.Literal('uefi-http')], {
          default: 'auto',
          description: 'how BMCs boot the image: virtual media (InsertMedia + Cd), UEFI HTTP boot, or auto (virtual media when the BMC has a CD slot)',
          ...env('ZTP_ONBOARDING_BOOT_PATH'),
        }),
        timeouts: Type.Object(
          {
            bmcCheck: Type.Integer({ minimum: 1, maximum: 604_800, default: 120, description: 'bmc-check step: login and inventory, seconds', ...env('ZTP_ONBOARDING_TIMEOUT_BMC_CHECK') }),
            mediaInsert: Type.Integer({ minimum: 1, maximum: 604_800, default: 600, description: 'media-insert step: InsertMedia until the BMC reports it inserted, seconds', ...env('ZTP_ONBOARDING_TIMEOUT_MEDIA_INSERT') }),
            httpBootSet: Type.Integer({ minimum: 1, maximum: 604_800, default: 120, description: 'http-boot-set step, seconds', ...env('ZTP_ONBOARDING_TIMEOUT_HTTP_BOOT_SET') }),
            bootOverride: Type.Integer({ minimum: 1, maximum: 604_800, default: 120, description: 'boot-override step: one-time boot target, seconds', ...env('ZTP_ONBOARDING_TIMEOUT_BOOT_OVERRIDE') }),
            powerOn: Type.Integer({ minimum: 1, maximum: 604_800, default: 300, description: 'power-on step: reset until the system reports On, seconds', ...env('ZTP_ONBOARDING_TIMEOUT_POWER_ON') }),
            booting: Type.Integer({ minimum: 1, maximum: 604_800, default: 1800, description: 'booting step: from power-on to the first get-bootstrapping-data, seconds', ...env('ZTP_ONBOARDING_TIMEOUT_BOOTING') }),
            bootstrapping: Type.Integer({ minimum: 1, maximum: 604_800, default: 600, description: 'bootstrapping step: from get-bootstrapping-data to the first progress report, seconds', ...env('ZTP_ONBOARDING_TIMEOUT_BOOTSTRAPPING') }),
            progress: Type.Integer({ minimum: 1, maximum: 604_800, default: 1800, description: 'progress step: longest silence between two progress reports, seconds', ...env('ZTP_ONBOARDING_TIMEOUT_PROGRESS') }),
            cleanup: Type.Integer({ minimum: 1, maximum: 604_800, default: 300, description: 'cleanup step: eject media, clear the boot override, seconds', ...env('ZTP_ONBOARDING_TIMEOUT_CLEANUP') }),
          },
          { additionalProperties: false, default: {} },
        ),
        webhookUrl: Type.String({ default: '', description: 'POST every onboarding transition to this URL (JSON; X-Ztp-Signature: sha256=HMAC of the body)', ...env('ZTP_ONBOARDING_WEBHOOK_URL') }),
        webhookSecret: Type.String({ default: '', description: 'HMAC-SHA256 key for webhook signatures (empty: unsigned)', ...env('ZTP_ONBOARDING_WEBHOOK_SECRET') }),
        webhooks: Type.Array(
          Type.Object(
            {
              url: Type.String({ minLength: 1 }),
              secret: Type.Optional(Type.String()),
              events: Type.Optional(Type.Array(Type.String(), { description: 'statuses or steps to send (default: every transition)' })),
            },
            { additionalProperties: false },
          ),
          { default: [], description: 'more webhook receivers (JSON config file only)' },
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    pki: Type.Object(
      {
        ownerCert: Type.String({ default: '', description: 'operator owner certificate (PEM); default: the generated lab owner certificate', ...env('ZTP_PKI_OWNER_CERT') }),
        ownerKey: Type.String({ default: '', description: 'operator owner private key (PEM)', ...env('ZTP_PKI_OWNER_KEY') }),
        ownerChain: Type.String({ default: '', description: 'PEM bundle: owner certificate chain up to the pinned-domain-cert', ...env('ZTP_PKI_OWNER_CHAIN') }),
        deviceTrustBundle: Type.String({ default: '', description: 'PEM bundle of IDevID trust anchors (and intermediates); default: the lab IDevID CA', ...env('ZTP_PKI_DEVICE_TRUST_BUNDLE') }),
        vouchersDir: Type.String({ default: '', description: 'directory of vendor-issued vouchers <serial>.vcj, passed through untouched', ...env('ZTP_PKI_VOUCHERS_DIR') }),
        tlsCert: Type.String({ default: '', description: 'operator TLS certificate (PEM) for the HTTPS listeners', ...env('ZTP_PKI_TLS_CERT') }),
        tlsKey: Type.String({ default: '', description: 'operator TLS private key (PEM)', ...env('ZTP_PKI_TLS_KEY') }),
      },
      { additionalProperties: false, default: {} },
    ),
    // Limits shared by every HTTP listener (src/http/config-schema.ts).
    http: HttpSectionSchema,
  },
  { additionalProperties: false },
);

export type Config = Static<typeof ConfigSchema>;

/** ZTP_* variables that are not settings (read elsewhere, documented in the README). */
const NON_SETTING_ENV = new Set(['ZTP_CONFIG', 'ZTP_SHARED']);

export interface SettingInfo {
  path: string[];
  key: string;
  env: string;
  flag: string;
  default: unknown;
  description: string;
}

/** Every configurable leaf, in schema order: feeds env parsing, flags and the README table. */
export function listSettings(schema: TObject = ConfigSchema, prefix: string[] = []): SettingInfo[] {
  const out: SettingInfo[] = [];
  for (const [name, sub] of Object.entries(schema.properties) as [string, TSchema][]) {
    const path = [...prefix, name];
    if (sub.type === 'object' && sub.properties) {
      out.push(...listSettings(sub as TObject, path));
    } else if (typeof sub.env === 'string') {
      out.push({
        path,
        key: path.join('.'),
        env: sub.env,
        flag: '--' + path.map((p) => p.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())).join('-'),
        default: sub.default,
        description: String(sub.description ?? ''),
      });
    }
  }
  return out;
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const part of path.slice(0, -1)) {
    const next = node[part];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[part] = {};
    node = node[part] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}

function schemaAt(path: string[]): TSchema {
  let s: TSchema = ConfigSchema;
  for (const p of path) s = (s as TObject).properties[p] as TSchema;
  return s;
}

/** Strings from env/flags become the leaf's type; a value that does not convert fails validation later. */
function coerce(raw: string, schema: TSchema): unknown {
  if (schema.type === 'integer' || schema.type === 'number') {
    return /^-?\d+(\.\d+)?$/.test(raw.trim()) ? Number(raw) : raw;
  }
  if (schema.type === 'boolean') {
    if (/^(1|true|yes|on)$/i.test(raw)) return true;
    if (/^(0|false|no|off)$/i.test(raw)) return false;
    return raw;
  }
  return raw;
}

export interface ConfigSources {
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** flag name without dashes' prefix (e.g. 'bootstrap-port') → value */
  flags?: Record<string, string>;
}

export function loadConfig(sources: ConfigSources = {}): Config {
  const environment = sources.env ?? process.env;
  const settings = listSettings();
  let raw: Record<string, unknown> = {};
  const file = sources.file ?? environment.ZTP_CONFIG;
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ZtpError('CONFIG_INVALID', `cannot read config file ${file}: ${(err as Error).message}`, { cause: err });
    }
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('top level must be an object');
      raw = parsed as Record<string, unknown>;
    } catch (err) {
      throw new ZtpError('CONFIG_INVALID', `config file ${file} is not a JSON object: ${(err as Error).message}`, { cause: err });
    }
  }
  const byEnv = new Map(settings.map((s) => [s.env, s]));
  for (const [name, value] of Object.entries(environment)) {
    if (!name.startsWith('ZTP_') || value === undefined || NON_SETTING_ENV.has(name)) continue;
    const setting = byEnv.get(name);
    if (!setting) throw new ZtpError('CONFIG_UNKNOWN_KEY', `unknown environment variable ${name} (see README "Configuration")`, { details: { key: name } });
    setPath(raw, setting.path, coerce(value, schemaAt(setting.path)));
  }
  const byFlag = new Map(settings.map((s) => [s.flag.slice(2), s]));
  for (const [flag, value] of Object.entries(sources.flags ?? {})) {
    const setting = byFlag.get(flag);
    if (!setting) throw new ZtpError('CONFIG_UNKNOWN_KEY', `unknown option --${flag}`, { details: { key: flag } });
    setPath(raw, setting.path, coerce(value, schemaAt(setting.path)));
  }
  return validateConfig(raw);
}

let schemaSupported = false;

/** Fills defaults and validates; the first error names the key (dotted path) and what is wrong. */
export function validateConfig(raw: unknown): Config {
  if (!schemaSupported) {
    assertSupported(ConfigSchema);
    schemaSupported = true;
  }
  let withDefaults = fillDefaults(ConfigSchema, structuredClone(raw ?? {}));
  // TypeBox explains a failure (loaded only then); should it find nothing wrong, its defaults stand.
  if (!conforms(ConfigSchema, withDefaults)) withDefaults = typeboxDefaultsOrThrow(raw);
  const config = withDefaults as Config;
  if (config.bootstrap.serialFrom === 'regex') {
    try {
      new RegExp(config.bootstrap.serialRegex);
    } catch {
      throw new ZtpError('CONFIG_INVALID', 'configuration key "bootstrap.serialRegex": not a valid regular expression', { details: { key: 'bootstrap.serialRegex' } });
    }
    if (!config.bootstrap.serialRegex) throw new ZtpError('CONFIG_INVALID', 'configuration key "bootstrap.serialRegex": required when bootstrap.serialFrom is "regex"', { details: { key: 'bootstrap.serialRegex' } });
  }
  for (const key of ['bmcUrl', 'deviceUrl'] as const) {
    const value = config.images[key];
    if (value && !/^https?:\/\/[^/\s]+/.test(value)) {
      throw new ZtpError('CONFIG_INVALID', `configuration key "images.${key}": must be an http(s) URL (got ${JSON.stringify(value)})`, { details: { key: `images.${key}` } });
    }
  }
  for (const hook of [config.onboarding.webhookUrl, ...config.onboarding.webhooks.map((w) => w.url)]) {
    if (hook && !/^https?:\/\/[^/\s]+/.test(hook)) {
      throw new ZtpError('CONFIG_INVALID', `configuration key "onboarding.webhooks": ${JSON.stringify(hook)} is not an http(s) URL`, { details: { key: 'onboarding.webhooks' } });
    }
  }
  validateDhcpSettings(config.dhcp);
  preflightDhcp(config.dhcp);
  validateHttpSettings(config.http);
  return config;
}

/**
 * The configuration's first schema error, as TypeBox words it, thrown as a ZtpError naming the
 * key; TypeBox's Value module (its CommonJS build: validateConfig is synchronous) is loaded
 * only here, when the document has already failed the check of schema.ts.
 */
function typeboxDefaultsOrThrow(raw: unknown): unknown {
  const { Value } = createRequire(import.meta.url)('@sinclair/typebox/value') as { Value: typeof TypeboxValue };
  const withDefaults: unknown = Value.Default(ConfigSchema, structuredClone(raw ?? {}));
  const first = Value.Errors(ConfigSchema, withDefaults).First();
  if (!first) return withDefaults;
  const key = first.path.replace(/^\//, '').replace(/\//g, '.') || '(root)';
  // TypeBox reports an unknown key as an additionalProperties failure at the parent; name the key itself.
  if (first.schema.additionalProperties === false && typeof first.value === 'object' && first.value !== null) {
    const known = Object.keys((first.schema as TObject).properties ?? {});
    const unknown = Object.keys(first.value as object).filter((k) => !known.includes(k));
    const name = [first.path.replace(/^\//, '').replace(/\//g, '.'), unknown[0]].filter(Boolean).join('.');
    throw new ZtpError('CONFIG_UNKNOWN_KEY', `unknown configuration key "${name}"`, { details: { key: name } });
  }
  throw new ZtpError('CONFIG_INVALID', `configuration key "${key}": ${first.message} (got ${JSON.stringify(first.value)})`, { details: { key } });
}
