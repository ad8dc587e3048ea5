import { describe, expect, it } from 'vitest';
import { listSettings, loadConfig, validateConfig } from '../../src/config.js';
import { ERROR_CATALOGUE, ZtpError } from '../../src/errors.js';
import { readFileSync } from 'node:fs';

describe('configuration schema', () => {
  it('defaults: ./data, bootstrap 8443, API 8081, images 8080/8444', () => {
    const c = loadConfig({ env: {} });
    expect(c.dataDir).toBe('./data');
    expect(c.bootstrap.port).toBe(8443);
    expect(c.api.port).toBe(8081);
    expect(c.images.port).toBe(8080);
    expect(c.images.tlsPort).toBe(8444);
  });

  it('environment variables and flags set leaves, flags winning', () => {
    const c = loadConfig({ env: { ZTP_DATA_DIR: '/srv/ztp', ZTP_BOOTSTRAP_PORT: '9443', ZTP_API_PORT: '9081' }, flags: { 'api-port': '7000' } });
    expect(c.dataDir).toBe('/srv/ztp');
    expect(c.bootstrap.port).toBe(9443);
    expect(c.api.port).toBe(7000);
  });

  it.each([
    [{ env: { ZTP_BOOTSTRAP_PORT: 'eighty' } }, 'bootstrap.port'],
    [{ env: { ZTP_BOOTSTRAP_PORT: '70000' } }, 'bootstrap.port'],
    [{ env: { ZTP_BOOTSRAP_PORT: '1' } }, 'ZTP_BOOTSRAP_PORT'],
    [{ env: { ZTP_BOOTSTRAP_AUTH: 'magic' } }, 'bootstrap.auth'],
    [{ env: {}, flags: { 'bootstrap-prot': '1' } }, 'bootstrap-prot'],
    [{ env: { ZTP_IMAGES_BMC_URL: 'ftp:/x' } }, 'images.bmcUrl'],
  ])('an impossible value stops the start with a message naming the key: %j', (sources, key) => {
    try {
      loadConfig(sources);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ZtpError);
      expect((err as ZtpError).message).toContain(key);
    }
  });

  it('an unknown key in a config file is named', () => {
    expect(() => validateConfig({ bootstrap: { prot: 1 } })).toThrow(/bootstrap\.prot/);
    expect(() => validateConfig({ colour: 'red' })).toThrow(/colour/);
  });

  it('every setting has an env var and a flag, and the README documents each env var', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    for (const s of listSettings()) {
      expect(s.env).toMatch(/^ZTP_[A-Z0-9_]+$/);
      expect(s.flag).toMatch(/^--[a-z0-9-]+$/);
      expect(readme, `README lists ${s.env}`).toContain(s.env);
    }
  });

  it('every error code has an HTTP status and a message (one catalogue)', () => {
    for (const [code, entry] of Object.entries(ERROR_CATALOGUE)) {
      expect(entry.status, code).toBeGreaterThanOrEqual(400);
      expect(entry.message.length, code).toBeGreaterThan(3);
    }
  });
});
