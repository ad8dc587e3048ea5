// Network-namespace lab for the DHCP peer tests and the benchmark.
//
// Choice: every participant runs inside namespaces this helper creates (never the root
// namespace): the server under test is a child `node` process started with `ip netns exec`,
// compiled once per test file from src/dhcp/standalone.ts with tsc into node_modules/.cache
// (inside the checkout so node resolves pino/better-sqlite3; independent of other modules'
// mid-edit state). Clients (dhclient, udhcpc, perfdhcp) and peers (dnsmasq, kea) are
// child processes too. Names are unique per run; cleanup kills only the PIDs started here
// plus whatever still runs inside our own namespaces, then deletes the namespaces.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isRoot, missingTool } from '../helpers/shared.js';
import { NamespaceLab, type Proc } from '../helpers/netns.js';

export const REPO = resolve(import.meta.dirname, '../..');

/** Why namespace tests must skip, or ''. Prints the reason once. */
export function labSkipReason(...tools: string[]): string {
  if (!isRoot) {
    const r = 'not root: network namespace tests skipped';
    console.warn(r);
    return r;
  }
  for (const t of ['ip', ...tools]) {
    const r = missingTool(t);
    if (r) return r;
  }
  return '';
}

let built: string | undefined;

/** Compiles the standalone DHCP runner; returns the path of standalone.js. */
export function buildStandalone(): string {
  if (built && existsSync(built)) return built;
  const out = join(REPO, 'node_modules', '.cache', 'dpu-ztp-dhcp', `${process.pid}-${Date.now()}`);
  try {
    execFileSync(join(REPO, 'node_modules', '.bin', 'tsc'), ['-p', join(REPO, 'test/dhcp/tsconfig.standalone.json'), '--outDir', out], { stdio: 'pipe' });
  } catch (err) {
    // tsc exits non-zero on type errors elsewhere but still emits; only a missing output is fatal.
    if (!existsSync(join(out, 'dhcp', 'standalone.js'))) throw err;
  }
  built = join(out, 'dhcp', 'standalone.js');
  return built;
}

export type { Proc };

export class Lab extends NamespaceLab {
  constructor() {
    super('ztp-dhcp-');
  }

  ns(role: string): string {
    const name = this.addNamespace(`zd${this.id}${role}`);
    // No IPv6 duplicate address detection: link-local addresses are usable at once (DHCPv6 tests).
    this.run(name, 'sysctl', ['-q', '-w', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0']);
    return name;
  }

  /** A veth pair between two namespaces; addresses like '10.9.0.1/24' or '' for none. */
  link(nsA: string, addrA: string, nsB: string, addrB: string, tag = ''): { a: string; b: string } {
    const a = `va${this.id}${tag}`.slice(0, 15);
    const b = `vb${this.id}${tag}`.slice(0, 15);
    execFileSync('ip', ['link', 'add', a, 'netns', nsA, 'type', 'veth', 'peer', 'name', b, 'netns', nsB]);
    for (const [ns, dev, addr] of [[nsA, a, addrA], [nsB, b, addrB]] as const) {
      if (addr) this.run(ns, 'ip', ['addr', 'add', addr, 'dev', dev]);
      this.run(ns, 'ip', ['link', 'set', dev, 'up']);
    }
    return { a, b };
  }

  /** Starts the compiled DHCP standalone server in `ns` with a config file; resolves when ready. */
  async startServer(ns: string, configFile: string, publicHost = 'ztp.lab.example'): Promise<Proc> {
    const script = buildStandalone();
    const proc = this.spawn(ns, process.execPath, [script, '--config', configFile, '--public-host', publicHost]);
    await Promise.race([
      this.until(() => proc.stdout().includes('"ready":true'), 20_000, 'DHCP server ready'),
      proc.exited.then((code) => {
        throw new Error(`DHCP server exited (${code}): ${proc.stderr()}`);
      }),
    ]);
    return proc;
  }
}

/** One DHCP interface as /readyz reports it. */
export interface InterfaceReadiness {
  interface: string;
  state: string;
  reason?: string;
  address?: string;
}
export interface Readiness {
  status: number;
  body: { status: string; services: { dhcp?: { ready: boolean; state: string; reason?: string; interfaces?: InterfaceReadiness[] } } };
}

/** GET /readyz from inside namespace `ns` (curl: the API listens on the suite's loopback there). */
export function readyz(lab: Lab, ns: string): Readiness {
  const out = lab.run(ns, 'curl', ['-s', '-m', '3', '-w', '\n%{http_code}', 'http://127.0.0.1:8081/readyz']);
  const nl = out.lastIndexOf('\n');
  return { status: Number(out.slice(nl + 1)), body: JSON.parse(out.slice(0, nl)) as Readiness['body'] };
}

export async function untilReady(lab: Lab, ns: string, test: (r: Readiness) => boolean, what: string, ms = 20_000): Promise<Readiness> {
  let last: Readiness | undefined;
  const end = Date.now() + ms;
  for (;;) {
    try {
      last = readyz(lab, ns);
      if (test(last)) return last;
    } catch {
      /* API not listening yet */
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; last /readyz: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
