// A real UEFI machine for the tests: QEMU (TCG; KVM does not work on these machines) with OVMF,
// one virtio NIC on a tap in a bridge inside a network namespace this harness creates, the
// serial console in a file that is watched for a marker. Everything started here is stopped
// here, on failure paths too: QEMU by PID, the namespaces' remaining PIDs, then the namespaces.
//
// Layout of a lab:
//   namespace "srv": bridge br0 (10.98.0.1/24) ─┬─ tap (QEMU's NIC)
//                                               └─ veth ── namespace "peer" (10.98.0.2/24), optional
// No default route anywhere: the usual provisioning segment, where a DHCP reply to
// 255.255.255.255 must leave through the interface explicitly.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isRoot, missingTool } from '../helpers/shared.js';
import { NamespaceLab, type Proc } from '../helpers/netns.js';

const OVMF_CODE = ['/usr/share/OVMF/OVMF_CODE_4M.fd', '/usr/share/OVMF/OVMF_CODE.fd'];
const OVMF_VARS = ['/usr/share/OVMF/OVMF_VARS_4M.fd', '/usr/share/OVMF/OVMF_VARS.fd'];

export function firmwareSkipReason(): string {
  if (!isRoot) {
    const r = 'not root: QEMU/OVMF network-namespace tests skipped';
    console.warn(r);
    return r;
  }
  for (const t of ['ip', 'qemu-system-x86_64']) {
    const r = missingTool(t);
    if (r) return r;
  }
  if (!OVMF_CODE.some(existsSync) || !OVMF_VARS.some(existsSync)) {
    const r = 'OVMF firmware (Debian package ovmf) is not installed; skipping';
    console.warn(r);
    return r;
  }
  return '';
}

export type { Proc };

export class FirmwareLab extends NamespaceLab {
  readonly srv = `zf${this.id}s`;
  readonly bridge = 'br0';
  readonly serverAddress = '10.98.0.1';
  readonly peerAddress = '10.98.0.2';
  readonly peer = `zf${this.id}p`;
  private taps = 0;

  constructor(opts: { peer?: boolean } = {}) {
    super('ztp-fw-');
    this.addNamespace(this.srv);
    this.run(this.srv, 'ip', ['link', 'add', this.bridge, 'type', 'bridge']);
    // No STP forwarding delay: ports forward at once (firmware DHCP starts within seconds).
    this.run(this.srv, 'ip', ['link', 'set', this.bridge, 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0']);
    this.run(this.srv, 'ip', ['addr', 'add', `${this.serverAddress}/24`, 'dev', this.bridge]);
    this.run(this.srv, 'ip', ['link', 'set', this.bridge, 'up']);
    if (opts.peer) {
      this.addNamespace(this.peer);
      const a = `zv${this.id}a`.slice(0, 15);
      const b = `zv${this.id}b`.slice(0, 15);
      execFileSync('ip', ['link', 'add', a, 'netns', this.srv, 'type', 'veth', 'peer', 'name', b, 'netns', this.peer]);
      this.run(this.srv, 'ip', ['link', 'set', a, 'master', this.bridge]);
      this.run(this.srv, 'ip', ['link', 'set', a, 'up']);
      this.run(this.peer, 'ip', ['addr', 'add', `${this.peerAddress}/24`, 'dev', b]);
      this.run(this.peer, 'ip', ['link', 'set', b, 'up']);
      this.peerIf = b;
    }
  }

  peerIf = '';

  /** A new tap on the bridge, for one VM. */
  tap(): string {
    const name = `tap${this.taps++}`;
    this.run(this.srv, 'ip', ['tuntap', 'add', 'dev', name, 'mode', 'tap']);
    this.run(this.srv, 'ip', ['link', 'set', name, 'master', this.bridge]);
    this.run(this.srv, 'ip', ['link', 'set', name, 'up']);
    return name;
  }

  /**
   * Boots OVMF with one NIC on a fresh tap. `pxe: false` removes the PXE boot options through
   * fw_cfg (otherwise OVMF spends about two minutes on PXE timeouts before trying HTTP boot).
   */
  vm(opts: { mac: string; pxe: boolean; name: string }): Vm {
    const tap = this.tap();
    const vars = join(this.dir, `${opts.name}-vars.fd`);
    copyFileSync(OVMF_VARS.find(existsSync)!, vars);
    const serial = join(this.dir, `${opts.name}-serial.log`);
    const args = [
      '-machine', 'q35', '-accel', 'tcg', '-m', '256', '-smp', '1',
      '-nodefaults', '-display', 'none', '-monitor', 'none', '-no-reboot',
      '-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE.find(existsSync)!}`,
      '-drive', `if=pflash,format=raw,unit=1,file=${vars}`,
      '-netdev', `tap,id=n0,ifname=${tap},script=no,downscript=no`,
      // romfile= : OVMF's own virtio-net driver and network stack, not an iPXE option ROM.
      '-device', `virtio-net-pci,netdev=n0,mac=${opts.mac},romfile=`,
      '-serial', `file:${serial}`,
    ];
    if (!opts.pxe) args.push('-fw_cfg', 'name=opt/org.tianocore/IPv4PXESupport,string=n', '-fw_cfg', 'name=opt/org.tianocore/IPv6PXESupport,string=n');
    const proc = this.spawn(this.srv, 'qemu-system-x86_64', args);
    return new Vm(this, proc, serial);
  }
}

export class Vm {
  constructor(
    private readonly lab: FirmwareLab,
    readonly proc: Proc,
    readonly serialFile: string,
  ) {}

  serial(): string {
    return existsSync(this.serialFile) ? readFileSync(this.serialFile, 'latin1') : '';
  }

  /** Resolves when the serial console shows `marker`; rejects on timeout or QEMU exit, with the console tail. */
  async waitFor(marker: string, timeoutMs: number): Promise<number> {
    const started = Date.now();
    while (!this.serial().includes(marker)) {
      if (this.proc.child.exitCode !== null) throw new Error(`QEMU exited (${this.proc.child.exitCode}): ${this.proc.stderr()}\nserial:\n${tail(this.serial())}`);
      if (Date.now() - started > timeoutMs) throw new Error(`no "${marker}" on the serial console after ${timeoutMs} ms; serial tail:\n${tail(this.serial())}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    return Date.now() - started;
  }

  async kill(): Promise<void> {
    await this.lab.stop(this.proc, 'SIGKILL');
  }
}

/** The last lines of a console log, progress spam folded. */
export function tail(text: string, chars = 3000): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/(Downloading\.\.\.\d+%\s*)+/g, '[download progress] ').replace(/\x1b\[[0-9;]*[A-Za-z]/g, '').slice(-chars);
}
