/**
 * Alert webhooks against real receivers on 127.0.0.1: deliveries are signed (HMAC-SHA256 over
 * timestamp and body) and verify only unaltered and fresh; a failing receiver gets retries
 * with backoff on an injected clock, then the delivery lands on the dead-letter list; a
 * receiver that never answers does not block the sender, and the server keeps answering.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { signWebhook, verifyWebhookSignature, WebhookSender } from '../src/monitoring/webhooks.ts';

const SECRET = 'whsec_0123456789abcdef';
interface Got { headers: IncomingMessage['headers']; body: string }

function receiver(answer: (n: number) => number | 'hang'): Promise<{ server: Server; url: string; got: Got[] }> {
  const got: Got[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      got.push({ headers: req.headers, body });
      const a = answer(got.length);
      if (a === 'hang') return;
      res.writeHead(a).end();
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, got })));
}

const servers: Server[] = [];
after(() => { for (const s of servers) s.closeAllConnections(), s.close(); });

describe('signatures', () => {
  it('verify for the exact body within the tolerance, and fail for a changed body, another secret or an old timestamp', () => {
    const body = JSON.stringify({ alert: { id: 'alrt_1', rule: 'enumeration' } });
    const t = 1_780_000_000;
    const h = signWebhook(SECRET, body, t);
    assert.match(h, /^t=1780000000,v1=[0-9a-f]{64}$/);
    assert.equal(verifyWebhookSignature(SECRET, h, body, t + 10), true);
    assert.equal(verifyWebhookSignature(SECRET, h, body.replace('enumeration', 'none'), t + 10), false);
    assert.equal(verifyWebhookSignature('whsec_other', h, body, t + 10), false);
    assert.equal(verifyWebhookSignature(SECRET, h, body, t + 301), false, 'a replay after five minutes is refused');
    assert.equal(verifyWebhookSignature(SECRET, h.replace(/v1=./, 'v1=0'), body, t), false);
  });
});

describe('delivery', () => {
  let clock = 0;
  before(() => { clock = Date.UTC(2026, 2, 2, 9, 0, 0); });

  it('delivers a signed POST a receiver can verify', async () => {
    const r = await receiver(() => 204);
    servers.push(r.server);
    const w = new WebhookSender({ now: () => clock });
    w.enqueue(r.url, SECRET, 'alert.opened', { alert: { id: 'alrt_1' } });
    await w.pump();
    assert.equal(r.got.length, 1);
    const g = r.got[0]!;
    assert.equal(g.headers['gatehouse-event'], 'alert.opened');
    assert.equal(verifyWebhookSignature(SECRET, g.headers['gatehouse-signature'] as string, g.body, Math.floor(clock / 1000)), true);
    assert.equal(w.delivered, 1);
    assert.equal(w.pending.length, 0);
  });

  it('retries a failing receiver with growing delays, then moves the delivery to the dead-letter list', async () => {
    const r = await receiver(() => 500);
    servers.push(r.server);
    const w = new WebhookSender({ now: () => clock, maxAttempts: 4 });
    w.enqueue(r.url, SECRET, 'alert.opened', { alert: { id: 'alrt_2' } });
    await w.pump();
    assert.equal(r.got.length, 1);
    // Not yet due: the clock has not moved.
    await w.pump();
    assert.equal(r.got.length, 1);
    const delays: number[] = [];
    for (let attempt = 2; attempt <= 4; attempt++) {
      const d = w.pending[0]!;
      delays.push(d.dueAt - clock);
      clock = d.dueAt;
      await w.pump();
      assert.equal(r.got.length, attempt);
    }
    assert.deepEqual(delays, [1000, 2000, 4000]);
    assert.equal(w.pending.length, 0);
    assert.equal(w.deadLetters.length, 1);
    assert.equal(w.deadLetters[0]!.attempts, 4);
    assert.equal(w.deadLetters[0]!.lastError, 'HTTP 500');
    assert.ok(!JSON.stringify(w.deadLetters).includes(SECRET), 'the dead-letter list never holds the secret');
    // Every attempt carried its own fresh, valid signature.
    for (const g of r.got) assert.equal(verifyWebhookSignature(SECRET, g.headers['gatehouse-signature'] as string, g.body, Math.floor(clock / 1000), 60), true);
  });

  it('a receiver that never answers blocks neither enqueue nor the event loop, and times out into a retry', async () => {
    const r = await receiver(() => 'hang');
    servers.push(r.server);
    const w = new WebhookSender({ now: () => clock, timeoutMs: 300, maxAttempts: 2 });
    const t0 = performance.now();
    for (let i = 0; i < 100; i++) w.enqueue(r.url, SECRET, 'alert.opened', { i });
    assert.ok(performance.now() - t0 < 50, 'enqueue returns at once');
    const pumping = w.pump();
    // While deliveries hang, timers and other work still run.
    const tick = await new Promise<number>((resolve) => { const s = performance.now(); setTimeout(() => resolve(performance.now() - s), 10); });
    assert.ok(tick < 200, `the event loop answered in ${tick} ms`);
    await pumping;
    assert.equal(r.got.length, 4, 'at most `concurrency` (4) deliveries in flight');
    assert.equal(w.pending.length, 100);
    assert.match(w.pending.find((d) => d.attempts === 1)!.lastError!, /timed out after 300 ms/);
  });
});
