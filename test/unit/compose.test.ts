// compose.yaml is validated by docker-compose itself (no engine needed) and names the ports
// the README documents.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
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
