// Boot payloads built at test time from Debian packages (nothing binary is committed):
//   - a standalone GRUB EFI application (grub-mkstandalone, grub-efi-amd64-bin + grub-common)
//     whose embedded grub.cfg prints a marker on the serial console;
//   - an EFI El Torito ISO (xorriso) whose boot image is a FAT EFI system partition (mtools)
//     holding the same kind of GRUB as \EFI\BOOT\BOOTX64.EFI, printing its own marker.
// Firmware reaching the marker proves it fetched, accepted and started the payload.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { missingTool } from '../helpers/shared.js';

export interface Payload {
  path: string;
  /** printed on the serial console once GRUB runs */
  marker: string;
}

export function payloadSkipReason(): string {
  for (const t of ['grub-mkstandalone', 'xorriso', 'mformat', 'mmd', 'mcopy']) {
    const r = missingTool(t);
    if (r) return r;
  }
  return '';
}

/** GRUB with only the modules it needs (~0.9 MB instead of ~3.3 MB: TFTP under TCG is slow). */
function grubEfi(dir: string, out: string, marker: string): void {
  const cfg = join(dir, `${marker}.cfg`);
  // The marker is printed twice-joined by GRUB's console mirroring; tests search for it once.
  writeFileSync(cfg, ['serial --unit=0 --speed=115200', 'terminal_output serial console', `echo ${marker}`, 'sleep 3600', ''].join('\n'));
  execFileSync(
    'grub-mkstandalone',
    ['-O', 'x86_64-efi', '-o', out, '--install-modules=normal serial echo sleep terminal', '--modules=serial echo sleep', '--locales=', '--fonts=', '--themes=', `boot/grub/grub.cfg=${cfg}`],
    { stdio: 'pipe' },
  );
}

export function buildEfi(dir: string, tag: string): Payload {
  mkdirSync(dir, { recursive: true });
  const marker = `ZTP-MARKER-EFI-${tag}`;
  const path = join(dir, `grub-${tag}.efi`);
  grubEfi(dir, path, marker);
  return { path, marker };
}

export function buildIso(dir: string, tag: string): Payload {
  mkdirSync(dir, { recursive: true });
  const marker = `ZTP-MARKER-ISO-${tag}`;
  const efi = join(dir, `iso-${tag}.efi`);
  grubEfi(dir, efi, marker);
  const root = join(dir, `isoroot-${tag}`);
  mkdirSync(root, { recursive: true });
  const esp = join(root, 'efiboot.img');
  // A 2.88 MB FAT image (mformat -f 2880) is plenty for a 0.9 MB GRUB.
  execFileSync('mformat', ['-i', esp, '-C', '-f', '2880', '::'], { stdio: 'pipe' });
  execFileSync('mmd', ['-i', esp, '::/EFI', '::/EFI/BOOT'], { stdio: 'pipe' });
  execFileSync('mcopy', ['-i', esp, efi, '::/EFI/BOOT/BOOTX64.EFI'], { stdio: 'pipe' });
  const path = join(dir, `boot-${tag}.iso`);
  // El Torito with a no-emulation EFI boot entry pointing at the ESP image (UEFI 2.x §13.3.2).
  execFileSync('xorriso', ['-as', 'mkisofs', '-quiet', '-R', '-J', '-V', 'ZTPTEST', '-o', path, '-e', 'efiboot.img', '-no-emul-boot', root], { stdio: 'pipe' });
  return { path, marker };
}
