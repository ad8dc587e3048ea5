// Real DHCP clients driven from tests: busybox udhcpc and ISC dhclient, run to completion inside
// a namespace of a Lab. Both leave nothing running: udhcpc -q exits after binding, dhclient's
// daemon is stopped by its PID file.
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab } from './netns.js';

/** udhcpc -q on `iface`; resolves the environment its hook saw on `bound` (ip, serverid, opt143…). */
export function udhcpcLease(lab: Lab, ns: string, iface: string, tag: string, extra: string[] = []): Record<string, string> {
  const hook = join(lab.dir, `udhcpc-${tag}.sh`);
  const out = join(lab.dir, `udhcpc-${tag}.env`);
  writeFileSync(hook, `#!/bin/sh\nif [ "$1" = bound ]; then env > ${out}; fi\nexit 0\n`);
  chmodSync(hook, 0o755);
  lab.run(ns, 'udhcpc', ['-i', iface, '-f', '-q', '-n', '-t', '4', '-T', '2', '-O', '143', ...extra, '-s', hook], 30_000);
  return Object.fromEntries(
    readFileSync(out, 'utf8')
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

/** dhclient -1 with a config text; returns the lease file. */
export function dhclientLease(lab: Lab, ns: string, iface: string, conf: string, tag: string, extra: string[] = []): string {
  const cf = join(lab.dir, `dhclient-${tag}.conf`);
  const lf = join(lab.dir, `dhclient-${tag}.leases`);
  const pf = join(lab.dir, `dhclient-${tag}.pid`);
  writeFileSync(cf, conf);
  try {
    lab.run(ns, 'dhclient', ['-1', '-v', ...extra, '-cf', cf, '-lf', lf, '-pf', pf, '-sf', '/bin/true', iface], 40_000);
  } catch (err) {
    throw new Error(`dhclient failed: ${(err as { stderr?: string }).stderr ?? String(err)}`);
  } finally {
    // dhclient stays as a daemon after binding: stop exactly that PID.
    if (existsSync(pf)) {
      try {
        process.kill(Number(readFileSync(pf, 'utf8').trim()), 'SIGTERM');
      } catch {
        /* already gone */
      }
    }
  }
  return readFileSync(lf, 'utf8');
}
