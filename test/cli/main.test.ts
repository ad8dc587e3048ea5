// `ztp` loads only the command module it runs when that is `serve` (issue 12: start-up time and
// idle memory of the server); every other command line still sees every command.
import { describe, expect, it, vi } from 'vitest';
// `serve` sizes V8's heap for a server before it loads the suite; here that is counted, not done
// (the flags are process-wide and would reach the rest of this test worker).
const heapSizing = vi.hoisted(() => ({ applied: 0 }));
vi.mock('../../src/server-heap.js', () => ({ applyServerHeapSizing: () => void heapSizing.applied++ }));
import { REGISTRARS } from '../../src/cli/commands.js';
import { commandOf, main, registrarsFor } from '../../src/cli/main.js';
import { registerServeCommand } from '../../src/cli/serve.js';

function io() {
  let out = '';
  let err = '';
  return { io: { out: (s: string) => void (out += s), err: (s: string) => void (err += s) }, out: () => out, err: () => err };
}

describe('ztp command dispatch', () => {
  it.each([
    [['serve'], 'serve'],
    [['--json', '--config-file', 'serve.json', 'serve', '--bootstrap-port', '0'], 'serve'],
    [['-d', 'serve', 'device', 'list'], 'device'],
    [['--data-dir', 'x', '--json', 'simulate'], 'simulate'],
    [['--help'], undefined],
    [[], undefined],
  ])('%j runs %s', (argv, command) => {
    expect(commandOf(argv)).toBe(command);
  });

  it('serve loads its own module only, after sizing the heap for a server; anything else loads every command and leaves the heap alone', async () => {
    expect(await registrarsFor(['-d', 'serve', 'device', 'list'])).toBe(REGISTRARS);
    expect(await registrarsFor(['--help'])).toBe(REGISTRARS);
    expect(heapSizing.applied).toBe(0);
    expect(await registrarsFor(['--json', 'serve'])).toEqual([registerServeCommand]);
    expect(heapSizing.applied).toBe(1);
    expect(REGISTRARS).toContain(registerServeCommand);
  });

  it('`ztp --help` still lists every command, and `ztp serve --help` the serve flags', async () => {
    const all = io();
    expect(await main(['--help'], all.io)).toBe(0);
    for (const name of ['serve', 'device', 'pki', 'image', 'bmc', 'onboard', 'simulate']) expect(all.out()).toMatch(new RegExp(`\\n\\s+${name}\\b`));
    const serve = io();
    expect(await main(['serve', '--help'], serve.io)).toBe(0);
    expect(serve.out()).toContain('--bootstrap-port');
  });
});
