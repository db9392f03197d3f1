/**
 * Signed webhook delivery with retries and a dead-letter list, never on the request path.
 *
 * Signature (the scheme Stripe documents for its webhooks, "Verify webhook signatures with
 * your own code", https://docs.stripe.com/webhooks#verify-manually): the header
 *
 *   Gatehouse-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
 *
 * binds the body to the time it was sent; a receiver recomputes the HMAC over the raw body,
 * compares in constant time and refuses a timestamp older than its tolerance (default 5 min),
 * so a captured delivery cannot be replayed later. `verifyWebhookSignature` is that receiver.
 *
 * Delivery: `enqueue` only appends to a bounded queue and returns; `pump(now)` sends what is
 * due, at most `concurrency` at a time, each with a timeout. A failure (network error, timeout
 * or a non-2xx answer) is retried with exponential backoff (1 s, 2 s, 4 s … capped at 5 min)
 * up to `maxAttempts`; then the delivery moves to the dead-letter list an operator can read
 * (GET /v1/alerts/dead-letters). The clock is injected, so tests drive retries without sleeping; a server calls
 * `start()` to pump on an unref'd interval.
 */
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';

export interface Delivery {
  readonly id: string;
  readonly url: string;
  readonly event: string;
  readonly body: string;
  attempts: number;
  dueAt: number;
  lastError: string | null;
  readonly createdAt: number;
}

export interface WebhookOptions {
  readonly now?: () => number;
  readonly maxAttempts?: number;
  readonly timeoutMs?: number;
  readonly concurrency?: number;
  readonly maxQueue?: number;
  /** The HTTP client (tests may pass one that records); default global fetch. */
  readonly fetch?: typeof fetch;
}

export function signWebhook(secret: string, body: string, unixSeconds: number): string {
  const mac = createHmac('sha256', secret).update(`${unixSeconds}.${body}`).digest('hex');
  return `t=${unixSeconds},v1=${mac}`;
}

/** A receiver's check: the signature matches the raw body and is at most `toleranceSec` old. */
export function verifyWebhookSignature(secret: string, header: string | undefined, body: string, nowSeconds: number, toleranceSec = 300): boolean {
  if (typeof header !== 'string') return false;
  const parts = new Map<string, string[]>();
  for (const kv of header.split(',')) {
    const i = kv.indexOf('=');
    if (i <= 0) continue;
    const k = kv.slice(0, i).trim();
    parts.set(k, [...(parts.get(k) ?? []), kv.slice(i + 1).trim()]);
  }
  const t = Number(parts.get('t')?.[0]);
  if (!Number.isSafeInteger(t) || Math.abs(nowSeconds - t) > toleranceSec) return false;
  const expected = Buffer.from(createHmac('sha256', secret).update(`${t}.${body}`).digest('hex'));
  return (parts.get('v1') ?? []).some((v) => {
    const got = Buffer.from(v);
    return got.length === expected.length && timingSafeEqual(got, expected);
  });
}

const BACKOFF_CAP_MS = 300_000;

export class WebhookSender {
  readonly #now: () => number;
  readonly #maxAttempts: number;
  readonly #timeoutMs: number;
  readonly #concurrency: number;
  readonly #maxQueue: number;
  readonly #fetch: typeof fetch;
  readonly #queue: Delivery[] = [];
  readonly #dead: Delivery[] = [];
  readonly #inFlight = new Set<Promise<void>>();
  readonly #secrets = new Map<string, string>();
  #timer: NodeJS.Timeout | null = null;
  delivered = 0;

  constructor(o: WebhookOptions = {}) {
    this.#now = o.now ?? Date.now;
    this.#maxAttempts = o.maxAttempts ?? 6;
    this.#timeoutMs = o.timeoutMs ?? 5000;
    this.#concurrency = o.concurrency ?? 4;
    this.#maxQueue = o.maxQueue ?? 1000;
    this.#fetch = o.fetch ?? fetch;
  }

  /** Queues a signed POST of `payload` to `url`; returns at once. */
  enqueue(url: string, secret: string, event: string, payload: unknown): Delivery {
    const d: Delivery = { id: `whd_${randomUUID()}`, url, event, body: JSON.stringify(payload), attempts: 0, dueAt: this.#now(), lastError: null, createdAt: this.#now() };
    this.#secrets.set(d.id, secret);
    if (this.#queue.length >= this.#maxQueue) {
      const dropped = this.#queue.shift()!;
      dropped.lastError = 'queue full: dropped before delivery';
      this.#toDead(dropped);
    }
    this.#queue.push(d);
    return d;
  }

  get pending(): readonly Delivery[] { return this.#queue; }
  get deadLetters(): readonly Delivery[] { return this.#dead; }

  /** Sends every due delivery (up to the concurrency limit); resolves when those attempts end. */
  async pump(): Promise<void> {
    const now = this.#now();
    const due = this.#queue.filter((d) => d.dueAt <= now).slice(0, Math.max(0, this.#concurrency - this.#inFlight.size));
    for (const d of due) {
      this.#queue.splice(this.#queue.indexOf(d), 1);
      const p = this.#attempt(d).finally(() => { this.#inFlight.delete(p); });
      this.#inFlight.add(p);
    }
    await Promise.all([...this.#inFlight]);
  }

  async #attempt(d: Delivery): Promise<void> {
    d.attempts++;
    const secret = this.#secrets.get(d.id) ?? '';
    try {
      const res = await this.#fetch(d.url, {
        method: 'POST', body: d.body, signal: AbortSignal.timeout(this.#timeoutMs),
        headers: { 'content-type': 'application/json', 'gatehouse-event': d.event, 'gatehouse-delivery': d.id, 'gatehouse-signature': signWebhook(secret, d.body, Math.floor(this.#now() / 1000)) },
      });
      await res.arrayBuffer().catch(() => undefined);
      if (res.status < 200 || res.status >= 300) throw new Error(`HTTP ${res.status}`);
      this.delivered++;
      this.#secrets.delete(d.id);
    } catch (err) {
      // The reason names the failure, never the secret or the body.
      d.lastError = (err as Error)?.name === 'TimeoutError' ? `timed out after ${this.#timeoutMs} ms` : String((err as Error)?.message ?? err).slice(0, 200);
      if (d.attempts >= this.#maxAttempts) { this.#toDead(d); return; }
      d.dueAt = this.#now() + Math.min(1000 * 2 ** (d.attempts - 1), BACKOFF_CAP_MS);
      this.#queue.push(d);
    }
  }

  #toDead(d: Delivery): void {
    this.#secrets.delete(d.id);
    this.#dead.push(d);
    if (this.#dead.length > this.#maxQueue) this.#dead.shift();
  }

  /** Pumps every `intervalMs` without keeping the process alive. */
  start(intervalMs = 1000): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => { void this.pump().catch(() => undefined); }, intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await Promise.all([...this.#inFlight]);
  }
}
