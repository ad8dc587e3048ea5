// compose.yaml, .env.example and the Dockerfile cannot drift from the code: no Docker engine runs
// here, so what can be checked without one is checked against the real things: the Compose
// Specification schema (ajv), Debian docker-compose, the `ztp` command's own commander program,
// the configuration schema (src/config.ts) and the admin API's routes.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { buildApiApp } from '../../src/api/app.js';
import { REGISTRARS } from '../../src/cli/commands.js';
import { buildProgram } from '../../src/cli/main.js';
import { loadConfig } from '../../src/config.js';
import { openDatabase } from '../../src/db/database.js';
import { DeviceStore } from '../../src/devices/store.js';
import { silentLogger } from '../../src/log.js';
import { isRoot, missingShared, missingTool, sharedPath } from '../helpers/shared.js';

const root = new URL('../../', import.meta.url).pathname;
const composeText = readFileSync(`${root}compose.yaml`, 'utf8');
const compose = parse(composeText) as { services: Record<string, Service>; volumes: Record<string, unknown> };

interface Service {
  build?: { context: string; target?: string };
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  profiles?: string[];
  volumes?: string[];
  network_mode?: string;
  cap_add?: string[];
  cap_drop?: string[];
  healthcheck?: { test?: string[]; disable?: boolean };
  depends_on?: Record<string, { condition: string }>;
}

/** ${VAR:-default} / ${VAR} as compose resolves them with no .env: the default, or ''. */
function withDefaults(value: string): string {
  return value.replace(/\$\{([A-Z0-9_]+)(?::?-([^}]*))?\}/g, (_, _name: string, def: string | undefined) => def ?? '');
}

/** Every variable compose.yaml interpolates (comments excluded). */
function composeVariables(): Set<string> {
  const body = composeText.split('\n').filter((l) => !/^\s*#/.test(l)).join('\n');
  return new Set([...body.matchAll(/\$\{([A-Z0-9_]+)/g)].map((m) => m[1]!));
}

function program(): Command {
  return buildProgram({ out: () => undefined, err: () => undefined }, () => undefined, REGISTRARS);
}

/** Walks `args` down the commander tree: the subcommand reached and every flag known on the way. */
function checkCliArgs(args: string[]): { command: string; unknown: string[] } {
  let cmd = program();
  const names: string[] = [];
  let i = 0;
  const flags = () => new Set([cmd, ...ancestors(cmd)].flatMap((c) => c.options.flatMap((o) => [o.long, o.short].filter(Boolean) as string[])));
  const unknown: string[] = [];
  while (i < args.length) {
    const arg = args[i]!;
    const sub = cmd.commands.find((c) => c.name() === arg || c.aliases().includes(arg));
    if (!arg.startsWith('-') && sub) {
      cmd = sub;
      names.push(arg);
      i++;
      continue;
    }
    if (arg.startsWith('-')) {
      const flag = arg.split('=')[0]!;
      const option = [cmd, ...ancestors(cmd)].flatMap((c) => c.options).find((o) => o.long === flag || o.short === flag);
      if (!flags().has(flag)) unknown.push(flag);
      i += option && (option.required || option.optional) && !arg.includes('=') ? 2 : 1;
      continue;
    }
    i++;
  }
  if (cmd.commands.length > 0) unknown.push(`(${names.join(' ') || 'ztp'} needs a subcommand)`);
  return { command: names.join(' '), unknown };
}

function ancestors(cmd: Command): Command[] {
  const out: Command[] = [];
  for (let p = cmd.parent; p; p = p.parent) out.push(p);
  return out;
}

interface DockerStage {
  name: string;
  from: string;
  instructions: { op: string; args: string }[];
}

/** The Dockerfile as stages of instructions (continuation lines joined, comments dropped). */
function dockerStages(): DockerStage[] {
  const text = readFileSync(`${root}Dockerfile`, 'utf8').replace(/\\\n/g, ' ');
  const stages: DockerStage[] = [];
  for (const line of text.split('\n')) {
    const m = /^([A-Z]+)\s+(.*)$/.exec(line.trim());
    if (!m || line.trim().startsWith('#')) continue;
    const [, op, args] = m as unknown as [string, string, string];
    if (op === 'FROM') {
      const from = /^(\S+)(?:\s+AS\s+(\S+))?/i.exec(args)!;
      stages.push({ name: from[2] ?? String(stages.length), from: from[1]!, instructions: [] });
    } else stages.at(-1)?.instructions.push({ op, args });
  }
  return stages;
}

function stage(name: string): DockerStage {
  const s = dockerStages().find((x) => x.name === name);
  if (!s) throw new Error(`no stage ${name}`);
  return s;
}

/** An instruction as the stage sees it, inherited from the stage it is built FROM. */
function inherited(name: string, op: string): string | undefined {
  for (let s: DockerStage | undefined = stage(name); s; s = dockerStages().find((x) => x.name === s!.from)) {
    const own = s.instructions.filter((i) => i.op === op).at(-1);
    if (own) return own.args;
  }
  return undefined;
}

function apiApp() {
  const store = new DeviceStore(openDatabase({ file: ':memory:' }));
  return buildApiApp({ store, log: silentLogger, token: 'tok' });
}

/** The path a node fetch() healthcheck probes. */
function probedPath(test: string): string {
  const m = /fetch\('http:\/\/127\.0\.0\.1:'\+[^+]+\+'(\/[a-z]+)'\)/.exec(test);
  if (!m) throw new Error(`no fetch probe in ${test}`);
  return m[1]!;
}

describe('compose.yaml against the Compose Specification', () => {
  it.skipIf(missingShared('compose', 'compose-spec.json'))('validates with ajv (draft-07, the schema\'s $schema), and the validator does reject a broken file', () => {
    const schema = JSON.parse(readFileSync(sharedPath('compose', 'compose-spec.json'), 'utf8')) as Record<string, unknown>;
    expect(schema.$schema).toMatch(/draft-07/);
    // Ajv's default dialect is draft-07; its meta-schema id is the http:// form, so the https://
    // $schema the file names is set aside rather than fetched.
    const { $schema: _dialect, ...body } = schema;
    const ajv = new Ajv({ allErrors: true, strict: false });
    const validate = ajv.compile(body);
    const ok = validate(compose);
    expect(validate.errors ?? [], JSON.stringify(validate.errors, null, 2)).toEqual([]);
    expect(ok).toBe(true);
    // A misspelt key and a wrong type are caught: the check can fail.
    const broken = structuredClone(compose) as unknown as { services: Record<string, Record<string, unknown>> };
    broken.services.ztp!.healthchek = broken.services.ztp!.healthcheck;
    broken.services.ztp!.cap_add = 'NET_RAW';
    expect(validate(broken)).toBe(false);
  });

  for (const profiles of [[], ['sim'], ['sim', 'dhcp']]) {
    it.skipIf(missingTool('docker-compose'))(`docker-compose config -q accepts it${profiles.length ? ` with --profile ${profiles.join(' --profile ')}` : ''}`, () => {
      const args = [...profiles.flatMap((p) => ['--profile', p]), '-f', 'compose.yaml', 'config', '-q'];
      // A clean environment: compose must not depend on the caller's ZTP_* variables.
      const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tmpdir() };
      expect(() => execFileSync('docker-compose', args, { cwd: root, stdio: 'pipe', env })).not.toThrow();
    });
  }

  it.skipIf(missingTool('docker-compose'))('with .env.example as the env file, docker-compose resolves the same file as with no variables set', () => {
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tmpdir() };
    const config = (extra: string[]) => execFileSync('docker-compose', [...extra, '--profile', 'sim', '--profile', 'dhcp', '-f', 'compose.yaml', 'config'], { cwd: root, encoding: 'utf8', env });
    expect(config(['--env-file', '.env.example'])).toBe(config([]));
  });
});

describe('compose.yaml against the code', () => {
  const services = Object.entries(compose.services);

  it('builds the image from the Dockerfile (no bind-mounted source) and keeps data in named volumes', () => {
    const targets = new Set(dockerStages().map((s) => s.name));
    for (const [name, s] of services) {
      expect(s.build, name).toBeDefined();
      expect(targets.has(s.build!.target!), `${name}: target ${s.build!.target}`).toBe(true);
      for (const v of s.volumes ?? []) {
        const source = v.split(':')[0]!;
        expect(Object.keys(compose.volumes), `${name}: ${v} is not a named volume`).toContain(source);
      }
    }
  });

  it.each(services)('service %s: its command is one the ztp command accepts', (name, s) => {
    const entrypoint = inherited(s.build!.target!, 'ENTRYPOINT');
    expect(JSON.parse(entrypoint!).slice(1)).toEqual(['bin/ztp.js']);
    const { command, unknown } = checkCliArgs((s.command ?? []).map(withDefaults));
    expect(unknown, name).toEqual([]);
    expect(['serve', 'simulate']).toContain(command);
  });

  it.each(services)('service %s: its environment is valid for the configuration schema', (name, s) => {
    const env = Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, withDefaults(String(v))]));
    for (const key of Object.keys(env)) expect(key, name).toMatch(/^ZTP_/);
    // loadConfig refuses unknown ZTP_* variables and impossible values, naming them.
    expect(() => loadConfig({ env }), name).not.toThrow();
  });

  it('the schema check can fail: an unknown or impossible variable is refused', () => {
    expect(() => loadConfig({ env: { ZTP_BOOTSTRAP_PROT: '8443' } })).toThrow(/ZTP_BOOTSTRAP_PROT/);
    expect(() => loadConfig({ env: { ZTP_API_PORT: 'eighty' } })).toThrow(/api\.port/);
    expect(checkCliArgs(['simulate', '--cuont', '3']).unknown).toEqual(['--cuont']);
  });

  it('the sim profile runs ztp simulate --onboard in the suite\'s network and data volume once the suite is healthy', () => {
    const sim = compose.services['ztp-simulate']!;
    expect(sim.profiles).toEqual(['sim']);
    expect(sim.network_mode).toBe('service:ztp');
    expect(sim.depends_on?.ztp?.condition).toBe('service_healthy');
    expect(sim.volumes).toContain('ztp-data:/var/lib/dpu-ztp');
    expect(sim.command).toContain('--onboard');
    // It finds the suite's API and bootstrap server on the ports the suite listens on.
    const suite = compose.services.ztp!.environment!;
    for (const key of ['ZTP_API_PORT', 'ZTP_BOOTSTRAP_PORT', 'ZTP_DATA_DIR', 'ZTP_PUBLIC_HOST']) expect(sim.environment![key], key).toBe(suite[key]);
  });

  it('the suite publishes each port it listens on, host side = container side (the URLs it hands out stay right)', () => {
    const ztp = compose.services.ztp as Service & { ports: string[] };
    const env = ztp.environment!;
    for (const key of ['ZTP_BOOTSTRAP_PORT', 'ZTP_API_PORT', 'ZTP_IMAGES_PORT', 'ZTP_IMAGES_TLS_PORT']) {
      expect(ztp.ports, key).toContain(`${env[key]}:${env[key]}`);
    }
  });

  it('DHCP runs alone on the host network with NET_BIND_SERVICE only, and no second onboarding conductor', () => {
    const dhcp = compose.services['ztp-dhcp']!;
    expect(dhcp.network_mode).toBe('host');
    expect(dhcp.cap_drop).toEqual(['ALL']);
    expect(dhcp.cap_add).toEqual(['NET_BIND_SERVICE']);
    expect(dhcp.build!.target).toBe('dhcp');
    const env = dhcp.environment!;
    for (const key of ['ZTP_BOOTSTRAP_ENABLED', 'ZTP_IMAGES_ENABLED', 'ZTP_ONBOARDING_ENABLED']) expect(env[key], key).toBe('false');
    expect(env.ZTP_API_HOST).toBe('127.0.0.1');
    expect(withDefaults(env.ZTP_DHCP_INTERFACE!)).not.toBe('');
    // Option 143 names the bootstrap server the `ztp` service publishes.
    expect(env.ZTP_BOOTSTRAP_PORT).toBe(compose.services.ztp!.environment!.ZTP_BOOTSTRAP_PORT);
  });

  it('every healthcheck probes a route the admin API serves', async () => {
    const app = apiApp();
    for (const [name, s] of services) {
      if (s.healthcheck?.disable) continue;
      const test = s.healthcheck?.test?.join(' ') ?? inherited(s.build!.target!, 'HEALTHCHECK')!;
      const res = await app.inject({ url: probedPath(test) });
      expect(res.statusCode, `${name}: ${probedPath(test)}`).toBe(200);
      expect(s.environment?.ZTP_API_PORT, `${name} probes ZTP_API_PORT`).toBeDefined();
    }
    await app.close();
  });
});

describe('.env.example', () => {
  const text = readFileSync(`${root}.env.example`, 'utf8');
  const listed = new Set([...text.matchAll(/^([A-Z0-9_]+)=/gm)].map((m) => m[1]!));

  it('lists every variable compose.yaml uses, and only those', () => {
    const used = composeVariables();
    expect(used.size).toBeGreaterThan(5);
    expect([...used].filter((v) => !listed.has(v)), 'used but not listed').toEqual([]);
    expect([...listed].filter((v) => !used.has(v)), 'listed but not used').toEqual([]);
  });

  it('its values are the defaults compose.yaml falls back to', () => {
    for (const m of composeText.matchAll(/\$\{([A-Z0-9_]+):-([^}]*)\}/g)) {
      expect(new RegExp(`^${m[1]}=(.*)$`, 'm').exec(text)?.[1], m[1]).toBe(m[2]);
    }
  });
});

describe('Dockerfile', () => {
  const stages = dockerStages();
  const ignore = readFileSync(`${root}.dockerignore`, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));

  it('multi-stage on node:20-bookworm-slim: build, base, dhcp, runtime last (the default target)', () => {
    expect(stages.map((s) => s.name)).toEqual(['build', 'base', 'dhcp', 'runtime']);
    expect(readFileSync(`${root}Dockerfile`, 'utf8')).toMatch(/^ARG NODE_IMAGE=node:20-bookworm-slim$/m);
    expect(stages.filter((s) => s.from === '${NODE_IMAGE}').map((s) => s.name)).toEqual(['build', 'base']);
  });

  it('every COPY from the context exists and is not excluded by .dockerignore', () => {
    const sources = stages.flatMap((s) => s.instructions.filter((i) => i.op === 'COPY' && !i.args.includes('--from'))).flatMap((i) => i.args.split(/\s+/).filter((a) => !a.startsWith('--')).slice(0, -1));
    expect(sources.length).toBeGreaterThan(3);
    for (const src of sources) {
      expect(existsSync(join(root, src)), src).toBe(true);
      expect(ignore.some((pattern) => pattern === src || pattern === src.split('/')[0]), `${src} is in .dockerignore`).toBe(false);
    }
    // What the build stage compiles is what `npm run build` compiles.
    const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.build).toBe('tsc -p tsconfig.build.json');
    expect(sources).toEqual(expect.arrayContaining(['tsconfig.json', 'tsconfig.build.json', 'src', 'bin', 'package.json', 'package-lock.json']));
  });

  it('the runtime stages get dist/ and node_modules pruned to production dependencies', () => {
    const build = stage('build').instructions.map((i) => `${i.op} ${i.args}`).join('\n');
    expect(build).toMatch(/npm run build\s+&&\s+npm prune --omit=dev/);
    const copied = stage('base').instructions.filter((i) => i.op === 'COPY' && i.args.includes('--from=build')).map((i) => i.args.split(/\s+/).at(-2));
    expect(copied.sort()).toEqual(['/app/dist', '/app/node_modules', '/app/package.json']);
    expect(inherited('runtime', 'USER')).toBe('node');
    expect(inherited('dhcp', 'USER')).toBe('node');
  });

  it('production dependencies are enough: every package src/ imports is a dependency, not a devDependency', () => {
    const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as { dependencies: Record<string, string> };
    const files = execFileSync('git', ['ls-files', 'src', 'bin'], { cwd: root, encoding: 'utf8' }).split('\n').filter((f) => /\.(ts|js)$/.test(f));
    const missing = new Set<string>();
    for (const f of files) {
      const text = readFileSync(join(root, f), 'utf8');
      for (const m of text.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+'([^'.][^']*)'|import\('([^'.][^']*)'\)/gm)) {
        const spec = (m[1] ?? m[2])!;
        if (spec.startsWith('node:') || builtinModules.includes(spec)) continue;
        // `import type` is erased at build time: not needed at run time.
        if (/^\s*(?:import|export)\s+type\s/.test(m[0])) continue;
        const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
        if (!pkg.dependencies[name]) missing.add(`${name} (${f})`);
      }
    }
    expect([...missing]).toEqual([]);
  });

  it('ENTRYPOINT + CMD is `ztp serve`, and its HEALTHCHECK probes a real route', async () => {
    const entrypoint = JSON.parse(inherited('runtime', 'ENTRYPOINT')!) as string[];
    const cmd = JSON.parse(inherited('runtime', 'CMD')!) as string[];
    expect(entrypoint).toEqual(['node', 'bin/ztp.js']);
    expect(checkCliArgs(cmd)).toEqual({ command: 'serve', unknown: [] });
    expect(JSON.parse(inherited('dhcp', 'ENTRYPOINT')!)).toEqual(['node-dhcp', 'bin/ztp.js']);
    const health = inherited('runtime', 'HEALTHCHECK')!;
    expect(health).toMatch(/CMD \["node", "-e"/);
    const app = apiApp();
    expect((await app.inject({ url: probedPath(health.replace(/\(process\.env\.ZTP_API_PORT\|\|8081\)/, 'process.env.ZTP_API_PORT')) })).statusCode).toBe(200);
    await app.close();
  });

  // The dhcp stage's node-dhcp: a copy of node with the file capability cap_net_bind_service
  // binds a port below 1024 as an unprivileged user (and the same copy without it cannot).
  it.skipIf(!isRoot || missingTool('setcap') || missingTool('setpriv'))('a node copy with cap_net_bind_service=+ep binds a port below 1024 as an unprivileged user', () => {
    const dhcpStage = stage('dhcp').instructions.map((i) => i.args).join('\n');
    expect(dhcpStage).toMatch(/setcap cap_net_bind_service=\+ep \/usr\/local\/bin\/node-dhcp/);
    const dir = mkdtempSync(join(tmpdir(), 'ztp-node-dhcp-'));
    execFileSync('chmod', ['755', dir]);
    const bin = join(dir, 'node-dhcp');
    copyFileSync(process.execPath, bin);
    execFileSync('chmod', ['755', bin]);
    // Kernel-picked high port first, then the same number mapped below 1024: a free low port.
    const script = "const d=require('dgram');const tryPort=(p,n)=>{const s=d.createSocket('udp4');s.once('error',e=>{s.close();if(e.code==='EADDRINUSE'&&n>0)tryPort(600+Math.floor(Math.random()*400),n-1);else{console.log(e.code);process.exit(0)}});s.bind(p,'127.0.0.1',()=>{console.log('bound');s.close()})};tryPort(600+Math.floor(Math.random()*400),20)";
    const run = () => execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', bin, '-e', script], { encoding: 'utf8' }).trim();
    try {
      expect(run()).toBe('EACCES');
      execFileSync('setcap', ['cap_net_bind_service=+ep', bin]);
      expect(run()).toBe('bound');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
