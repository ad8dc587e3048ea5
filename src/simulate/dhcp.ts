// How a simulated DPU gets its DHCP answer. Two paths, chosen explicitly and logged, never
// guessed:
//   netns   the real thing: BusyBox udhcpc, one macvlan per DPU MAC inside a network namespace
//           this module creates, veth-linked to an interface in the host namespace that the
//           suite's DHCP responder serves (ZTP_DHCP_INTERFACE). Needs root. The lease's option
//           143 (sZTP redirect, RFC 8572 §8.3) and boot file are what the DPU then uses.
//   direct  no DHCP on the wire: the DPU takes the bootstrap URL from the lab configuration (as
//           an operator-set URL, the OPI agent's --bootstrap_url). For labs without root.
// Cleanup deletes the namespace (and with it the veth pair and macvlans) and kills only the
// udhcpc processes started here.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Profile } from '../devices/model.js';
import { decodeSztpServerList, SZTP_RPC_PATH } from '../dhcp/codec/options.js';
import { errorMessage, ZtpError } from '../errors.js';
import type { Logger } from '../log.js';

const run = promisify(execFile);

export interface LeaseRequest {
  serial: string;
  mac: string;
  profile: Profile;
}

export interface DhcpLease {
  via: 'netns' | 'direct';
  /** the address offered, null on the direct path */
  address: string | null;
  /** bootstrap server base URLs from option 143 (empty: none offered / direct path) */
  sztpUrls: string[];
  /** option 67 / file field, when the server sent one */
  bootFileUrl: string | null;
  serverId: string | null;
}

export interface DhcpPath {
  readonly mode: 'netns' | 'direct';
  acquire(request: LeaseRequest, signal?: AbortSignal): Promise<DhcpLease>;
  close(): Promise<void>;
}

/** The direct path: no packets; the DPU uses the lab's bootstrap URL. Logged once, loudly enough. */
export function directDhcp(log: Logger): DhcpPath {
  log.info('DHCP path: direct (no DHCP on the wire; DPUs use the lab bootstrap URL). Run as root with --dhcp netns for the real responder.');
  return {
    mode: 'direct',
    acquire: async () => ({ via: 'direct', address: null, sztpUrls: [], bootFileUrl: null, serverId: null }),
    close: async () => undefined,
  };
}

/**
 * RFC 8572 §8.3 option 143 as udhcpc exports it (`opt143`, hex): the rfc8572 list of
 * uri-length + URI, or (opi encoding, SZTP-INTEROP.md) the plain text of the full RPC URL.
 * Returns base URLs https://host[:port].
 */
export function sztpUrlsFromOption(hex: string): string[] {
  const bytes = Buffer.from(hex.replace(/[^0-9a-f]/gi, ''), 'hex');
  if (bytes.length === 0) return [];
  let uris: string[];
  try {
    uris = decodeSztpServerList(bytes);
  } catch {
    uris = [bytes.toString('utf8').replace(/\0+$/, '')];
  }
  return uris.filter((u) => /^https:\/\//i.test(u)).map((u) => (u.endsWith(SZTP_RPC_PATH) ? u.slice(0, -SZTP_RPC_PATH.length) : u).replace(/\/+$/, ''));
}

export interface NetnsDhcpOptions {
  log: Logger;
  /** host-side interface name (what ZTP_DHCP_INTERFACE names), ≤ 15 characters */
  hostInterface?: string;
  /** host-side address with prefix, e.g. 10.231.0.1/24 */
  hostAddress?: string;
  /** udhcpc runs at once (each spawns a process) */
  concurrency?: number;
  /** discover attempts and seconds between them */
  attempts?: number;
  timeoutMs?: number;
}

let seq = 0;

/** The netns path. `create()` checks for root and the tools and builds the namespace. */
export class NetnsDhcp implements DhcpPath {
  readonly mode = 'netns' as const;
  private readonly macvlans = new Map<string, string>();
  private readonly children = new Set<ChildProcess>();
  private readonly waiters: (() => void)[] = [];
  private active = 0;
  private closed = false;

  private constructor(
    readonly namespace: string,
    readonly hostInterface: string,
    readonly hostAddress: string,
    private readonly peer: string,
    private readonly dir: string,
    private readonly options: NetnsDhcpOptions,
  ) {}

  static async create(options: NetnsDhcpOptions): Promise<NetnsDhcp> {
    if (typeof process.getuid !== 'function' || process.getuid() !== 0) throw new ZtpError('SIM_NETNS_UNAVAILABLE', 'the netns DHCP path needs root (use --dhcp direct otherwise)');
    for (const tool of ['ip', 'udhcpc']) {
      try {
        await run('sh', ['-c', `command -v ${tool}`]);
      } catch {
        throw new ZtpError('SIM_NETNS_UNAVAILABLE', `the netns DHCP path needs ${tool} (Debian: iproute2, udhcpc)`);
      }
    }
    const id = `${(process.pid % 1000).toString(36)}${(seq++).toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
    const namespace = `ztpsim-${id}`;
    const hostInterface = options.hostInterface ?? `zsh${id}`.slice(0, 15);
    const peer = `zsp${id}`.slice(0, 15);
    const hostAddress = options.hostAddress ?? '10.231.0.1/24';
    const dir = mkdtempSync(join(tmpdir(), 'ztp-sim-dhcp-'));
    const lab = new NetnsDhcp(namespace, hostInterface, hostAddress, peer, dir, options);
    try {
      await run('ip', ['netns', 'add', namespace]);
      await run('ip', ['-n', namespace, 'link', 'set', 'lo', 'up']);
      await run('ip', ['link', 'add', hostInterface, 'type', 'veth', 'peer', 'name', peer, 'netns', namespace]);
      await run('ip', ['addr', 'add', hostAddress, 'dev', hostInterface]);
      await run('ip', ['link', 'set', hostInterface, 'up']);
      await run('ip', ['-n', namespace, 'link', 'set', peer, 'up']);
    } catch (err) {
      await lab.close();
      throw new ZtpError('SIM_NETNS_UNAVAILABLE', `could not build the DHCP namespace: ${errorMessage(err)}`, { cause: err });
    }
    writeFileSync(join(dir, 'lease.sh'), '#!/bin/sh\n# udhcpc event script: record the lease, configure nothing.\ncase "$1" in bound|renew) env > "$ZTP_LEASE_FILE" ;; esac\nexit 0\n', { mode: 0o700 });
    options.log.info({ namespace, hostInterface, hostAddress }, `DHCP path: netns (udhcpc against the responder on ${hostInterface}; serve DHCP there: ZTP_DHCP_INTERFACE=${hostInterface})`);
    return lab;
  }

  async acquire(request: LeaseRequest, signal?: AbortSignal): Promise<DhcpLease> {
    if (this.closed) throw new ZtpError('SIM_NETNS_UNAVAILABLE', 'DHCP namespace is closed');
    await this.slot();
    try {
      const dev = await this.macvlanFor(request.mac);
      const leaseFile = join(this.dir, `${dev}.env`);
      rmSync(leaseFile, { force: true });
      const attempts = this.options.attempts ?? 4;
      // Vendor class as the device's OS would send it; 143 asked for in the PRL (RFC 8572 §8.1).
      const args = ['netns', 'exec', this.namespace, 'udhcpc', '-f', '-q', '-n', '-i', dev, '-t', String(attempts), '-T', '1', '-A', '1', '-s', join(this.dir, 'lease.sh'), '-O', '143', '-O', 'bootfile', '-V', request.profile === 'opi' ? 'OPI-sztp-agent' : 'sZTP-simulated-dpu', '-x', `hostname:${request.serial}`];
      const child = spawn('ip', args, { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ZTP_LEASE_FILE: leaseFile } });
      this.children.add(child);
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
      child.stdout!.resume();
      const onAbort = () => child.kill('SIGKILL');
      signal?.addEventListener('abort', onAbort, { once: true });
      const timer = setTimeout(() => child.kill('SIGKILL'), this.options.timeoutMs ?? (attempts + 3) * 1000);
      const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      this.children.delete(child);
      let env: Record<string, string>;
      try {
        env = Object.fromEntries(readFileSync(leaseFile, 'utf8').split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
      } catch {
        throw new ZtpError('SIM_TIMEOUT', `DHCP: no lease for ${request.mac} (udhcpc exit ${code}): ${stderr.trim().split('\n').slice(-2).join(' | ')}`);
      }
      const lease: DhcpLease = {
        via: 'netns',
        address: env.ip ?? null,
        sztpUrls: env.opt143 ? sztpUrlsFromOption(env.opt143) : [],
        bootFileUrl: env.bootfile || env.boot_file || null,
        serverId: env.serverid ?? null,
      };
      this.options.log.info({ serial: request.serial, mac: request.mac, address: lease.address, sztp: lease.sztpUrls, bootFile: lease.bootFileUrl }, 'DHCP: lease through the netns path');
      return lease;
    } finally {
      this.release();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const child of this.children) child.kill('SIGKILL');
    await run('ip', ['netns', 'del', this.namespace]).catch(() => undefined);
    // The host end goes with its peer; delete it explicitly in case the peer never got there.
    await run('ip', ['link', 'del', this.hostInterface]).catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async macvlanFor(mac: string): Promise<string> {
    const existing = this.macvlans.get(mac);
    if (existing) return existing;
    const dev = `m${this.macvlans.size}`;
    this.macvlans.set(mac, dev);
    await run('ip', ['-n', this.namespace, 'link', 'add', 'link', this.peer, 'name', dev, 'address', mac, 'type', 'macvlan', 'mode', 'bridge']);
    await run('ip', ['-n', this.namespace, 'link', 'set', dev, 'up']);
    return dev;
  }

  private async slot(): Promise<void> {
    if (this.active < (this.options.concurrency ?? 8)) {
      this.active++;
      return;
    }
    await new Promise<void>((resolve) => this.waiters.push(resolve));
    this.active++;
  }

  private release(): void {
    this.active--;
    this.waiters.shift()?.();
  }
}
