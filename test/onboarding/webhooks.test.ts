// Outgoing webhooks against a real HTTP receiver on loopback: the signature verifies with
// node:crypto over the exact body, a receiver that answers 500 gets the delivery again, and the
// conductor's write path never waits for it.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/database.js';
import { DeviceStore } from '../../src/devices/store.js';
import { silentLogger } from '../../src/log.js';
import { WebhookSender } from '../../src/onboarding/webhooks.js';

let server: Server | undefined;
afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

function receiver(statuses: number[]): Promise<{ url: string; got: { headers: Record<string, string | string[] | undefined>; body: string }[] }> {
  const got: { headers: Record<string, string | string[] | undefined>; body: string }[] = [];
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      got.push({ headers: req.headers, body });
      res.statusCode = statuses.shift() ?? 204;
      res.end();
    });
  });
  return new Promise((r) => server!.listen(0, '127.0.0.1', () => r({ url: `http://127.0.0.1:${(server!.address() as { port: number }).port}/hook`, got })));
}

describe('onboarding webhooks', () => {
  it('POSTs each transition signed with HMAC-SHA256 and retries after a 500', async () => {
    const { url, got } = await receiver([500]);
    const store = new DeviceStore(openDatabase({ file: ':memory:' }));
    store.upsert({ serial: 'W1' });
    const sender = new WebhookSender([{ url, secret: 's3cret' }], silentLogger, { baseDelayMs: 20 });
    sender.attach(store);
    store.record({ serial: 'W1', source: 'onboarding', type: 'transition', data: { attempt: 1, step: 'booting', status: 'running' } });
    store.record({ serial: 'W1', source: 'bootstrap', type: 'progress', data: { progressType: 'informational' } });
    // The receiver logs the retry before the sender has read its 204, so wait for the sender's count.
    for (let i = 0; i < 150 && (got.length < 2 || sender.stats()[0]!.delivered < 1); i++) await new Promise((r) => setTimeout(r, 20));
    sender.stop();
    expect(got).toHaveLength(2); // the 500, then the retry; the progress report is not a transition
    const [first, retry] = got;
    expect(retry!.body).toBe(first!.body);
    expect(JSON.parse(retry!.body)).toMatchObject({ serial: 'W1', event: 'onboarding.transition', data: { step: 'booting', status: 'running' } });
    const expected = Buffer.from('sha256=' + createHmac('sha256', 's3cret').update(retry!.body).digest('hex'));
    expect(timingSafeEqual(Buffer.from(String(retry!.headers['x-ztp-signature'])), expected)).toBe(true);
    expect(retry!.headers['x-ztp-delivery']).toBe(first!.headers['x-ztp-delivery']);
    expect(sender.stats()[0]).toMatchObject({ delivered: 1, pending: 0 });
  });

  it('a dead receiver never blocks the writer and its queue stays bounded', async () => {
    const store = new DeviceStore(openDatabase({ file: ':memory:' }));
    store.upsert({ serial: 'W2' });
    const sender = new WebhookSender([{ url: 'http://127.0.0.1:1/none' }], silentLogger, { baseDelayMs: 10_000, maxQueue: 5 });
    sender.attach(store);
    for (let i = 0; i < 20; i++) store.record({ serial: 'W2', source: 'onboarding', type: 'transition', data: { attempt: 1, step: 'booting', status: 'running', i } });
    await new Promise((r) => setTimeout(r, 100));
    expect(sender.stats()[0]!.pending).toBeLessThanOrEqual(5);
    expect(sender.stats()[0]!.dropped).toBeGreaterThan(0);
    sender.stop();
  });
});
