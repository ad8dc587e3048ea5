// A simulated DPU bound to an emulated BMC. It does nothing until its BMC says it boots
// (BootingEvent 'booting' on the emulator's `events`); then, like the real thing:
//   1. firmware reads the boot image from the image server (HEAD, then Range reads, the way
//      UEFI HttpBootDxe or a BMC's virtual-media client does);
//   2. the booted OS does DHCP (dhcp.ts: the real responder through udhcpc in a network
//      namespace, or the direct path with no DHCP on the wire — chosen explicitly, logged);
//   3. its sZTP agent (agent.ts) bootstraps in the device's profile.
// A second 'booting' while a run is in progress is a reset: the run is aborted and restarts.
// Fault modes are the device's own (bad image hash, agent crash, wrong password, never boots);
// BMC faults belong to the emulator and are passed to it by whoever builds the lab.
import { EventEmitter } from 'node:events';
import type { Profile } from '../devices/model.js';
import { errorMessage, ZtpError } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import type { BootingEvent } from '../redfish/emulator/hooks.js';
import { runAgent, type AgentIdentity, type AgentOptions, type AgentResult } from './agent.js';
import type { DhcpLease, DhcpPath } from './dhcp.js';
import { DeviceHttp, withTransportRetries } from './http.js';

/** Faults a simulated DPU can be told to have. */
export interface DpuFaults {
  /** the boot image arrives corrupted: the agent's sha-256 check fails */
  badImageHash?: boolean;
  /** the agent stops reporting after this progress type (default point: boot-image-initiated) */
  agentCrash?: boolean | string;
  /** the agent presents a wrong HTTP Basic password */
  wrongPassword?: boolean;
  /** power-on does nothing visible: no image read, no DHCP, no sZTP */
  neverBoots?: boolean;
  /** a pre-configuration script that is not executable text (set on the device record by the lab) */
  badScript?: boolean;
}

export const DPU_FAULTS = ['bad-image-hash', 'agent-crash', 'wrong-password', 'never-boots', 'bad-script'] as const;
export type DpuFaultName = (typeof DPU_FAULTS)[number];

export function faultsFromNames(names: readonly string[]): DpuFaults {
  const faults: DpuFaults = {};
  for (const name of names) {
    switch (name) {
      case 'bad-image-hash': faults.badImageHash = true; break;
      case 'agent-crash': faults.agentCrash = true; break;
      case 'wrong-password': faults.wrongPassword = true; break;
      case 'never-boots': faults.neverBoots = true; break;
      case 'bad-script': faults.badScript = true; break;
      default: throw new ZtpError('SIM_INVALID', `unknown DPU fault "${name}" (known: ${DPU_FAULTS.join(', ')})`);
    }
  }
  return faults;
}

export interface SimulatedDpuConfig {
  serial: string;
  /** lower-case colon MACs; the first is the one that does DHCP */
  macs: string[];
  profile: Profile;
  identity: AgentIdentity;
  /** the bootstrap server as the lab knows it; a DHCP answer with option 143 wins */
  bootstrapUrl: string;
  dhcp: DhcpPath;
  faults?: DpuFaults;
  /** firmware image read: bytes per Range request (default 256 KiB) */
  rangeBytes?: number;
  /** agent settings (timeouts, retries, work dir) */
  agent?: Omit<AgentOptions, 'profile' | 'identity' | 'bootstrapUrl' | 'faults' | 'signal' | 'log'>;
  log?: Logger;
}

export interface FirmwareRead {
  url: string;
  bytes: number;
  size: number;
  requests: number;
  durationMs: number;
}

export interface DpuRun {
  booting: BootingEvent;
  /** os-booted: a disk boot after a completed onboarding (the installed OS does not bootstrap again) */
  outcome: 'complete' | 'failed' | 'crashed' | 'aborted' | 'redirected' | 'dark' | 'os-booted';
  /** where it stopped: 'firmware', 'dhcp', or the agent's stage */
  stage?: string;
  error?: string;
  firmware?: FirmwareRead;
  dhcp?: DhcpLease;
  agent?: AgentResult;
  startedAt: Date;
  durationMs: number;
}

export interface SimulatedDpuEvents {
  run: [DpuRun];
}

export class SimulatedDpu extends EventEmitter<SimulatedDpuEvents> {
  readonly runs: DpuRun[] = [];
  private current: { controller: AbortController; done: Promise<DpuRun> } | undefined;
  private readonly log: Logger;
  private stopped = false;

  constructor(readonly config: SimulatedDpuConfig) {
    super();
    this.log = (config.log ?? silentLogger).child({ serial: config.serial, mac: config.macs[0], component: 'simulated-dpu' });
  }

  get serial(): string {
    return this.config.serial;
  }

  /** Listens for this DPU's BMC booting it; returns the unbinding function. */
  bind(events: EventEmitter, match: { bmcId: string; systemId?: string }): () => void {
    const onBooting = (ev: BootingEvent) => {
      if (ev.bmcId !== match.bmcId || (match.systemId !== undefined && ev.systemId !== match.systemId)) return;
      void this.boot(ev).catch((err: unknown) => this.log.error({ err: errorMessage(err) }, 'simulated DPU: run failed unexpectedly'));
    };
    events.on('booting', onBooting);
    return () => events.off('booting', onBooting);
  }

  /** The last run's promise, if one is in progress. */
  get running(): Promise<DpuRun> | undefined {
    return this.current?.done;
  }

  /** One boot: firmware read → DHCP → sZTP agent. A boot during a boot restarts it. */
  async boot(ev: BootingEvent): Promise<DpuRun> {
    if (this.stopped) throw new ZtpError('SIM_INVALID', `simulated DPU ${this.serial} is stopped`);
    if (this.current) {
      this.log.info('simulated DPU: reset during a run, starting over');
      this.current.controller.abort();
      await this.current.done.catch(() => undefined);
    }
    const controller = new AbortController();
    const done = this.run(ev, controller.signal);
    const entry = { controller, done };
    this.current = entry;
    try {
      const run = await done;
      this.runs.push(run);
      this.emit('run', run);
      return run;
    } finally {
      if (this.current === entry) this.current = undefined;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.current?.controller.abort();
    await this.current?.done.catch(() => undefined);
  }

  private async run(ev: BootingEvent, signal: AbortSignal): Promise<DpuRun> {
    const startedAt = new Date();
    const t0 = performance.now();
    const faults = this.config.faults ?? {};
    const finish = (run: Omit<DpuRun, 'booting' | 'startedAt' | 'durationMs'>): DpuRun => ({ booting: ev, startedAt, durationMs: Math.round(performance.now() - t0), ...run });
    if (faults.neverBoots) {
      this.log.warn({ via: ev.via }, 'simulated DPU: fault never-boots, staying dark');
      return finish({ outcome: 'dark' });
    }
    if (ev.via === 'disk' && this.runs.some((r) => r.outcome === 'complete')) {
      this.log.info('simulated DPU: boots its installed OS (already bootstrapped)');
      return finish({ outcome: 'os-booted' });
    }
    this.log.info({ via: ev.via, image: ev.imageUrl, target: ev.target }, 'simulated DPU: booting');
    let firmware: FirmwareRead | undefined;
    let dhcp: DhcpLease | undefined;
    try {
      // UEFI HTTP boot does DHCP first and learns the URL there; virtual media and BFB have the image already.
      if (ev.via === 'uefi-http' || ev.via === 'pxe') dhcp = await this.config.dhcp.acquire(this.leaseRequest(), signal);
      const imageUrl = ev.imageUrl ?? dhcp?.bootFileUrl ?? null;
      if (imageUrl) firmware = await this.readImage(imageUrl, signal);
      // The booted OS brings its management port up and does DHCP (again, with its own client).
      dhcp = await this.config.dhcp.acquire(this.leaseRequest(), signal);
    } catch (err) {
      const stage = firmware || !ev.imageUrl ? 'dhcp' : 'firmware';
      this.log.warn({ stage, err: errorMessage(err) }, 'simulated DPU: boot failed before the agent ran');
      return finish({ outcome: signal.aborted ? 'aborted' : 'failed', stage, error: errorMessage(err), ...(firmware ? { firmware } : {}), ...(dhcp ? { dhcp } : {}) });
    }
    const bootstrapUrl = dhcp.sztpUrls[0] ?? this.config.bootstrapUrl;
    const crashAfter = faults.agentCrash === true ? 'boot-image-initiated' : typeof faults.agentCrash === 'string' ? faults.agentCrash : undefined;
    const agent = await runAgent({
      ...(this.config.agent ?? {}),
      profile: this.config.profile,
      identity: this.config.identity,
      bootstrapUrl,
      faults: { ...(faults.badImageHash ? { corruptImage: true } : {}), ...(faults.wrongPassword ? { wrongPassword: true } : {}), ...(crashAfter ? { crashAfter } : {}) },
      signal,
      log: this.log,
    });
    this.log.info({ outcome: agent.outcome, stage: agent.stage, reports: agent.reports.length, ms: agent.durationMs }, 'simulated DPU: agent finished');
    return finish({
      outcome: agent.outcome,
      ...(agent.stage && agent.outcome !== 'complete' ? { stage: agent.stage } : {}),
      ...(agent.error ? { error: agent.error.message } : {}),
      ...(firmware ? { firmware } : {}),
      dhcp,
      agent,
    });
  }

  private leaseRequest() {
    return { serial: this.config.serial, mac: this.config.macs[0] ?? '02:00:00:00:00:00', profile: this.config.profile };
  }

  /** What firmware does with an image URL: HEAD for the size, then sequential Range reads. */
  private async readImage(url: string, signal: AbortSignal): Promise<FirmwareRead> {
    const t0 = performance.now();
    const http = new DeviceHttp({ caPem: this.config.identity.serverCaPem, timeoutMs: this.config.agent?.requestTimeoutMs ?? 10_000, maxBodyBytes: 1024 });
    try {
      const retries = this.config.agent?.transportRetries;
      const head = await withTransportRetries(() => http.request(url, { method: 'HEAD', signal }), retries, signal);
      if (head.status !== 200) throw new ZtpError('SIM_IMAGE_FETCH_FAILED', `HEAD ${url}: HTTP ${head.status}`);
      const size = Number(head.headers['content-length']);
      if (!Number.isSafeInteger(size) || size <= 0) throw new ZtpError('SIM_IMAGE_FETCH_FAILED', `HEAD ${url}: no usable Content-Length`);
      if (head.headers['accept-ranges'] !== 'bytes') throw new ZtpError('SIM_IMAGE_FETCH_FAILED', `HEAD ${url}: server does not offer byte ranges`);
      const chunk = this.config.rangeBytes ?? 256 * 1024;
      let bytes = 0;
      let requests = 1;
      for (let start = 0; start < size; start += chunk) {
        const end = Math.min(size, start + chunk) - 1;
        const got = await withTransportRetries(() => http.download(url, { range: `bytes=${start}-${end}`, signal }), retries, signal);
        requests++;
        const expected = `bytes ${start}-${end}/${size}`;
        if (got.status !== 206 || got.headers['content-range'] !== expected) throw new ZtpError('SIM_IMAGE_FETCH_FAILED', `GET ${url} Range bytes=${start}-${end}: HTTP ${got.status} ${String(got.headers['content-range'] ?? '')}`);
        if (got.bytes !== end - start + 1) throw new ZtpError('SIM_IMAGE_FETCH_FAILED', `GET ${url}: short range (${got.bytes} of ${end - start + 1} bytes)`);
        bytes += got.bytes;
      }
      const read = { url, bytes, size, requests, durationMs: Math.round(performance.now() - t0) };
      this.log.info(read, 'simulated DPU: firmware read the boot image');
      return read;
    } finally {
      http.close();
    }
  }
}
