// The SO_BINDTOIFINDEX adapter (src/dhcp/bind-device.ts) on its own; that a device-bound socket
// only hears its own segment is shown with real segments in multi-interface.test.ts.
import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { bindToDevice, interfaceIndex } from '../../src/dhcp/bind-device.js';

const open: Socket[] = [];
afterEach(() => {
  while (open.length) open.pop()!.close();
});

async function bound(): Promise<Socket> {
  const s = createSocket({ type: 'udp4', reuseAddr: true });
  open.push(s);
  await new Promise<void>((r) => s.bind(0, '0.0.0.0', r));
  return s;
}

describe('bindToDevice (SO_BINDTOIFINDEX through sockopt)', () => {
  it('binds a socket to lo (read back from the kernel) and it still receives what arrives on lo', async () => {
    const s = await bound();
    expect(bindToDevice(s, 'lo')).toBe(interfaceIndex('lo'));
    const got = new Promise<string>((r) => s.once('message', (m) => r(m.toString())));
    const c = createSocket('udp4');
    open.push(c);
    c.send('hello', s.address().port, '127.0.0.1');
    expect(await got).toBe('hello');
  });

  it('names the errno: a missing interface is ENODEV, a socket without a descriptor EBADF', async () => {
    const s = await bound();
    expect(() => bindToDevice(s, 'nosuchif0')).toThrow(expect.objectContaining({ code: 'ENODEV' }));
    const unbound = createSocket('udp4');
    open.push(unbound);
    expect(() => bindToDevice(unbound, 'lo')).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });

  it('an address label (lo:1) is its device; path-like names are no interface', () => {
    expect(interfaceIndex('lo')).toBeGreaterThan(0);
    expect(interfaceIndex('lo:1')).toBe(interfaceIndex('lo'));
    expect(interfaceIndex('../lo')).toBeUndefined();
    expect(interfaceIndex('..')).toBeUndefined();
    expect(interfaceIndex('nosuchif0')).toBeUndefined();
  });
});

describe('bindToDevice without the native binding', () => {
  it('a sockopt build that does not load makes the module load anyway; binding says ENOTSUP with the reason', async () => {
    vi.resetModules();
    vi.doMock('sockopt', () => {
      throw new Error('no build for this platform');
    });
    try {
      const mod = await import('../../src/dhcp/bind-device.js');
      const s = await bound();
      expect(() => mod.bindToDevice(s, 'lo')).toThrow(expect.objectContaining({ code: 'ENOTSUP', message: expect.stringMatching(/^the sockopt native binding does not load: /) }));
    } finally {
      vi.doUnmock('sockopt');
      vi.resetModules();
    }
  });
});
