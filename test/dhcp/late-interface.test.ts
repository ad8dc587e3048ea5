// Issue 8, "The interface comes and goes", with the real product and a real interface: `ztp serve`
// starts in a network namespace where its DHCP interface does not exist yet; the veth appears
// later (up, no address), then gets its IPv4 address. The service waits (readiness 503 with the
// reason), starts by itself once the interface is usable (readiness 200; busybox udhcpc gets a
// lease through it), goes back to waiting when the address is removed and serves again when it
// returns. Readiness is read with curl inside the namespace.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildCli, REPO } from '../firmware/suite.js';
import { Lab, labSkipReason, untilReady, type Proc } from './netns.js';
import { udhcpcLease } from './peers.js';

const skip = labSkipReason('udhcpc', 'curl');
const labs: Lab[] = [];
afterEach(async () => {
  while (labs.length) await labs.pop()!.cleanup();
});
beforeAll(() => {
  if (!skip) buildCli();
}, 240_000);

function logLines(proc: Proc): { msg?: string }[] {
  return proc
    .stdout()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => {
      try {
        return JSON.parse(l) as { msg?: string };
      } catch {
        return {};
      }
    });
}

describe.skipIf(skip)('ztp serve with a DHCP interface that appears after start (network namespaces)', () => {
  it('waits (readyz 503 + reason), starts when the veth appears and gets an address (udhcpc leases), pauses and resumes with the address', async () => {
    const lab = new Lab();
    labs.push(lab);
    const srv = lab.ns('s');
    const cli = lab.ns('c');
    const srvIf = `va${lab.id}L`.slice(0, 15);
    const cliIf = `vb${lab.id}L`.slice(0, 15);
    const file = join(lab.dir, 'config.json');
    writeFileSync(
      file,
      JSON.stringify({
        dataDir: join(lab.dir, 'data'),
        publicHost: '10.9.3.1',
        logLevel: 'info',
        dhcp: { interface: srvIf, port: 67, subnets: [{ subnet: '10.9.3.0/24', pools: [{ start: '10.9.3.100', end: '10.9.3.150' }] }] },
      }),
    );
    const serve = lab.spawn(srv, process.execPath, [join(REPO, 'bin', 'ztp.js'), '--config-file', file, 'serve']);
    const fail = (err: unknown) => new Error(`${(err as Error).message}\n--- ztp serve ---\n${(serve.stdout() + serve.stderr()).slice(-4000)}`);
    try {
      await lab.until(() => serve.stderr().includes('admin token:') || serve.child.exitCode !== null, 60_000, 'ztp serve started');
      expect(serve.child.exitCode).toBeNull();

      // 1. No such interface: every other service runs, DHCP waits and says why.
      const missing = await untilReady(lab, srv, (r) => r.body.services.dhcp?.state === 'waiting', 'DHCP waiting');
      expect(missing.status).toBe(503);
      expect(missing.body.services.dhcp).toMatchObject({ ready: false, state: 'waiting', reason: `interface ${srvIf} does not exist` });

      // 2. The veth appears, up, without an address.
      execFileSync('ip', ['link', 'add', srvIf, 'netns', srv, 'type', 'veth', 'peer', 'name', cliIf, 'netns', cli]);
      lab.run(srv, 'ip', ['link', 'set', srvIf, 'up']);
      lab.run(cli, 'ip', ['link', 'set', cliIf, 'up']);
      const noAddress = await untilReady(lab, srv, (r) => r.body.services.dhcp?.reason === `interface ${srvIf} has no IPv4 address`, 'DHCP waiting for an address');
      expect(noAddress.status).toBe(503);

      // 3. The address arrives: DHCP starts by itself and serves a real client.
      lab.run(srv, 'ip', ['addr', 'add', '10.9.3.1/24', 'dev', srvIf]);
      const running = await untilReady(lab, srv, (r) => r.status === 200, 'DHCP running');
      expect(running.body).toMatchObject({ status: 'ready', services: { dhcp: { ready: true, state: 'running' } } });
      const lease = udhcpcLease(lab, cli, cliIf, 'late');
      expect(lease.ip).toMatch(/^10\.9\.3\.1\d\d$/);
      expect(lease.serverid).toBe('10.9.3.1');

      // 4. The address goes: waiting again; it comes back: serving again.
      lab.run(srv, 'ip', ['addr', 'del', '10.9.3.1/24', 'dev', srvIf]);
      const paused = await untilReady(lab, srv, (r) => r.status === 503, 'DHCP paused');
      expect(paused.body.services.dhcp).toMatchObject({ ready: false, state: 'waiting' });
      lab.run(srv, 'ip', ['addr', 'add', '10.9.3.1/24', 'dev', srvIf]);
      await untilReady(lab, srv, (r) => r.status === 200, 'DHCP running again');
      expect(udhcpcLease(lab, cli, cliIf, 'again').ip).toBe(lease.ip);

      // One warning per distinct reason while waiting, not one per retry. (The synchronous udhcpc
      // runs kept this event loop from reading the server's stdout: wait for the lines to arrive.)
      const msgs = () => logLines(serve).map((l) => l.msg ?? '');
      await lab.until(() => msgs().filter((m) => m.includes('is usable; responder started')).length >= 2, 5000, 'two "responder started" log lines');
      expect(msgs().filter((m) => m.includes(`waiting for interface ${srvIf}`) && m.includes('does not exist'))).toHaveLength(1);
    } catch (err) {
      throw fail(err);
    }
  }, 120_000);
});
