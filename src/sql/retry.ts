/**
 * The one retry policy of Gatehouse's own state, for both backends.
 *
 * A transaction that lost a race with another writer is rolled back and run again from the
 * start; nothing else is retried. What counts as "lost a race":
 *  - PostgreSQL: serialization_failure (40001), deadlock_detected (40P01) and
 *    lock_not_available (55P03, our `lock_timeout`); under SERIALIZABLE also
 *    unique_violation (23505), which PostgreSQL may report for what is really a conflict
 *    between two concurrent inserts (PostgreSQL manual, §13.2.3 "Serializable Isolation Level").
 *  - SQLite: SQLITE_BUSY (5) and SQLITE_LOCKED (6), with any extended code
 *    (https://www.sqlite.org/rescode.html#busy): another connection or process holds the lock.
 *
 * Attempts are bounded and spaced by "full jitter" exponential backoff (a random wait in
 * [0, min(cap, base·2^attempt)), Brooker, "Exponential Backoff And Jitter", AWS Architecture
 * Blog, 2015), so nodes that collided do not collide again in lock-step. When the attempts
 * run out the caller gets StateBusy (503, retry later) and nothing was changed.
 *
 * The body of a retried transaction must therefore do nothing but SQL and pure computation.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { StateBusy } from './errors.ts';

export interface RetryPolicy {
  /** Re-runs after the first attempt (default 30). */
  readonly maxRetries: number;
  /** First backoff ceiling, ms (default 2). */
  readonly baseMs: number;
  /** Largest backoff ceiling, ms (default 100). */
  readonly capMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxRetries: 30, baseMs: 2, capMs: 100 };

const PG_RACES = new Set(['40001', '40P01', '55P03']);

/** True when `err` is a lost race (see the module comment) that a re-run may win. */
export function isRetryable(err: unknown, serializable = false): boolean {
  const e = err as { code?: unknown; errcode?: unknown; severity?: unknown } | null;
  if (e === null || typeof e !== 'object') return false;
  if (typeof e.errcode === 'number') {
    const primary = e.errcode & 0xff;
    return primary === 5 || primary === 6;
  }
  if (typeof e.code === 'string' && e.severity !== undefined) {
    return PG_RACES.has(e.code) || (serializable && e.code === '23505');
  }
  return false;
}

/** The wait before re-run `attempt` (0-based): uniform in [0, min(cap, base·2^attempt)). */
export function backoffMs(policy: RetryPolicy, attempt: number): number {
  return Math.random() * Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(attempt, 20));
}

/**
 * Runs `attempt` until it succeeds, fails with a non-retryable error (thrown as it is), or
 * has lost `maxRetries + 1` races (StateBusy, with the last race as its cause).
 */
export async function withRetry<T>(policy: RetryPolicy, attempt: () => Promise<T>, options: { serializable?: boolean; what?: string } = {}): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await attempt();
    } catch (err) {
      if (!isRetryable(err, options.serializable ?? false)) throw err;
      if (i >= policy.maxRetries) {
        throw new StateBusy(`${options.what ?? 'the state store'} is busy: too many concurrent changes (nothing was changed); retry`, { cause: err });
      }
      await sleep(backoffMs(policy, i));
    }
  }
}
