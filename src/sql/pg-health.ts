/**
 * Keeping a node alive, and honest about readiness, while its PostgreSQL comes and goes.
 *
 * node-postgres reports a lost connection as an `'error'` event: on the pool for an idle
 * connection, and on the client itself for one checked out at that moment (pg-pool removes
 * its own listener while a client is lent out). An `'error'` event nobody listens to is an
 * uncaught exception, so without `guardPool` a PostgreSQL restart kills the node. With it, the
 * failed query rejects (the request fails closed with a 503), the broken connection is
 * dropped, and the next request opens a new one: when PostgreSQL is back, requests succeed
 * without a restart of Gatehouse.
 *
 * `PgHealth` answers readiness cheaply: the last known state (a connection error marks the
 * pool not ready at once) plus, when that is older than `maxAgeMs`, one `SELECT 1` bounded by
 * `timeoutMs`; concurrent callers share one ping.
 */
import type pg from 'pg';

export interface Health {
  readonly ready: boolean;
  /** Why not ready (no secrets, no URL), or null. */
  readonly reason: string | null;
}

/** A connection error's message for operators: the URL (and any password in it) removed. */
export function safeReason(e: unknown): string {
  const err = e as { code?: unknown; message?: unknown } | null;
  const code = typeof err?.code === 'string' ? err.code : null;
  const message = typeof err?.message === 'string' && err.message.length > 0
    ? err.message.replace(/postgres(ql)?:\/\/\S+/g, '(url)')
    : 'connection lost';
  return code && !message.includes(code) ? `${message} (${code})` : message;
}

/**
 * Listens for `'error'` on the pool and on every client it creates (see the module comment).
 * `onError` hears each lost connection once (for health); it must not throw.
 */
export function guardPool(pool: pg.Pool, onError: (err: unknown) => void = () => undefined): void {
  const report = (err: unknown): void => { try { onError(err); } catch { /* never let a listener crash the node */ } };
  pool.on('error', report);
  pool.on('connect', (client) => { client.on('error', report); });
}

export class PgHealth {
  readonly #pool: pg.Pool;
  readonly #maxAgeMs: number;
  readonly #timeoutMs: number;
  #last: Health = { ready: true, reason: null };
  #at = 0;
  #ping: Promise<Health> | null = null;
  #closed = false;

  constructor(pool: pg.Pool, options: { maxAgeMs?: number; timeoutMs?: number } = {}) {
    this.#pool = pool;
    this.#maxAgeMs = options.maxAgeMs ?? 1000;
    this.#timeoutMs = options.timeoutMs ?? 1000;
  }

  /** A connection was lost: not ready until a ping succeeds. */
  lost(err: unknown): void {
    this.#last = { ready: false, reason: `PostgreSQL connection lost: ${safeReason(err)}` };
    this.#at = 0; // the next health() pings again
  }

  async health(): Promise<Health> {
    if (this.#closed) return { ready: false, reason: 'the state backend is closed' };
    if (Date.now() - this.#at < this.#maxAgeMs) return this.#last;
    this.#ping ??= this.#doPing().finally(() => { this.#ping = null; });
    return this.#ping;
  }

  async #doPing(): Promise<Health> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<Health>((resolve) => {
      timer = setTimeout(() => resolve({ ready: false, reason: `PostgreSQL did not answer within ${this.#timeoutMs} ms` }), this.#timeoutMs);
      timer.unref();
    });
    const ping = this.#pool.query('SELECT 1').then(
      (): Health => ({ ready: true, reason: null }),
      (e: unknown): Health => ({ ready: false, reason: `PostgreSQL is unavailable: ${safeReason(e)}` }),
    );
    try {
      this.#last = await Promise.race([ping, timeout]);
    } finally {
      clearTimeout(timer);
    }
    this.#at = Date.now();
    return this.#last;
  }

  close(): void { this.#closed = true; }
}
