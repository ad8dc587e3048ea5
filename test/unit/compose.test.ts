// compose.yaml is validated by docker-compose itself (no engine needed) and names the ports
// the README documents.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { REGISTRARS } from '../../src/cli/commands.js';
import { buildProgram } from '../../src/cli/main.js';
import { missingTool } from '../helpers/shared.js';

const root = new URL('../../', import.meta.url).pathname;

describe('compose.yaml', () => {
  it.skipIf(missingTool('docker-compose'))('docker-compose config -q accepts it', () => {
    expect(() => execFileSync('docker-compose', ['-f', 'compose.yaml', 'config', '-q'], { cwd: root, stdio: 'pipe' })).not.toThrow();
  });

  it('publishes the default ports and keeps data in a volume', () => {
    const text = readFileSync(`${root}compose.yaml`, 'utf8');
    for (const port of ['8443:8443', '8081:8081', '8080:8080', '8444:8444']) expect(text).toContain(port);
    expect(text).toMatch(/ZTP_DATA_DIR: \/var\/lib\/dpu-ztp/);
  });
});

describe('compose.yaml lab bring-up (--profile sim)', () => {
  const text = readFileSync(`${root}compose.yaml`, 'utf8');
  const block = text.slice(text.indexOf('\n  ztp-simulate:'), text.indexOf('\n  ztp-dhcp:'));

  it.skipIf(missingTool('docker-compose'))('docker-compose config -q accepts it with the sim profile', () => {
    expect(() => execFileSync('docker-compose', ['--profile', 'sim', '-f', 'compose.yaml', 'config', '-q'], { cwd: root, stdio: 'pipe' })).not.toThrow();
  });

  it('runs ztp simulate in the suite\'s network and data volume, after the suite is healthy', () => {
    expect(block).toMatch(/profiles: \["sim"\]/);
    expect(block).toMatch(/network_mode: "service:ztp"/);
    expect(block).toMatch(/ztp:\n\s+condition: service_healthy/);
    expect(block).toMatch(/- ztp-data:\/var\/lib\/dpu-ztp/);
    expect(block).toMatch(/ZTP_DATA_DIR: \/var\/lib\/dpu-ztp/);
  });

  it('its command line is one the ztp command accepts', () => {
    const command = JSON.parse(/command: (\[.*\])/.exec(block)![1]!.replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1')) as string[];
    expect(command.slice(0, 3)).toEqual(['node', 'bin/ztp.js', 'simulate']);
    const simulate = buildProgram({ out: () => undefined, err: () => undefined }, () => undefined, REGISTRARS).commands.find((c) => c.name() === 'simulate')!;
    const flags = new Set(simulate.options.map((o) => o.long));
    for (const arg of command.slice(3).filter((a) => a.startsWith('--'))) expect(flags.has(arg), arg).toBe(true);
    expect(command).toContain('--onboard');
  });
});
